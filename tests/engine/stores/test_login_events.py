"""Login events (issue 10) through the directory's record_login and login_summary, the way
production writes and reads them, on both backends (a SQLite file, a PostgreSQL database)."""

from __future__ import annotations

from ipaddress import IPv4Network
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.config import ImpossibleTravelTrigger, RecentTrigger, TriggersSettings
from engine.demo_geoip import write_city_db
from engine.geo import open_locator
from engine.stores.directory import NewUser, UserDirectory
from engine.stores.login_events import LoginEvent, LoginSummary, history_for
from engine.stores.sql_directory import SqlDirectory
from engine.triggers import LoginFacts, PastLogin, Place, evaluate, place_of
from tests.engine.stores.directories import DirectoryBackend, Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=3650)
LOGIN_TABLES = ("last_logins", "known_clients", "known_devices", "known_countries")


def add_user(run_sync: Run, directory: UserDirectory, username: str = "alice") -> str:
    user = run_sync(directory.create_user(NewUser(username=username, password_hash="$argon2id$x"), NOW))
    return user.user_id


@pytest.fixture
def user_id(directory: SqlDirectory, run_sync: Run) -> str:
    return add_user(run_sync, directory)


def record(run_sync: Run, directory: UserDirectory, event: LoginEvent) -> bool:
    """A complete login of `event`'s fields, as Flow records it (geo as GeoIP gives it)."""
    geo = {"latitude": event.latitude, "longitude": event.longitude, "accuracy_radius": event.accuracy_radius_km}
    return run_sync(directory.record_login(event.user_id, event.at, event.device_id, event.country,
                                      client_id=event.client_id, geo=geo))


def summary_of(run_sync: Run, directory: UserDirectory, user_id: str, since: datetime = LONG_AGO) -> LoginSummary:
    return run_sync(directory.login_summary(user_id, since))


def count_rows(backend: DirectoryBackend, table: str) -> int:
    [(count,)] = backend.rows(f"SELECT COUNT(*) FROM {table}")
    return int(count)


def test_a_user_without_complete_logins_has_an_empty_summary(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    assert summary_of(run_sync, directory, user_id) == LoginSummary(None, {}, {}, {})


def test_a_login_without_coordinates_keeps_the_last_place_and_its_time(
        directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    """Review of issue 10: a login from an address the database has no coordinates for must not
    erase where the user last was, or the next login skips impossible travel."""
    berlin = LoginEvent(user_id, NOW, "dev-1", "DE", 52.520008, 13.404954, 20, "web")
    record(run_sync, directory, berlin)
    record(run_sync, directory, LoginEvent(user_id, NOW + timedelta(minutes=5), "dev-2", "DE", None, None, None, "app"))
    summary = summary_of(run_sync, directory, user_id)
    assert summary.last == berlin
    # The place-less login is still learned: its device, country and client.
    assert summary.device_last_seen == {"dev-1": NOW, "dev-2": NOW + timedelta(minutes=5)}
    assert summary.client_last_seen == {"web": NOW, "app": NOW + timedelta(minutes=5)}


def test_a_login_without_coordinates_is_the_last_until_one_with_them(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    nowhere = LoginEvent(user_id, NOW, "dev-1", "US", None, None, None, "web")
    record(run_sync, directory, nowhere)
    assert summary_of(run_sync, directory, user_id).last == nowhere  # a previous login, place unknown
    later = LoginEvent(user_id, NOW + timedelta(minutes=1), "dev-1", "DE", 52.52, 13.405, 20, "web")
    record(run_sync, directory, later)
    assert summary_of(run_sync, directory, user_id).last == later


def test_the_last_login_keeps_time_device_country_coordinates_and_client(
        directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    event = LoginEvent(user_id, NOW, "dev-1", "DE", 52.520008, 13.404954, 20, "web")
    assert record(run_sync, directory, event) is True
    summary = summary_of(run_sync, directory, user_id)
    assert summary.last == event  # microdegrees: the coordinates come back exactly
    assert summary.device_last_seen == {"dev-1": NOW}
    assert summary.country_last_seen == {"DE": NOW}
    assert summary.client_last_seen == {"web": NOW}


def test_a_login_without_device_country_coordinates_or_client_records_only_what_it_has(
        directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    record(run_sync, directory, LoginEvent(user_id, NOW))
    assert summary_of(run_sync, directory, user_id) == LoginSummary(LoginEvent(user_id, NOW), {}, {}, {})


def test_later_logins_move_the_last_login_and_last_seen_times(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    record(run_sync, directory, LoginEvent(user_id, NOW - timedelta(days=2), "dev-1", "DE", 52.52, 13.4, 20, "web"))
    record(run_sync, directory, LoginEvent(user_id, NOW, "dev-2", "US", 40.71, -74.01, 10, "mobile"))
    record(run_sync, directory, LoginEvent(user_id, NOW + timedelta(hours=1), "dev-1", "US", None, None, None, "web"))
    summary = summary_of(run_sync, directory, user_id)
    # The last login with a place (the one after it had none: its place would erase New York).
    assert summary.last == LoginEvent(user_id, NOW, "dev-2", "US", 40.71, -74.01, 10, "mobile")
    assert summary.device_last_seen == {"dev-1": NOW + timedelta(hours=1), "dev-2": NOW}
    assert summary.country_last_seen == {"DE": NOW - timedelta(days=2), "US": NOW + timedelta(hours=1)}
    assert summary.client_last_seen == {"web": NOW + timedelta(hours=1), "mobile": NOW}


def test_an_event_recorded_out_of_order_does_not_move_times_back(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    record(run_sync, directory, LoginEvent(user_id, NOW, "dev-1", "DE", client_id="web"))
    record(run_sync, directory, LoginEvent(user_id, NOW - timedelta(minutes=1), "dev-1", "FR", client_id="web"))
    summary = summary_of(run_sync, directory, user_id)
    assert summary.last is not None and summary.last.at == NOW and summary.last.country == "DE"
    assert summary.device_last_seen == {"dev-1": NOW}
    assert summary.country_last_seen == {"DE": NOW, "FR": NOW - timedelta(minutes=1)}


def test_devices_and_countries_last_seen_before_since_are_left_out_but_clients_never_are(
        directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    old = NOW - timedelta(days=100)
    record(run_sync, directory, LoginEvent(user_id, old, "dev-old", "FR", client_id="legacy"))
    record(run_sync, directory, LoginEvent(user_id, NOW, "dev-1", "DE", client_id="web"))
    summary = summary_of(run_sync, directory, user_id, NOW - timedelta(days=90))
    assert summary.device_last_seen == {"dev-1": NOW}
    assert summary.country_last_seen == {"DE": NOW}
    assert summary.client_last_seen == {"legacy": old, "web": NOW}
    assert summary_of(run_sync, directory, user_id, old).device_last_seen == {"dev-old": old, "dev-1": NOW}


def test_times_in_other_zones_are_the_same_instants(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    paris = timezone(timedelta(hours=1))
    record(run_sync, directory, LoginEvent(user_id, NOW.astimezone(paris), "dev-1"))
    summary = summary_of(run_sync, directory, user_id, (NOW - timedelta(seconds=1)).astimezone(paris))
    assert summary.device_last_seen == {"dev-1": NOW}


def test_naive_times_are_refused(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    with pytest.raises(ValueError, match="aware"):
        record(run_sync, directory, LoginEvent(user_id, datetime(2026, 3, 2, 10, 0)))
    with pytest.raises(ValueError, match="aware"):
        summary_of(run_sync, directory, user_id, datetime(2026, 3, 2, 10, 0))


def test_users_do_not_see_each_others_logins(directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    bob = add_user(run_sync, directory, "bob")
    record(run_sync, directory, LoginEvent(user_id, NOW, "dev-1", "DE", 52.52, 13.4, 20, "web"))
    assert summary_of(run_sync, directory, bob) == LoginSummary(None, {}, {}, {})



# Unknown users, cascades

def test_an_unknown_user_records_nothing(directory_backend: DirectoryBackend, directory: SqlDirectory,
                                         run_sync: Run) -> None:
    assert run_sync(directory.record_login("usr_gone", NOW, "dev-1", "DE", client_id="web")) is True
    for table in LOGIN_TABLES:
        assert count_rows(directory_backend, table) == 0


def test_deleting_the_user_deletes_their_login_events(directory_backend: DirectoryBackend, directory: SqlDirectory,
                                                      run_sync: Run, user_id: str) -> None:
    bob = add_user(run_sync, directory, "bob")
    for owner in (user_id, bob):
        record(run_sync, directory, LoginEvent(owner, NOW, "dev-1", "DE", 52.52, 13.4, 20, "web"))
    assert run_sync(directory.delete_user(user_id)) is True
    assert summary_of(run_sync, directory, user_id) == LoginSummary(None, {}, {}, {})
    for table in LOGIN_TABLES:  # bob's rows only (ON DELETE CASCADE)
        assert count_rows(directory_backend, table) == 1
    assert summary_of(run_sync, directory, bob).last == LoginEvent(bob, NOW, "dev-1", "DE", 52.52, 13.4, 20, "web")


# Into the triggers

def test_history_for_gives_the_triggers_the_last_login_place_and_known_clients() -> None:
    summary = LoginSummary(LoginEvent("usr_1", NOW, "dev-1", "DE", 52.52, 13.4, None, "web"),
                           {"dev-1": NOW}, {"DE": NOW}, {"web": NOW})
    history = history_for(summary, logins_count=4)
    assert history.logins_count == 4
    assert history.last_login == PastLogin(NOW, "dev-1", "DE", Place(52.52, 13.4, 0), "web")
    assert history.clients == frozenset({"web"})
    assert history_for(LoginSummary(None), 0).last_login is None


def test_two_cities_far_apart_minutes_apart_fire_impossible_travel_from_a_real_city_database_and_directory(
        tmp_path: Path, directory: SqlDirectory, run_sync: Run, user_id: str) -> None:
    geo_path = str(tmp_path / "GeoLite2-City.mmdb")
    write_city_db(geo_path)
    locator = open_locator(geo_path, allow_networks=(IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.0/24")))
    settings = TriggersSettings(impossible_travel=ImpossibleTravelTrigger(enabled=True),
                                new_device=RecentTrigger(enabled=True))
    try:
        berlin = locator.lookup("198.51.100.9")
        springfield = locator.lookup("203.0.113.7")
        assert berlin is not None and springfield is not None
        run_sync(directory.record_login(user_id, NOW - timedelta(minutes=20), "dev-1", berlin.country,
                                        client_id="web", geo={"latitude": berlin.latitude,
                                                              "longitude": berlin.longitude,
                                                              "accuracy_radius": berlin.accuracy_radius}))
        user = run_sync(directory.get_user(user_id))
        assert user is not None and user.logins_count == 1
        history = history_for(summary_of(run_sync, directory, user_id, NOW - timedelta(days=90)), user.logins_count)
        here = LoginFacts(user_id, "web", "dev-1", springfield.country, place_of(springfield), NOW)
        result = evaluate(settings, here, history)
        assert result.fired == ("impossible_travel",)
        assert result.risk.travel_kmh is not None and result.risk.travel_kmh > 20_000
        again = LoginFacts(user_id, "web", "dev-1", berlin.country, place_of(berlin), NOW)
        assert evaluate(settings, again, history).fired == ()
    finally:
        locator.close()
