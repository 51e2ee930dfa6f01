"""LoginEvents (issue 10) against a real SQLite file migrated by SqliteDirectory, and in memory."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Coroutine, Iterator
from contextlib import closing
from ipaddress import IPv4Network
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.config import ImpossibleTravelTrigger, RecentTrigger, TriggersSettings
from engine.crypto import Keyring
from engine.demo_geoip import write_city_db
from engine.geo import open_locator
from engine.stores.directory import DirectoryError, NewUser
from engine.stores.login_events import (
    LoginEvent,
    LoginEvents,
    LoginSummary,
    MemoryLoginEvents,
    SqliteLoginEvents,
    history_for,
)
from engine.stores.sqlite import SqliteDirectory
from engine.triggers import LoginFacts, PastLogin, Place, evaluate, place_of

T = TypeVar("T")
KEYRING = Keyring(bytes(range(32)))
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=3650)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "mfa.db")


@pytest.fixture
def directory(db_path: str) -> Iterator[SqliteDirectory]:
    store = SqliteDirectory(db_path, KEYRING)
    yield store
    run(store.close())


def add_user(directory: SqliteDirectory, username: str = "alice") -> str:
    user = run(directory.create_user(NewUser(username=username, password_hash="$argon2id$x"), NOW))
    return user.user_id


@pytest.fixture(params=["sqlite", "memory"])
def events(request: pytest.FixtureRequest, directory: SqliteDirectory, db_path: str) -> Iterator[LoginEvents]:
    store: LoginEvents = SqliteLoginEvents(db_path) if request.param == "sqlite" else MemoryLoginEvents()
    yield store
    run(store.close())


@pytest.fixture
def user_id(directory: SqliteDirectory) -> str:
    return add_user(directory)


def test_a_user_without_complete_logins_has_an_empty_summary(events: LoginEvents, user_id: str) -> None:
    assert run(events.summary(user_id, LONG_AGO)) == LoginSummary(None, {}, {}, {})


def test_a_login_without_coordinates_keeps_the_last_place_and_its_time(events: LoginEvents, user_id: str) -> None:
    """Review of issue 10: a login from an address the database has no coordinates for must not
    erase where the user last was, or the next login skips impossible travel."""
    berlin = LoginEvent(user_id, NOW, "dev-1", "DE", 52.520008, 13.404954, 20, "web")
    run(events.record(berlin))
    run(events.record(LoginEvent(user_id, NOW + timedelta(minutes=5), "dev-2", "DE", None, None, None, "app")))
    summary = run(events.summary(user_id, LONG_AGO))
    assert summary.last == berlin
    # The place-less login is still learned: its device, country and client.
    assert summary.device_last_seen == {"dev-1": NOW, "dev-2": NOW + timedelta(minutes=5)}
    assert summary.client_last_seen == {"web": NOW, "app": NOW + timedelta(minutes=5)}


def test_a_login_without_coordinates_is_the_last_until_one_with_them(events: LoginEvents, user_id: str) -> None:
    nowhere = LoginEvent(user_id, NOW, "dev-1", "US", None, None, None, "web")
    run(events.record(nowhere))
    assert run(events.summary(user_id, LONG_AGO)).last == nowhere  # a previous login, place unknown
    later = LoginEvent(user_id, NOW + timedelta(minutes=1), "dev-1", "DE", 52.52, 13.405, 20, "web")
    run(events.record(later))
    assert run(events.summary(user_id, LONG_AGO)).last == later


def test_the_last_login_keeps_time_device_country_coordinates_and_client(events: LoginEvents, user_id: str) -> None:
    event = LoginEvent(user_id, NOW, "dev-1", "DE", 52.520008, 13.404954, 20, "web")
    assert run(events.record(event)) is True
    summary = run(events.summary(user_id, LONG_AGO))
    assert summary.last == event  # microdegrees: the coordinates come back exactly
    assert summary.device_last_seen == {"dev-1": NOW}
    assert summary.country_last_seen == {"DE": NOW}
    assert summary.client_last_seen == {"web": NOW}


def test_a_login_without_device_country_coordinates_or_client_records_only_what_it_has(
        events: LoginEvents, user_id: str) -> None:
    run(events.record(LoginEvent(user_id, NOW)))
    assert run(events.summary(user_id, LONG_AGO)) == LoginSummary(LoginEvent(user_id, NOW), {}, {}, {})


def test_later_logins_move_the_last_login_and_last_seen_times(events: LoginEvents, user_id: str) -> None:
    run(events.record(LoginEvent(user_id, NOW - timedelta(days=2), "dev-1", "DE", 52.52, 13.4, 20, "web")))
    run(events.record(LoginEvent(user_id, NOW, "dev-2", "US", 40.71, -74.01, 10, "mobile")))
    run(events.record(LoginEvent(user_id, NOW + timedelta(hours=1), "dev-1", "US", None, None, None, "web")))
    summary = run(events.summary(user_id, LONG_AGO))
    # The last login with a place (the one after it had none: its place would erase New York).
    assert summary.last == LoginEvent(user_id, NOW, "dev-2", "US", 40.71, -74.01, 10, "mobile")
    assert summary.device_last_seen == {"dev-1": NOW + timedelta(hours=1), "dev-2": NOW}
    assert summary.country_last_seen == {"DE": NOW - timedelta(days=2), "US": NOW + timedelta(hours=1)}
    assert summary.client_last_seen == {"web": NOW + timedelta(hours=1), "mobile": NOW}


def test_an_event_recorded_out_of_order_does_not_move_times_back(events: LoginEvents, user_id: str) -> None:
    run(events.record(LoginEvent(user_id, NOW, "dev-1", "DE", client_id="web")))
    run(events.record(LoginEvent(user_id, NOW - timedelta(minutes=1), "dev-1", "FR", client_id="web")))
    summary = run(events.summary(user_id, LONG_AGO))
    assert summary.last is not None and summary.last.at == NOW and summary.last.country == "DE"
    assert summary.device_last_seen == {"dev-1": NOW}
    assert summary.country_last_seen == {"DE": NOW, "FR": NOW - timedelta(minutes=1)}


def test_devices_and_countries_last_seen_before_since_are_left_out_but_clients_never_are(
        events: LoginEvents, user_id: str) -> None:
    old = NOW - timedelta(days=100)
    run(events.record(LoginEvent(user_id, old, "dev-old", "FR", client_id="legacy")))
    run(events.record(LoginEvent(user_id, NOW, "dev-1", "DE", client_id="web")))
    summary = run(events.summary(user_id, NOW - timedelta(days=90)))
    assert summary.device_last_seen == {"dev-1": NOW}
    assert summary.country_last_seen == {"DE": NOW}
    assert summary.client_last_seen == {"legacy": old, "web": NOW}
    assert run(events.summary(user_id, old)).device_last_seen == {"dev-old": old, "dev-1": NOW}


def test_times_in_other_zones_are_the_same_instants(events: LoginEvents, user_id: str) -> None:
    paris = timezone(timedelta(hours=1))
    run(events.record(LoginEvent(user_id, NOW.astimezone(paris), "dev-1")))
    summary = run(events.summary(user_id, (NOW - timedelta(seconds=1)).astimezone(paris)))
    assert summary.device_last_seen == {"dev-1": NOW}


def test_naive_times_are_refused(events: LoginEvents, user_id: str) -> None:
    with pytest.raises(ValueError, match="aware"):
        run(events.record(LoginEvent(user_id, datetime(2026, 3, 2, 10, 0))))
    with pytest.raises(ValueError, match="aware"):
        run(events.summary(user_id, datetime(2026, 3, 2, 10, 0)))


def test_users_do_not_see_each_others_logins(events: LoginEvents, directory: SqliteDirectory, user_id: str) -> None:
    bob = add_user(directory, "bob")
    run(events.record(LoginEvent(user_id, NOW, "dev-1", "DE", 52.52, 13.4, 20, "web")))
    assert run(events.summary(bob, LONG_AGO)) == LoginSummary(None, {}, {}, {})


# SQLite only

def test_an_unknown_user_records_nothing(db_path: str, directory: SqliteDirectory) -> None:
    events = SqliteLoginEvents(db_path)
    try:
        assert run(events.record(LoginEvent("usr_gone", NOW, "dev-1", "DE", client_id="web"))) is False
        with closing(sqlite3.connect(db_path)) as raw:
            for table in ("last_logins", "known_clients", "known_devices", "known_countries"):
                assert raw.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    finally:
        run(events.close())


def test_deleting_the_user_deletes_their_login_events(db_path: str, directory: SqliteDirectory,
                                                      user_id: str) -> None:
    events = SqliteLoginEvents(db_path)
    try:
        run(events.record(LoginEvent(user_id, NOW, "dev-1", "DE", 52.52, 13.4, 20, "web")))
        assert run(directory.delete_user(user_id)) is True
        assert run(events.summary(user_id, LONG_AGO)) == LoginSummary(None, {}, {}, {})
    finally:
        run(events.close())


def test_the_directory_and_login_events_share_known_devices_and_countries(
        db_path: str, directory: SqliteDirectory, user_id: str) -> None:
    events = SqliteLoginEvents(db_path)
    try:
        run(directory.record_login(user_id, NOW - timedelta(days=1), "dev-1", "DE"))
        run(events.record(LoginEvent(user_id, NOW, "dev-2", "FR", client_id="web")))
        history = run(directory.login_history(user_id))
        assert history.device_ids == {"dev-1", "dev-2"} and history.countries == {"DE", "FR"}
        summary = run(events.summary(user_id, LONG_AGO))
        assert summary.device_last_seen == {"dev-1": NOW - timedelta(days=1), "dev-2": NOW}
    finally:
        run(events.close())


def test_a_file_the_directory_has_not_migrated_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="version 3"):
        SqliteLoginEvents(str(tmp_path / "empty.db"))
    old = tmp_path / "old.db"
    with closing(sqlite3.connect(old)) as raw, raw:
        raw.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        raw.execute("INSERT INTO schema_migrations VALUES (2, ?)", (NOW.isoformat(),))
    with pytest.raises(DirectoryError, match="schema is 2"):
        SqliteLoginEvents(str(old))


def test_migration_3_upgrades_a_version_2_directory_and_keeps_its_history(tmp_path: Path) -> None:
    from engine.stores.sql_schema import MIGRATIONS

    path = tmp_path / "v2.db"
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, script, _seed in MIGRATIONS[:2]:
            raw.executescript(script)
            raw.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, NOW.isoformat()))
        raw.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at)"
                    " VALUES ('usr_1', 'alice', 'alice', 'x', ?)", (NOW.isoformat(),))
        raw.execute("INSERT INTO known_devices VALUES ('usr_1', 'dev-1', ?, ?)", (NOW.isoformat(), NOW.isoformat()))
    run(SqliteDirectory(str(path), KEYRING).close())
    events = SqliteLoginEvents(str(path))
    try:
        assert run(events.summary("usr_1", LONG_AGO)) == LoginSummary(None, {"dev-1": NOW}, {}, {})
    finally:
        run(events.close())


# Into the triggers

def test_history_for_gives_the_triggers_the_last_login_place_and_known_clients() -> None:
    summary = LoginSummary(LoginEvent("usr_1", NOW, "dev-1", "DE", 52.52, 13.4, None, "web"),
                           {"dev-1": NOW}, {"DE": NOW}, {"web": NOW})
    history = history_for(summary, logins_count=4)
    assert history.logins_count == 4
    assert history.last_login == PastLogin(NOW, "dev-1", "DE", Place(52.52, 13.4, 0), "web")
    assert history.clients == frozenset({"web"})
    assert history_for(LoginSummary(None), 0).last_login is None


def test_two_cities_far_apart_minutes_apart_fire_impossible_travel_from_a_real_city_database_and_sqlite(
        tmp_path: Path, db_path: str, directory: SqliteDirectory, user_id: str) -> None:
    geo_path = str(tmp_path / "GeoLite2-City.mmdb")
    write_city_db(geo_path)
    locator = open_locator(geo_path, allow_networks=(IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.0/24")))
    events = SqliteLoginEvents(db_path)
    settings = TriggersSettings(impossible_travel=ImpossibleTravelTrigger(enabled=True),
                                new_device=RecentTrigger(enabled=True))
    try:
        berlin = locator.lookup("198.51.100.9")
        springfield = locator.lookup("203.0.113.7")
        assert berlin is not None and springfield is not None
        run(events.record(LoginEvent(user_id, NOW - timedelta(minutes=20), "dev-1", berlin.country,
                                     berlin.latitude, berlin.longitude, berlin.accuracy_radius, "web")))
        history = history_for(run(events.summary(user_id, NOW - timedelta(days=90))), logins_count=1)
        here = LoginFacts(user_id, "web", "dev-1", springfield.country, place_of(springfield), NOW)
        result = evaluate(settings, here, history)
        assert result.fired == ("impossible_travel",)
        assert result.risk.travel_kmh is not None and result.risk.travel_kmh > 20_000
        again = LoginFacts(user_id, "web", "dev-1", berlin.country, place_of(berlin), NOW)
        assert evaluate(settings, again, history).fired == ()
    finally:
        run(events.close())
        locator.close()
