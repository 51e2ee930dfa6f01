"""The admin API's decision traces: GET /admin/decisions/{decision_id} (admin_only, engine/http/routes.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine.errors import NotFound
from engine.http.admin import admin_services
from engine.http.render import json_response


async def get_decision(request: Request) -> Response:
    services = admin_services(request)
    # Unknown, expired, dropped and malformed ids answer alike (malformed ones are never looked up).
    record = await services.decisions.find(request.path_params["decision_id"], services.clock.now())
    if record is None:
        raise NotFound("no such decision (unknown, or older than decisions.ttl_seconds)")
    return json_response(record)
