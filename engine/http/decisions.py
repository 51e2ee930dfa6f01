"""The admin API's decision traces: GET /admin/decisions/{decision_id}, behind the admin token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine.errors import NotFound
from engine.http.admin import _admin
from engine.http.render import json_response


async def get_decision(request: Request) -> Response:
    services = _admin(request)
    # Unknown, expired, dropped and malformed ids answer alike (malformed ones are never looked up).
    record = await services.decisions.find(request.path_params["decision_id"], services.clock.now())
    if record is None:
        raise NotFound("no such decision (unknown, or older than decisions.ttl_seconds)")
    return json_response(record)
