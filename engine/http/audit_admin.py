"""GET /admin/audit: the audit trail, newest first, a page at a time (admin_only, engine/http/routes.py).

Query parameters, each optional and at most once (anything else is 400 `invalid_request` naming it):
`user_id` (a user id), `type` (one of engine/audit.py's types), `since` (inclusive) and `until`
(exclusive), ISO 8601 date-times with a time zone (`Z` or an offset; an offset's `+` sent
unencoded arrives as a space and is read as the `+` it was), `limit` (1..1000, default 100),
`cursor` (the `next_cursor` of the page before, as it was given).
"""

from __future__ import annotations

import re
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


# `?since=2026-11-30T10:00:00+00:00` written into a URL as it is: the `+` arrives as a space.
_PLUS_AS_SPACE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?) (\d\d:?\d\d)")


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    # A space cannot be part of a date-time, so one before the offset can only be a `+` that was
    # not percent-encoded (a datetime's isoformat() pasted into a query string): read it as one.
    unencoded = _PLUS_AS_SPACE.fullmatch(raw)
    if unencoded is not None:
        raw = f"{unencoded.group(1)}+{unencoded.group(2)}"
    return datetime.fromisoformat(schema.timestamp(raw, name))


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
