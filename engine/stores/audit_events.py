"""Audit events in the directory: how they are stored, paged newest first and expired (migration 6).

An event is a row of `audit_events` (engine/stores/sql_schema.py, postgres_schema.py): its time,
type, actor, user, address, decision id and a small JSON object of details. What an event may
say is decided before it gets here, by engine/audit.py (the vocabulary and the redaction rules);
this module stores what it is given.

Order: newest first by (`at`, `seq`). `seq` is the insertion order the database hands out
(SQLite AUTOINCREMENT, a PostgreSQL identity), so events written at one instant (a login's
factor.verified and login.succeeded, in one transaction) keep the order they were written in.
A page ends at a cursor (`at`, `seq` of its last event); the next page is every event strictly
after it in that order. The key is unique and never changes, so an event that existed when the
first page was read appears exactly once across the pages, however many events are written
meanwhile (newer events are above the first page; one committed late with an older time may or
may not be seen, never twice).

No foreign key to users: an event outlives its user (`user.deleted` is itself an event).
Expired events are deleted a bounded batch at a time (`delete_before`), by the oldest time.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.stores.sql_ops import Operation, Row, Statement, statement, time_text


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event as engine/audit.py built it. `at` is aware; `details` plain JSON, already redacted."""

    at: datetime
    type: str
    actor: str  # "user" | "admin" | "system"
    user_id: str | None = None
    ip: str | None = None
    decision_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    """An event as read back: `seq` is its place in the directory's insertion order (its id)."""

    seq: int
    event: AuditEvent


_CURSOR = re.compile(r"(?P<seq>[0-9]{1,19}) (?P<at>[0-9T:.+-]{32})")


@dataclass(frozen=True, slots=True)
class AuditCursor:
    """Where a page ended: the last event's stored time text and seq. Opaque to callers."""

    at: str
    seq: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.seq} {self.at}".encode("ascii")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> AuditCursor:
        """ValueError for anything `encode` did not write."""
        if len(text) > 96 or re.fullmatch(r"[A-Za-z0-9_-]+", text) is None:
            raise ValueError("not a cursor")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("not a cursor") from None
        match = _CURSOR.fullmatch(raw)
        if match is None:
            raise ValueError("not a cursor")
        try:
            at = time_text(datetime.fromisoformat(match["at"]))
        except ValueError:
            raise ValueError("not a cursor") from None
        if at != match["at"]:
            raise ValueError("not a cursor")
        return cls(at, int(match["seq"]))


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of a page: each None is no filter. `since` inclusive, `until` exclusive."""

    user_id: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    after: AuditCursor | None = None  # the cursor of the page before


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[StoredAuditEvent]
    next_cursor: AuditCursor | None  # None: this was the last page


COLUMNS = "seq, at, type, actor, user_id, ip, decision_id, details"
# Parameters: at, type, actor, user_id, ip, decision_id, details (JSON text).
INSERT = ("INSERT INTO audit_events (at, type, actor, user_id, ip, decision_id, details)"
          " VALUES (?, ?, ?, ?, ?, ?, ?)")
# Parameters: before (time text), batch size. The oldest first, through the index on (at, seq):
# each call deletes at most one batch, however much has expired.
DELETE_BEFORE = ("DELETE FROM audit_events WHERE seq IN"
                 " (SELECT seq FROM audit_events WHERE at < ? ORDER BY at, seq LIMIT ?)")
# A page's conditions, each with its parameters in this order; the text comes from here only,
# never from the caller.
_WHERE = (("user_id", "user_id = ?"), ("type", "type = ?"), ("since", "at >= ?"), ("until", "at < ?"),
          ("after", "(at, seq) < (?, ?)"))


def _row_values(event: AuditEvent) -> tuple[object, ...]:
    return (time_text(event.at), event.type, event.actor, event.user_id, event.ip, event.decision_id,
            json.dumps(dict(event.details), separators=(",", ":"), sort_keys=True, ensure_ascii=False))


def insert(events: Sequence[AuditEvent]) -> Operation[None]:
    """Write `events`, in order, inside the running transaction."""
    if len(events) == 1:
        yield statement(INSERT, *_row_values(events[0]))
    elif events:
        yield Statement(INSERT, rows=[_row_values(event) for event in events])


def page_statement(query: AuditQuery) -> Statement:
    """The SELECT of one page: `query.limit` + 1 rows, the last only telling whether more follow."""
    values: dict[str, tuple[object, ...]] = {
        "user_id": (query.user_id,), "type": (query.type,),
        "since": (None if query.since is None else time_text(query.since),),
        "until": (None if query.until is None else time_text(query.until),),
        "after": (None,) if query.after is None else (query.after.at, query.after.seq),
    }
    conditions: list[str] = []
    parameters: list[object] = []
    for name, condition in _WHERE:
        if values[name][0] is not None:
            conditions.append(condition)
            parameters.extend(values[name])
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return Statement(f"SELECT {COLUMNS} FROM audit_events{where} ORDER BY at DESC, seq DESC LIMIT ?",
                     (*parameters, query.limit + 1))


def page_of(rows: Sequence[Row], limit: int) -> AuditPage:
    events = [stored(row) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return AuditPage(events, None if last is None else AuditCursor(last["at"], int(last["seq"])))


def stored(row: Row) -> StoredAuditEvent:
    return StoredAuditEvent(int(row["seq"]), AuditEvent(
        at=datetime.fromisoformat(row["at"]), type=row["type"], actor=row["actor"], user_id=row["user_id"],
        ip=row["ip"], decision_id=row["decision_id"], details=json.loads(row["details"])))


def delete_before(before: str, batch: int) -> Operation[int]:
    """At most `batch` of the events older than `before` (time text), oldest first; how many."""
    return (yield statement(DELETE_BEFORE, before, batch)).rowcount
