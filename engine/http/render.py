"""JSON responses, serialised with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    if headers:
        return Response(orjson.dumps(body), status, headers=dict(headers) | {"cache-control": "no-store"},
                        media_type="application/json")
    return _JsonResponse(orjson.dumps(body), status)


class _JsonResponse(Response):
    """A JSON body without headers of its own: the raw headers Response.init_headers would write
    for {"cache-control": "no-store"}, in its order, without its general code (every answer)."""

    media_type = "application/json"

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        if headers is not None or self.status_code < 200 or self.status_code in (204, 304):
            super().init_headers({**(headers or {}), "cache-control": "no-store"})
            return
        self.raw_headers = [(b"cache-control", b"no-store"), (b"content-length", str(len(self.body)).encode()),
                            (b"content-type", b"application/json")]
