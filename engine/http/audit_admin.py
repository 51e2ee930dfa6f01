"""GET /admin/audit: the audit trail, newest first, a page at a time (admin_only, engine/http/routes.py).

Query parameters, each optional and at most once (anything else is 400 `invalid_request` naming it):
`user_id` (a user id), `type` (one of engine/audit.py's types), `since` (inclusive) and `until`
(exclusive), ISO 8601 date-times with a time zone (`Z`; a `+` must be sent as `%2B`), `limit`
(1..1000, default 100), `cursor` (the `next_cursor` of the page before, as it was given).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine import audit, formats
from engine.errors import InvalidRequest
from engine.http import schema
from engine.http.admin import LIMIT, admin_services
from engine.http.render import json_response
from engine.stores.audit_events import AuditCursor, AuditQuery, StoredAuditEvent

# The API document describes them too (engine/http/openapi.py: _AUDIT_QUERY).
PARAMETERS = ("user_id", "type", "since", "until", "limit", "cursor")


def _user_id(request: Request) -> str | None:
    raw = request.query_params.get("user_id")
    if raw is not None and formats.OPAQUE_ID.fullmatch(raw) is None:
        raise InvalidRequest("must be a user id", field="user_id")
    return raw


def _type(request: Request) -> str | None:
    raw = request.query_params.get("type")
    if raw is not None and raw not in audit.VOCABULARY:
        raise InvalidRequest("must be an audit event type, e.g. login.failed (README: Audit trail)", field="type")
    return raw


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    return None if raw is None else datetime.fromisoformat(schema.timestamp(raw, name))


def _cursor(request: Request) -> AuditCursor | None:
    raw = request.query_params.get("cursor")
    if raw is None:
        return None
    try:
        return AuditCursor.decode(raw)
    except ValueError:
        raise InvalidRequest("must be a next_cursor this API gave", field="cursor") from None


def query_of(request: Request) -> AuditQuery:
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("must be later than since", field="until")
    return AuditQuery(user_id=_user_id(request), type=_type(request), since=since, until=until,
                      limit=LIMIT.read(request), after=_cursor(request))


def event_plain(stored: StoredAuditEvent) -> dict[str, Any]:
    event = stored.event
    return {"id": stored.seq, "type": event.type, "at": event.at.isoformat(), "actor": event.actor,
            "user_id": event.user_id, "ip": event.ip, "decision_id": event.decision_id, "details": dict(event.details)}


async def list_audit_events(request: Request) -> Response:
    services = admin_services(request, query=PARAMETERS)
    query = query_of(request)
    page = await services.audit.page(query)
    return json_response({"events": [event_plain(stored) for stored in page.events],
                          "next_cursor": None if page.next_cursor is None else page.next_cursor.encode(),
                          "limit": query.limit})
