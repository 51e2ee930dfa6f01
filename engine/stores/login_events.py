"""LoginEvents: what a user's complete logins teach the built-in triggers (issue 10): the last login
(time, device, country, coordinates, client) and when each device, country and client was last seen.

The last login is the last one with coordinates, once any had them: a login from an address the
GeoIP database places nowhere teaches its device, country and client, but does not replace the
last known place (and its time), which impossible travel measures from.

Only a complete login is recorded (the password and, when one was asked for, the second factor):
a failed factor teaches nothing. Tables (migration 3 in sql_schema.py): `last_logins` and
`known_clients`, beside migration 1's `known_devices` and `known_countries`, whose `last_seen` this
module reads and writes with the same upserts as `SqliteDirectory.record_login`.

Not wired yet. The intended wiring: `SqliteDirectory.record_login` calls `record_event(self._db, event)`
inside its own transaction (one sync to disk per login, the proof spend included) in place of its
two upserts, and `signals.collect` reads `summary` and `history_for` before the rules run.
`SqliteLoginEvents` opens its own connection to the directory's file until then.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from engine.stores.directory import DirectoryError
from engine.triggers import History, PastLogin, Place

# The sql_schema migration that created this module's tables.
SCHEMA_VERSION = 3
_MICRO = 1_000_000


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One complete login. `at` is aware; `accuracy_radius_km` as the GeoIP database gives it."""

    user_id: str
    at: datetime
    device_id: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius_km: int | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoginSummary:
    """The user's last complete login (the last one with coordinates, once any had them), and
    last-seen times (devices and countries seen at or after the `since` asked for; every client,
    for the first login to each)."""

    last: LoginEvent | None
    device_last_seen: Mapping[str, datetime] = field(default_factory=dict)
    country_last_seen: Mapping[str, datetime] = field(default_factory=dict)
    client_last_seen: Mapping[str, datetime] = field(default_factory=dict)


class LoginEvents(Protocol):
    async def record(self, event: LoginEvent) -> bool:
        """Learn from a complete login; False (nothing written) for an unknown user. An event older
        than the stored last login or last-seen time does not move them back, and one without
        coordinates does not replace a last login that has them."""

    async def summary(self, user_id: str, since: datetime) -> LoginSummary:
        """`since`: the start of the widest trigger window (older devices and countries count as new)."""

    async def close(self) -> None: ...


def history_for(summary: LoginSummary, logins_count: int) -> History:
    """The triggers' view: `logins_count` from the user record (it predates these tables)."""
    last = summary.last
    past = None
    if last is not None:
        place = None
        if last.latitude is not None and last.longitude is not None:
            place = Place(last.latitude, last.longitude, last.accuracy_radius_km or 0)
        past = PastLogin(last.at, last.device_id, last.country, place, last.client_id)
    return History(logins_count, past, summary.device_last_seen, summary.country_last_seen,
                   frozenset(summary.client_last_seen))


# Named statements. Times are ISO 8601 UTC text with microseconds, which sorts as time. Each
# upsert's WHERE keeps the newest time when two instances record out of order; the last login's
# also keeps a known place over a login without one (impossible travel measures from it).
# Parameters: user_id.
USER_EXISTS = "SELECT 1 FROM users WHERE user_id = ?"
# Parameters: user_id, at, device_id, country, latitude_micro, longitude_micro, accuracy_radius_km, client_id.
UPSERT_LAST_LOGIN = (
    "INSERT INTO last_logins (user_id, at, device_id, country, latitude_micro, longitude_micro,"
    " accuracy_radius_km, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
    " at = excluded.at, device_id = excluded.device_id, country = excluded.country,"
    " latitude_micro = excluded.latitude_micro, longitude_micro = excluded.longitude_micro,"
    " accuracy_radius_km = excluded.accuracy_radius_km, client_id = excluded.client_id"
    " WHERE excluded.at >= last_logins.at"
    " AND (excluded.latitude_micro IS NOT NULL OR last_logins.latitude_micro IS NULL)")
# Parameters: user_id, key, first_seen, last_seen. {table} and {column} come from _SEEN only.
_UPSERT_SEEN = ("INSERT INTO {table} (user_id, {column}, first_seen, last_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id, {column}) DO UPDATE SET last_seen = excluded.last_seen"
                " WHERE excluded.last_seen > {table}.last_seen")
_SEEN = {"device": ("known_devices", "device_id"), "country": ("known_countries", "country"),
         "client": ("known_clients", "client_id")}
UPSERT_SEEN = {kind: _UPSERT_SEEN.format(table=table, column=column) for kind, (table, column) in _SEEN.items()}
# Parameters: user_id, since (the client query takes user_id only).
SELECT_SEEN = {
    "device": "SELECT device_id, last_seen FROM known_devices WHERE user_id = ? AND last_seen >= ?",
    "country": "SELECT country, last_seen FROM known_countries WHERE user_id = ? AND last_seen >= ?",
    "client": "SELECT client_id, last_seen FROM known_clients WHERE user_id = ?",
}
SELECT_LAST_LOGIN = ("SELECT at, device_id, country, latitude_micro, longitude_micro, accuracy_radius_km,"
                     " client_id FROM last_logins WHERE user_id = ?")


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("times must be aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _micro(degrees: float | None) -> int | None:
    return None if degrees is None else round(degrees * _MICRO)


def _degrees(micro: int | None) -> float | None:
    return None if micro is None else micro / _MICRO


def record_event(db: sqlite3.Connection, event: LoginEvent) -> bool:
    """Write `event` on `db` inside the caller's transaction; False for an unknown user."""
    at = _time(event.at)
    if db.execute(USER_EXISTS, (event.user_id,)).fetchone() is None:
        return False
    db.execute(UPSERT_LAST_LOGIN, (event.user_id, at, event.device_id, event.country, _micro(event.latitude),
                                   _micro(event.longitude), event.accuracy_radius_km, event.client_id))
    for kind, key in (("device", event.device_id), ("country", event.country), ("client", event.client_id)):
        if key is not None:
            db.execute(UPSERT_SEEN[kind], (event.user_id, key, at, at))
    return True


def read_summary(db: sqlite3.Connection, user_id: str, since: datetime) -> LoginSummary:
    bound = _time(since)
    seen: dict[str, dict[str, datetime]] = {}
    for kind, query in SELECT_SEEN.items():
        parameters = (user_id,) if kind == "client" else (user_id, bound)
        seen[kind] = {key: datetime.fromisoformat(at) for key, at in db.execute(query, parameters)}
    row = db.execute(SELECT_LAST_LOGIN, (user_id,)).fetchone()
    last = None
    if row is not None:
        at, device_id, country, latitude, longitude, radius, client_id = row
        last = LoginEvent(user_id, datetime.fromisoformat(at), device_id, country, _degrees(latitude),
                          _degrees(longitude), radius, client_id)
    return LoginSummary(last, seen["device"], seen["country"], seen["client"])


class SqliteLoginEvents:
    """LoginEvents on its own connection to the directory's SQLite file (WAL: it and the directory's
    connection do not block each other's reads). The directory migrates the file; this class refuses
    a file below SCHEMA_VERSION (DirectoryError). Not for ":memory:", which a second connection
    cannot share. `close()` releases the connection."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 5000")
            try:
                (version,) = self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            except sqlite3.OperationalError:
                version = None
            if version is None or version < SCHEMA_VERSION:
                raise DirectoryError(f"the directory schema is {version}; login events need version "
                                     f"{SCHEMA_VERSION} (open SqliteDirectory on the file first)")
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def record(self, event: LoginEvent) -> bool:
        with self._lock, self._transaction():
            return record_event(self._db, event)

    async def summary(self, user_id: str, since: datetime) -> LoginSummary:
        with self._lock:
            return read_summary(self._db, user_id, since)

    async def close(self) -> None:
        with self._lock:
            self._db.close()


class MemoryLoginEvents:
    """LoginEvents in process, for one instance and tests. It knows no users: every event is
    recorded, and nothing is forgotten when a user is deleted."""

    def __init__(self) -> None:
        self._last: dict[str, LoginEvent] = {}
        self._seen: dict[tuple[str, str], dict[str, datetime]] = {}

    async def record(self, event: LoginEvent) -> bool:
        _time(event.at)
        last = self._last.get(event.user_id)
        placed = event.latitude is not None or last is None or last.latitude is None
        if (last is None or event.at >= last.at) and placed:
            self._last[event.user_id] = event
        for kind, key in (("device", event.device_id), ("country", event.country), ("client", event.client_id)):
            if key is not None:
                seen = self._seen.setdefault((event.user_id, kind), {})
                seen[key] = max(seen.get(key, event.at), event.at)
        return True

    async def summary(self, user_id: str, since: datetime) -> LoginSummary:
        _time(since)

        def recent(kind: str) -> dict[str, datetime]:
            return {key: at for key, at in self._seen.get((user_id, kind), {}).items() if at >= since}

        clients = dict(self._seen.get((user_id, "client"), {}))
        return LoginSummary(self._last.get(user_id), recent("device"), recent("country"), clients)

    async def close(self) -> None:
        return None
