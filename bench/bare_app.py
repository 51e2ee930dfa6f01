"""The baseline for bench/http.py: a bare Starlette endpoint that parses a JSON body and answers JSON."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(orjson.dumps({"decision": "allow", "user": body["user"]["user_id"]}),
                    media_type="application/json")


app = Starlette(routes=[Route("/v1/evaluate", echo, methods=["POST"])])
