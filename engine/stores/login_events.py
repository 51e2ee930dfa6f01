"""Login events: what a user's complete logins teach the built-in triggers (issue 10): the last login
(time, device, country, coordinates, client) and when each device, country and client was last seen.

The last login is the last one with coordinates, once any had them: a login from an address the
GeoIP database places nowhere teaches its device, country and client, but does not replace the
last known place (and its time), which impossible travel measures from.

Only a complete login is recorded (the password and, when one was asked for, the second factor):
a failed factor teaches nothing. Tables (migration 3 in sql_schema.py): `last_logins` and
`known_clients`, beside migration 1's `known_devices` and `known_countries`, whose `last_seen` this
module reads and writes.

`record_login` (engine/stores/directory_sql.py) runs `record_event` inside the login's own write, atomic
with the proof spend, on either backend; `Flow` reads `login_summary` (`read_summary`) and `history_for`
before the rules run. Both are operations (engine/stores/sql_ops.py): their SQL is shared by SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from engine.stores.sql_ops import Operation, statement, time_text
from engine.triggers import History, PastLogin, Place

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


def _micro(degrees: float | None) -> int | None:
    return None if degrees is None else round(degrees * _MICRO)


def _degrees(micro: int | None) -> float | None:
    return None if micro is None else micro / _MICRO


def record_event(event: LoginEvent) -> Operation[bool]:
    """Write `event` inside the running transaction; False for an unknown user."""
    at = time_text(event.at)
    if (yield statement(USER_EXISTS, event.user_id)).first() is None:
        return False
    yield statement(UPSERT_LAST_LOGIN, event.user_id, at, event.device_id, event.country, _micro(event.latitude),
                    _micro(event.longitude), event.accuracy_radius_km, event.client_id)
    for kind, key in (("device", event.device_id), ("country", event.country), ("client", event.client_id)):
        if key is not None:
            yield statement(UPSERT_SEEN[kind], event.user_id, key, at, at)
    return True


def read_summary(user_id: str, since: datetime) -> Operation[LoginSummary]:
    bound = time_text(since)
    seen: dict[str, dict[str, datetime]] = {}
    for kind, query in SELECT_SEEN.items():
        parameters = (user_id,) if kind == "client" else (user_id, bound)
        rows = (yield statement(query, *parameters)).rows
        seen[kind] = {row[0]: datetime.fromisoformat(row[1]) for row in rows}
    row = (yield statement(SELECT_LAST_LOGIN, user_id)).first()
    last = None
    if row is not None:
        at, device_id, country, latitude, longitude, radius, client_id = (row[i] for i in range(7))
        last = LoginEvent(user_id, datetime.fromisoformat(at), device_id, country, _degrees(latitude),
                          _degrees(longitude), radius, client_id)
    return LoginSummary(last, seen["device"], seen["country"], seen["client"])
