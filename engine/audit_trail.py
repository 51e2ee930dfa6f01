"""AuditTrail: writes audit events to the directory, answers pages of them, and expires old ones.

Every write is awaited: an event is durable (committed, fsynced on SQLite) before the request it
records is answered, so an answer the client saw is never missing from the trail. A login that
completes writes its events inside its own transaction instead (Sessions.complete hands them to
UserDirectory.record_login): the common path pays for no write of its own. What an event may say
is engine/audit.py's business; the events live in the directory (engine/stores/audit_events.py),
so with PostgreSQL every instance sees every instance's events.

Expiry: events older than `audit.retention_days` (0: kept forever) are deleted by `expire`, at
most one batch per call, oldest first; `run_expiry` (a lifespan task) calls it every minute, and
again at once while whole batches go, so a backlog drains without holding the directory's
writer for long. Several instances may all run it: a row is deleted once, the others find it gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from engine import audit
from engine.clock import Clock
from engine.config import AuditSettings
from engine.stores.audit_events import AuditEvent, AuditPage, AuditQuery
from engine.stores.directory import UserDirectory

log = logging.getLogger("engine.audit")

EXPIRY_BATCH = 500
EXPIRY_INTERVAL_SECONDS = 60.0
EXPIRY_PAUSE_SECONDS = 0.05  # between whole batches: other writes get the directory in between
# Locks remembered so that each is written once per instance (see `lockout`); past this many,
# the ended ones are forgotten, then the oldest.
MAX_LOCKS_REMEMBERED = 10_000


class AuditTrail:
    def __init__(self, directory: UserDirectory, clock: Clock, settings: AuditSettings) -> None:
        self.directory = directory
        self.clock = clock
        self.retention_days = settings.retention_days
        self._lock_ends: dict[str, float] = {}

    async def record(self, type_: str, at: datetime, *, actor: audit.Actor | None = None, user_id: str | None = None,
                     ip: str | None = None, decision_id: str | None = None, **details: object) -> None:
        """Build one event (engine/audit.event: ValueError for what the vocabulary refuses) and write it."""
        await self.directory.record_audit([audit.event(type_, at, actor=actor, user_id=user_id, ip=ip,
                                                       decision_id=decision_id, **details)])

    async def write(self, events: Sequence[AuditEvent]) -> None:
        if events:
            await self.directory.record_audit(events)

    async def lockout(self, key: str, at: datetime, retry_after_seconds: int, *, scope: str,
                      user_id: str | None = None, ip: str | None = None) -> None:
        """A `lockout` event, written once per lock and instance: every attempt refused while
        locked comes here, and one event per refusal would let whoever holds a challenge fill
        the directory. `key` names what is locked (the user's factor, a username and address)."""
        now = at.timestamp()
        if self._lock_ends.get(key, 0.0) > now:
            return
        self._remember_lock(key, now + retry_after_seconds, now)
        await self.record("lockout", at, user_id=user_id, ip=ip, scope=scope, retry_after_seconds=retry_after_seconds)

    def _remember_lock(self, key: str, ends: float, now: float) -> None:
        if len(self._lock_ends) >= MAX_LOCKS_REMEMBERED:
            self._lock_ends = {k: end for k, end in self._lock_ends.items() if end > now}
            while len(self._lock_ends) >= MAX_LOCKS_REMEMBERED:
                del self._lock_ends[next(iter(self._lock_ends))]
        self._lock_ends.pop(key, None)  # re-inserted last: dicts keep insertion order, oldest first
        self._lock_ends[key] = ends

    async def page(self, query: AuditQuery) -> AuditPage:
        """Newest first. Events past the retention period are not shown even before they are deleted."""
        oldest = self._oldest_kept()
        if oldest is not None and (query.since is None or query.since < oldest):
            query = dataclasses.replace(query, since=oldest)
        return await self.directory.audit_events(query)

    def _oldest_kept(self) -> datetime | None:
        if not self.retention_days:
            return None
        return self.clock.now() - timedelta(days=self.retention_days)

    async def expire(self, batch: int = EXPIRY_BATCH) -> int:
        """Delete at most `batch` expired events; how many went."""
        oldest = self._oldest_kept()
        return 0 if oldest is None else await self.directory.delete_audit_events(oldest, batch)

    async def run_expiry(self, interval_seconds: float = EXPIRY_INTERVAL_SECONDS) -> None:
        """Expire until cancelled (the app's lifespan). A directory that fails is logged and retried
        at the next interval: expiry is housekeeping, never a reason to stop serving."""
        while True:
            try:
                while await self.expire() == EXPIRY_BATCH:
                    await asyncio.sleep(EXPIRY_PAUSE_SECONDS)
            except Exception as exc:  # sqlite3.Error, DirectoryUnavailable...: logged, retried
                log.warning("audit_expiry_failed type=%s", type(exc).__name__)
            await asyncio.sleep(interval_seconds)
