"""GET /openapi.json and GET /docs: the API document (engine/http/openapi.py) and its page (api_page.py).

Both are public, as the API they describe is: they hold no setting, key or user data. The document
is written once per app, at the first request, from the app's own route table.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from engine.http import api_page, openapi


@dataclass(frozen=True, slots=True)
class Published:
    json: bytes
    page: str


def published(app: Starlette) -> Published:
    found: Published | None = getattr(app.state, "api_document", None)
    if found is None:
        document = openapi.build(app.routes)
        found = Published(orjson.dumps(document), api_page.render(document))
        app.state.api_document = found
    return found


async def openapi_json(request: Request) -> Response:
    return Response(published(request.app).json, media_type="application/json")


async def docs(request: Request) -> Response:
    return Response(published(request.app).page, media_type="text/html",
                    headers=dict(api_page.HEADERS))
