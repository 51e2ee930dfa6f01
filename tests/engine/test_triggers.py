"""Built-in triggers (issue 10) as pure functions: facts and history in, what fired out."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.config import (
    CountriesTrigger,
    FirstLoginTrigger,
    ImpossibleTravelTrigger,
    RecentTrigger,
    SensitiveActionsTrigger,
    TriggersSettings,
)
from engine.geo import GeoFacts
from engine.triggers import (
    CompletedMethod,
    History,
    LoginFacts,
    PastLogin,
    Place,
    Risk,
    distance_km,
    evaluate,
    place_of,
    travel_kmh,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BERLIN = Place(52.52, 13.405, 20)
POTSDAM = Place(52.39, 13.065, 20)     # about 27 km from Berlin
NEW_YORK = Place(40.71, -74.01, 10)
SYDNEY = Place(-33.87, 151.21, 0)

ALL_ON = TriggersSettings(
    first_login=FirstLoginTrigger(enabled=True, per_client=True),
    new_device=RecentTrigger(enabled=True, days=90),
    new_country=RecentTrigger(enabled=True, days=90),
    impossible_travel=ImpossibleTravelTrigger(enabled=True, max_kmh=1000),
)


def login(**changes: object) -> LoginFacts:
    base = LoginFacts(user_id="usr_1", client_id="web", device_id="dev-1", country="DE", place=BERLIN, at=NOW)
    return replace(base, **changes)  # type: ignore[arg-type]


def history(*, last: PastLogin | None = None, devices: dict[str, datetime] | None = None,
            countries: dict[str, datetime] | None = None, clients: frozenset[str] = frozenset({"web"}),
            logins_count: int = 3) -> History:
    last = last or PastLogin(at=NOW - timedelta(days=1), device_id="dev-1", country="DE", place=BERLIN,
                             client_id="web")
    return History(logins_count=logins_count, last_login=last,
                   device_last_seen={"dev-1": NOW - timedelta(days=1)} if devices is None else devices,
                   country_last_seen={"DE": NOW - timedelta(days=1)} if countries is None else countries,
                   clients=clients)


def previous(place: Place | None, minutes_ago: float, country: str = "DE") -> PastLogin:
    return PastLogin(at=NOW - timedelta(minutes=minutes_ago), device_id="dev-1", country=country, place=place,
                     client_id="web")


# Geometry

def test_the_great_circle_distance_between_berlin_and_new_york_is_about_6385_km() -> None:
    assert distance_km(BERLIN, NEW_YORK) == pytest.approx(6385, abs=10)
    assert distance_km(BERLIN, BERLIN) == 0.0
    assert distance_km(BERLIN, NEW_YORK) == distance_km(NEW_YORK, BERLIN)


def test_antipodes_are_half_the_earth_apart_without_a_domain_error() -> None:
    assert distance_km(Place(0.0, 0.0, 0), Place(0.0, 180.0, 0)) == pytest.approx(math.pi * 6371.0088)


def test_travel_speed_subtracts_both_accuracy_radii_and_divides_by_the_hours_between() -> None:
    speed = travel_kmh(BERLIN, NOW - timedelta(hours=2), NEW_YORK, NOW)
    assert speed == pytest.approx((distance_km(BERLIN, NEW_YORK) - 30) / 2)


def test_the_accuracy_radii_absorb_nearby_places_and_never_make_a_negative_distance() -> None:
    wide_berlin, wide_potsdam = replace(BERLIN, accuracy_radius_km=20), replace(POTSDAM, accuracy_radius_km=20)
    assert travel_kmh(wide_berlin, NOW - timedelta(minutes=1), wide_potsdam, NOW) == 0.0


@pytest.mark.parametrize("elapsed", [timedelta(0), timedelta(seconds=-30)])
def test_no_time_or_negative_time_between_distant_places_is_infinite_speed(elapsed: timedelta) -> None:
    assert travel_kmh(BERLIN, NOW - elapsed, NEW_YORK, NOW) == math.inf


@pytest.mark.parametrize("elapsed", [timedelta(0), timedelta(seconds=-30)])
def test_no_time_between_places_within_the_radii_is_no_speed(elapsed: timedelta) -> None:
    assert travel_kmh(BERLIN, NOW - elapsed, POTSDAM, NOW) == 0.0


def test_place_of_geo_facts_needs_both_coordinates_and_reads_an_unknown_radius_as_zero() -> None:
    assert place_of(None) is None
    assert place_of(GeoFacts("DE", None, None, None, None, "Germany", "EU")) is None
    assert place_of(GeoFacts("DE", "Berlin", 52.52, None, 20)) is None
    assert place_of(GeoFacts("DE", "Berlin", 52.52, 13.405, 20)) == Place(52.52, 13.405, 20)
    assert place_of(GeoFacts("DE", "Berlin", 52.52, 13.405, None)) == Place(52.52, 13.405, 0)


# Impossible travel

def test_two_cities_far_apart_minutes_apart_fire_impossible_travel() -> None:
    result = evaluate(ALL_ON, login(place=NEW_YORK, country="US"),
                      history(last=previous(BERLIN, 30), countries={"DE": NOW, "US": NOW}))
    assert "impossible_travel" in result.fired
    assert result.risk.travel_kmh == pytest.approx((distance_km(BERLIN, NEW_YORK) - 30) * 2)


def test_the_same_city_minutes_apart_does_not_fire() -> None:
    result = evaluate(ALL_ON, login(), history(last=previous(BERLIN, 5)))
    assert result.fired == ()
    assert result.risk.travel_kmh == 0.0


def test_a_nearby_city_within_the_accuracy_radii_does_not_fire_even_a_minute_apart() -> None:
    wide = replace(POTSDAM, accuracy_radius_km=50)
    result = evaluate(ALL_ON, login(place=wide), history(last=previous(BERLIN, 1)))
    assert "impossible_travel" not in result.fired
    assert result.risk.travel_kmh == 0.0


def test_a_long_trip_over_enough_hours_is_possible() -> None:
    result = evaluate(ALL_ON, login(place=NEW_YORK, country="US"),
                      history(last=previous(BERLIN, 10 * 60), countries={"DE": NOW, "US": NOW}))
    assert "impossible_travel" not in result.fired
    assert result.risk.travel_kmh is not None and 600 < result.risk.travel_kmh < 700


@pytest.mark.parametrize(("max_kmh", "fires"), [(990, True), (1010, False)])
def test_the_threshold_is_max_kmh_and_only_above_it_fires(max_kmh: int, fires: bool) -> None:
    exact_berlin, exact_new_york = replace(BERLIN, accuracy_radius_km=0), replace(NEW_YORK, accuracy_radius_km=0)
    minutes = distance_km(BERLIN, NEW_YORK) / 1000 * 60  # exactly 1000 km/h
    settings = replace(ALL_ON, impossible_travel=ImpossibleTravelTrigger(enabled=True, max_kmh=max_kmh))
    result = evaluate(settings, login(place=exact_new_york, country="US"),
                      history(last=previous(exact_berlin, minutes), countries={"DE": NOW, "US": NOW}))
    assert result.risk.travel_kmh == pytest.approx(1000)
    assert ("impossible_travel" in result.fired) is fires


def test_the_same_instant_at_a_distance_fires_and_the_plain_figure_stays_a_finite_number() -> None:
    result = evaluate(ALL_ON, login(place=SYDNEY, country="AU"),
                      history(last=previous(BERLIN, 0), countries={"DE": NOW, "AU": NOW}))
    assert "impossible_travel" in result.fired
    assert result.risk.travel_kmh == math.inf
    plain = result.risk.to_plain()["travel_kmh"]
    assert isinstance(plain, float) and math.isfinite(plain) and plain > 1e300  # JSON has no infinity


@pytest.mark.parametrize(("now_place", "before_place"), [(None, BERLIN), (BERLIN, None), (None, None)])
def test_unknown_coordinates_skip_impossible_travel_and_the_notes_say_so(
        now_place: Place | None, before_place: Place | None) -> None:
    result = evaluate(ALL_ON, login(place=now_place), history(last=previous(before_place, 1)))
    assert "impossible_travel" not in result.fired
    assert result.risk.travel_kmh is None
    assert "impossible_travel skipped: unknown coordinates" in result.notes


def test_without_a_previous_login_impossible_travel_is_skipped_with_a_note() -> None:
    result = evaluate(ALL_ON, login(), History(logins_count=0, last_login=None, device_last_seen={},
                                               country_last_seen={}, clients=frozenset()))
    assert result.risk.travel_kmh is None
    assert "impossible_travel skipped: no previous login" in result.notes


def test_a_disabled_trigger_does_not_fire_but_rules_still_see_its_figure() -> None:
    result = evaluate(TriggersSettings(), login(place=NEW_YORK, country="US"),
                      history(last=previous(BERLIN, 30), countries={"DE": NOW}))
    assert result.fired == ()
    assert result.risk.travel_kmh is not None and result.risk.travel_kmh > 1000
    assert result.risk.new_country is True
    assert result.notes == ()


# New device, new country: windows

def test_a_device_seen_within_the_window_is_known_and_one_seen_before_it_is_new() -> None:
    at_edge = history(devices={"dev-1": NOW - timedelta(days=90)})
    past_edge = history(devices={"dev-1": NOW - timedelta(days=90, seconds=1)})
    assert evaluate(ALL_ON, login(), at_edge).risk.new_device is False
    expired = evaluate(ALL_ON, login(), past_edge)
    assert expired.risk.new_device is True
    assert expired.fired == ("new_device",)


def test_a_device_never_seen_is_new() -> None:
    result = evaluate(ALL_ON, login(device_id="dev-2"), history())
    assert result.fired == ("new_device",)
    assert result.risk.new_device is True


def test_the_window_is_the_configured_number_of_days() -> None:
    short = replace(ALL_ON, new_device=RecentTrigger(enabled=True, days=7))
    seen = history(devices={"dev-1": NOW - timedelta(days=8)})
    assert evaluate(short, login(), seen).fired == ("new_device",)
    assert evaluate(ALL_ON, login(), seen).fired == ()


def test_a_login_without_a_device_id_counts_as_a_new_device_for_the_trigger() -> None:
    # The caller chooses whether to send a device id: leaving it out must not avoid the trigger.
    result = evaluate(ALL_ON, login(device_id=None), history())
    assert result.fired == ("new_device",)
    assert result.risk.new_device is None
    assert "new_device: no device id, counted as new" in result.notes


def test_a_country_seen_within_the_window_is_known_and_an_expired_one_is_new() -> None:
    assert evaluate(ALL_ON, login(), history(countries={"DE": NOW - timedelta(days=89)})).fired == ()
    expired = evaluate(ALL_ON, login(), history(countries={"DE": NOW - timedelta(days=91)}))
    assert expired.fired == ("new_country",)
    assert expired.risk.new_country is True


def test_an_unknown_location_counts_as_a_new_country_by_default_but_rules_see_none() -> None:
    result = evaluate(ALL_ON, login(country=None, place=None), history())
    assert result.fired == ("new_country",)
    assert result.risk.new_country is None
    assert "new_country: unknown location counted as new" in result.notes


def test_an_unknown_location_is_ignored_when_configured() -> None:
    settings = replace(ALL_ON, unknown_location="ignore")
    result = evaluate(settings, login(country=None, place=None), history())
    assert result.fired == ()
    assert "new_country skipped: unknown location" in result.notes


# First login

def test_the_first_login_fires_first_login_and_a_later_one_does_not() -> None:
    first = evaluate(ALL_ON, login(), History(logins_count=0, last_login=None, device_last_seen={},
                                              country_last_seen={}, clients=frozenset()))
    assert first.fired == ("first_login", "new_device", "new_country")
    assert (first.risk.first_login, first.risk.first_login_to_client) == (True, True)
    later = evaluate(ALL_ON, login(), history())
    assert later.risk == Risk(first_login=False, first_login_to_client=False, new_device=False,
                              new_country=False, travel_kmh=0.0, impossible_travel=False)


def test_the_first_login_to_another_client_fires_only_with_per_client() -> None:
    other = login(client_id="mobile")
    assert evaluate(ALL_ON, other, history()).fired == ("first_login",)
    assert evaluate(ALL_ON, other, history()).risk.first_login_to_client is True
    not_per_client = replace(ALL_ON, first_login=FirstLoginTrigger(enabled=True, per_client=False))
    result = evaluate(not_per_client, other, history())
    assert result.fired == ()
    assert result.risk.first_login_to_client is True


def test_a_login_without_a_client_id_has_no_per_client_answer() -> None:
    result = evaluate(ALL_ON, login(client_id=None), history())
    assert result.fired == ()
    assert result.risk.first_login_to_client is None
    assert "first_login per client skipped: no client_id" in result.notes


# Countries

def test_a_login_outside_the_home_countries_fires_countries() -> None:
    home = replace(ALL_ON, countries=CountriesTrigger(require_mfa_outside=("US", "CA")))
    assert evaluate(home, login(), history()).fired == ("countries",)
    assert evaluate(home, login(country="US"), history(countries={"US": NOW})).fired == ()


def test_an_unknown_country_is_outside_the_home_countries_unless_ignored() -> None:
    home = replace(ALL_ON, countries=CountriesTrigger(require_mfa_outside=("US",)))
    assert "countries" in evaluate(home, login(country=None, place=None), history()).fired
    ignoring = replace(home, unknown_location="ignore")
    assert "countries" not in evaluate(ignoring, login(country=None, place=None), history()).fired


def test_a_denied_country_gives_a_deny_reason_and_an_unknown_one_is_never_denied() -> None:
    deny = replace(ALL_ON, countries=CountriesTrigger(deny=("KP",)))
    denied = evaluate(deny, login(country="KP", place=None), history(countries={"KP": NOW}))
    assert denied.deny_reason == "country_denied"
    assert evaluate(deny, login(), history()).deny_reason is None
    assert evaluate(deny, login(country=None, place=None), history()).deny_reason is None


# Sensitive actions

STEP_UP = replace(ALL_ON, sensitive_actions=SensitiveActionsTrigger(actions=("transaction",), within_minutes=5))


def test_a_sensitive_action_without_a_recent_factor_fires() -> None:
    assert evaluate(STEP_UP, login(action="transaction"), history()).fired == ("sensitive_actions",)
    stale = (CompletedMethod("pwd", NOW), CompletedMethod("otp", NOW - timedelta(minutes=6)))
    assert evaluate(STEP_UP, login(action="transaction", methods=stale), history()).fired == ("sensitive_actions",)


def test_a_factor_completed_within_the_minutes_satisfies_a_sensitive_action() -> None:
    fresh = (CompletedMethod("pwd", NOW), CompletedMethod("sms", NOW - timedelta(minutes=5)))
    assert evaluate(STEP_UP, login(action="transaction", methods=fresh), history()).fired == ()


def test_a_password_alone_never_satisfies_a_sensitive_action_and_other_actions_are_not_sensitive() -> None:
    assert evaluate(STEP_UP, login(action="transaction", methods=(CompletedMethod("pwd", NOW),)),
                    history()).fired == ("sensitive_actions",)
    assert evaluate(STEP_UP, login(action="change_profile"), history()).fired == ()
    assert evaluate(STEP_UP, login(), history()).fired == ()


def test_the_self_service_pages_action_is_sensitive_with_no_configuration() -> None:
    """account_security (the hosted /account/security changes) always needs a recent factor."""
    unconfigured = TriggersSettings()
    stale = (CompletedMethod("pwd", NOW), CompletedMethod("otp", NOW - timedelta(minutes=6)))
    fresh = (CompletedMethod("pwd", NOW), CompletedMethod("otp", NOW - timedelta(minutes=4)))
    assert evaluate(unconfigured, login(action="account_security", methods=stale), history()).fired == \
        ("sensitive_actions",)
    assert evaluate(unconfigured, login(action="account_security", methods=fresh), history()).fired == ()
    assert evaluate(unconfigured, login(action="transaction", methods=stale), history()).fired == ()


# Unknown history, order, notes

def test_without_history_the_history_triggers_are_skipped_and_their_figures_are_none() -> None:
    result = evaluate(ALL_ON, login(), None)
    assert result.fired == ()
    assert result.risk == Risk(first_login=None, first_login_to_client=None, new_device=None, new_country=None,
                               travel_kmh=None)
    assert "history unknown: first_login, new_device, new_country and impossible_travel skipped" in result.notes


def test_everything_at_once_fires_in_a_fixed_order_and_plain_risk_is_what_rules_receive() -> None:
    settings = replace(STEP_UP, countries=CountriesTrigger(require_mfa_outside=("DE",)))
    result = evaluate(settings, login(client_id="mobile", device_id="dev-9", country="US", place=NEW_YORK,
                                      action="transaction"), history(last=previous(BERLIN, 10)))
    assert result.fired == ("first_login", "new_device", "new_country", "impossible_travel", "countries",
                            "sensitive_actions")
    plain = result.risk.to_plain()
    assert plain == {"first_login": False, "first_login_to_client": True, "new_device": True, "new_country": True,
                     "travel_kmh": result.risk.travel_kmh, "impossible_travel": True}


def test_login_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate(ALL_ON, login(at=datetime(2026, 3, 2, 10, 0)), history())


def test_the_module_imports_only_the_standard_library_config_and_geo_types() -> None:
    # Pure functions: no store, clock or HTTP; the flow hands them facts and history.
    import ast
    import sys
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "engine" / "triggers.py").read_text(encoding="utf-8")
    imported = {node.module if isinstance(node, ast.ImportFrom) else alias.name
                for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names}
    assert {name for name in imported if name and name.split(".")[0] not in sys.stdlib_module_names} == \
        {"engine.config", "engine.geo"}
