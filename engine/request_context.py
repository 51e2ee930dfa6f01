"""The request being served, as its log lines name it: the request id and, once known, the user.

The HTTP layer's ErrorBoundary sets it around each request and writes the request's log line
from it; the login flow adds the user when it learns who it is; the JSON log formatter adds
the request id to every line written meanwhile. A ContextVar: each request runs in a task of
its own, with its own copy, so one request never sees another's.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    user_id: str | None = None


CURRENT: ContextVar[RequestInfo | None] = ContextVar("mfa_request", default=None)


def note_user(user_id: str) -> None:
    """The user the current request is about (no-op outside a request: the CLI, tests of the flow)."""
    info = CURRENT.get()
    if info is not None:
        info.user_id = user_id


def current_request_id() -> str | None:
    info = CURRENT.get()
    return None if info is None else info.request_id
