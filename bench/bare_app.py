"""The baseline for bench/http_evaluate.py and bench/verify.py: bare Starlette endpoints that parse a
JSON body and answer JSON, with nothing else in the way (no auth, no validation, no store)."""

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


async def verify(request: Request) -> Response:
    """Takes the body of POST /v1/mfa/verify and answers a small JSON object."""
    body = orjson.loads(await request.body())
    return Response(orjson.dumps({"status": "authenticated", "challenge_id": body["challenge_id"]}),
                    media_type="application/json")


app = Starlette(routes=[Route("/v1/evaluate", echo, methods=["POST"]),
                        Route("/v1/mfa/verify", verify, methods=["POST"])])
