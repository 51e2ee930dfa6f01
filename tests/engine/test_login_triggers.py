"""Built-in triggers wired into /v1/login and /v1/evaluate (issue 10), over HTTP with the test
clock: what fires, what the rules see, what the decision record says, and what a login teaches
(only a complete one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import (
    CountriesTrigger,
    FirstLoginTrigger,
    ImpossibleTravelTrigger,
    RecentTrigger,
    TriggersSettings,
)
from engine.demo_geoip import CityEntry, write_city_db
from tests.conftest import LoopThread
from tests.engine.login_harness import LoginService, start_service, totp_now
from tests.engine.service import CA_IP, DE_IP, UNKNOWN_IP, US_IP, admin_auth, evaluate_body

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NEW_YORK_IP, LONDON_IP, NOWHERE_IP = "203.0.113.7", "198.51.100.7", "192.0.2.10"
# Two cities 5,570 km apart, and a network whose country is known but not its coordinates.
CITIES = {
    "203.0.113.0/24": CityEntry("US", "New York", 40.71, -74.01, 10, ("NY",), "America/New_York"),
    "198.51.100.0/24": CityEntry("GB", "London", 51.51, -0.13, 10, ("ENG",), "Europe/London"),
    "192.0.2.0/25": CityEntry("US", None, None, None, None),
}
ALL_ON: dict[str, Any] = {
    "first_login": {"enabled": True}, "new_device": {"enabled": True}, "new_country": {"enabled": True},
    "impossible_travel": {"enabled": True},
}
HISTORY_ON = {name: ALL_ON[name] for name in ("first_login", "new_device", "new_country")}
NO_RULES: dict[str, str] = {}


def triggers(**plain: Any) -> TriggersSettings:
    kinds = {"first_login": FirstLoginTrigger, "new_device": RecentTrigger, "new_country": RecentTrigger,
             "impossible_travel": ImpossibleTravelTrigger, "countries": CountriesTrigger}
    return TriggersSettings(**{name: kinds[name](**value) if name in kinds else value
                               for name, value in plain.items()})


def serve(tmp_path: Path, loop: LoopThread, store: str = "memory", rules: dict[str, str] | None = NO_RULES,
          cities: dict[str, CityEntry] | None = None, **mfa: Any) -> Iterator[LoginService]:
    if cities is not None:
        write_city_db(tmp_path / "city.mmdb", entries=cities)
    if "triggers" in mfa:
        mfa["triggers"] = triggers(**mfa["triggers"])
    yield from start_service(tmp_path, loop, store, rules=rules, mfa=mfa)


def record(service: LoginService, answer: dict[str, Any]) -> dict[str, Any]:
    response = service.client.get(f"/admin/decisions/{answer['decision_id']}", headers=admin_auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def user_with_app(service: LoginService) -> str:
    """alice with an authenticator app added by an admin: a factor, and no login yet."""
    user_id: str = service.create_user()["user_id"]
    added = service.post(f"/admin/users/{user_id}/factors", {"type": "otp", "secret": SECRET}, admin_auth())
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


def pass_factor(service: LoginService, login: dict[str, Any], factor_id: str) -> dict[str, Any]:
    assert login["status"] == "mfa_required", login
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": factor_id,
                                           "code": totp_now(SECRET, service.clock.now())})
    assert done.status_code == 200, done.text
    service.clock.advance(30)  # the next code comes from a later time step
    return done.json()  # type: ignore[no-any-return]


def fail_factor(service: LoginService, login: dict[str, Any], factor_id: str) -> None:
    assert login["status"] == "mfa_required", login
    wrong = str((int(totp_now(SECRET, service.clock.now())) + 1) % 1_000_000).zfill(6)
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": factor_id,
                                           "code": wrong})
    assert done.status_code == 401, done.text


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- history: only a complete login teaches ---------------------------------------------------

def test_a_failed_second_factor_makes_no_device_or_country_known(tmp_path: Path, loop_thread: LoopThread,
                                                                 store: str) -> None:
    for service in serve(tmp_path, loop_thread, store, triggers=HISTORY_ON):
        factor_id = user_with_app(service)
        first = service.login(ip=US_IP, device_id="dev-1").json()
        assert first["required_by"] == ["trigger:first_login", "trigger:new_device", "trigger:new_country"]
        fail_factor(service, first, factor_id)
        again = service.login(ip=US_IP, device_id="dev-1").json()
        assert again["required_by"] == first["required_by"]  # the failure taught nothing
        pass_factor(service, again, factor_id)

        known = service.login(ip=US_IP, device_id="dev-1").json()
        assert (known["status"], known["required_by"]) == ("authenticated", [])

        abroad = service.login(ip=DE_IP, device_id="dev-2").json()
        assert abroad["required_by"] == ["trigger:new_device", "trigger:new_country"]
        fail_factor(service, abroad, factor_id)
        abroad = service.login(ip=DE_IP, device_id="dev-2").json()
        assert abroad["required_by"] == ["trigger:new_device", "trigger:new_country"]
        assert record(service, abroad)["signals"]["new_device"] is True


def test_first_login_fires_exactly_once(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, triggers={"first_login": {"enabled": True}}):
        service.create_user()
        first = service.login().json()
        assert first["status"] == "mfa_enrollment_required"
        assert first["required_by"] == ["trigger:first_login"]
        assert service.login().json()["required_by"] == ["trigger:first_login"]  # abandoned: still the first
        service.first_login_enrolling_otp()
        for _ in range(2):
            later = service.login().json()
            assert (later["status"], later["required_by"]) == ("authenticated", [])
            assert record(service, later)["signals"]["first_login"] is False


def test_first_login_to_a_client(tmp_path: Path, loop_thread: LoopThread) -> None:
    on = {"first_login": {"enabled": True, "per_client": True}}
    for service in serve(tmp_path, loop_thread, triggers=on):
        factor_id = user_with_app(service)
        pass_factor(service, service.login().json(), factor_id)
        assert service.login().json()["status"] == "authenticated"
        other = service.post("/v1/login", {"username": "alice", "password": "correct horse battery staple",
                                           "client_id": "app-2", "context": {"ip": US_IP, "device_id": "dev-1"}})
        assert other.json()["required_by"] == ["trigger:first_login"]
        assert record(service, other.json())["signals"]["first_login_to_client"] is True


# -- geography -------------------------------------------------------------------------------

@pytest.mark.parametrize(("unknown_location", "required_by", "note"), [
    ("new", ["trigger:new_country", "trigger:countries"], "new_country: unknown location counted as new"),
    ("ignore", [], "new_country skipped: unknown location"),
])
def test_an_unknown_location_is_new_or_ignored_by_config(tmp_path: Path, loop_thread: LoopThread,
                                                         unknown_location: str, required_by: list[str],
                                                         note: str) -> None:
    config = {"new_country": {"enabled": True}, "countries": {"require_mfa_outside": ("US", "CA")},
              "unknown_location": unknown_location}
    for service in serve(tmp_path, loop_thread, triggers=config):
        factor_id = user_with_app(service)
        pass_factor(service, service.login(ip=US_IP).json(), factor_id)
        login = service.login(ip=UNKNOWN_IP).json()
        assert login["required_by"] == required_by
        assert note in record(service, login)["notes"]
        assert record(service, login)["signals"]["ip_country"] is None


def test_a_country_outside_require_mfa_outside_needs_a_factor(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, triggers={"countries": {"require_mfa_outside": ("US",)}}):
        factor_id = user_with_app(service)
        assert service.login(ip=US_IP).json()["status"] == "authenticated"
        canada = service.login(ip=CA_IP).json()
        assert canada["required_by"] == ["trigger:countries"]
        pass_factor(service, canada, factor_id)


def test_a_denied_country_gets_403_with_a_reason_and_a_record(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, triggers={"countries": {"deny": ("DE",)}}):
        service.create_user()
        denied = service.login(ip=DE_IP)
        assert denied.status_code == 403
        assert (denied.json()["error"], denied.json()["reason"]) == ("access_denied", "country_denied")
        assert record(service, denied.json())["decision"] == "deny"
        evaluated = service.post("/v1/evaluate", evaluate_body(DE_IP)).json()
        assert (evaluated["decision"], evaluated["reason"]) == ("deny", "country_denied")


# -- impossible travel on a generated City database -----------------------------------------------

def test_impossible_travel_between_two_cities_minutes_apart(tmp_path: Path, loop_thread: LoopThread,
                                                            store: str) -> None:
    for service in serve(tmp_path, loop_thread, store, cities=CITIES, triggers={"impossible_travel": {"enabled": True}}):
        factor_id = user_with_app(service)
        first = service.login(ip=NEW_YORK_IP).json()
        assert first["status"] == "authenticated"
        assert "impossible_travel skipped: no previous login" in record(service, first)["notes"]
        service.clock.advance(10 * 60)
        london = service.login(ip=LONDON_IP).json()
        assert london["required_by"] == ["trigger:impossible_travel"]
        kmh = record(service, london)["signals"]["travel_kmh"]
        assert 30_000 < kmh < 35_000  # about 5,550 km in 10 minutes
        fail_factor(service, london, factor_id)
        # The failed login taught nothing: New York is still the last place, now further away in time.
        service.clock.advance(12 * 3600)
        slow = service.login(ip=LONDON_IP).json()
        assert (slow["status"], slow["required_by"]) == ("authenticated", [])
        assert 400 < record(service, slow)["signals"]["travel_kmh"] < 500


def test_impossible_travel_is_skipped_with_a_note_for_unknown_coordinates(tmp_path: Path,
                                                                         loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, cities=CITIES, triggers={"impossible_travel": {"enabled": True}}):
        user_with_app(service)
        assert service.login(ip=NEW_YORK_IP).json()["status"] == "authenticated"
        service.clock.advance(60)
        nowhere = service.login(ip=NOWHERE_IP).json()
        assert (nowhere["status"], nowhere["required_by"]) == ("authenticated", [])
        trace = record(service, nowhere)
        assert "impossible_travel skipped: unknown coordinates" in trace["notes"]
        assert trace["signals"]["travel_kmh"] is None


def test_a_login_without_coordinates_in_between_does_not_hide_impossible_travel(
        tmp_path: Path, loop_thread: LoopThread, store: str) -> None:
    """Review of issue 10: New York, then (a minute later) an address without coordinates, then London
    nine minutes after that: still impossible from New York, timed from the New York login."""
    for service in serve(tmp_path, loop_thread, store, cities=CITIES, triggers={"impossible_travel": {"enabled": True}}):
        user_with_app(service)
        assert service.login(ip=NEW_YORK_IP).json()["status"] == "authenticated"
        service.clock.advance(60)
        assert service.login(ip=NOWHERE_IP).json()["status"] == "authenticated"
        service.clock.advance(9 * 60)
        london = service.login(ip=LONDON_IP).json()
        assert london["required_by"] == ["trigger:impossible_travel"], london
        assert 30_000 < record(service, london)["signals"]["travel_kmh"] < 35_000  # over 10 minutes, not 9


def test_evaluate_takes_the_previous_login_from_the_body(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, cities=CITIES, triggers={"impossible_travel": {"enabled": True}}):
        ten_minutes_ago = "2026-11-27T09:50:00+00:00"
        body = evaluate_body(LONDON_IP, last_login=ten_minutes_ago,
                             last_login_geo={"latitude": 40.71, "longitude": -74.01, "accuracy_radius": 10})
        answer = service.post("/v1/evaluate", body).json()
        assert (answer["decision"], answer["required_by"]) == ("mfa", ["trigger:impossible_travel"])
        assert answer["triggers_fired"] == ["impossible_travel"]
        without_place = service.post("/v1/evaluate", evaluate_body(LONDON_IP, last_login=ten_minutes_ago)).json()
        assert without_place["decision"] == "allow"
        assert "impossible_travel skipped: unknown coordinates" in without_place["notes"]
        assert "impossible_travel skipped: no previous login" in service.post(
            "/v1/evaluate", evaluate_body(LONDON_IP)).json()["notes"]


def test_evaluate_history_fields_drive_the_triggers(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, triggers=ALL_ON):
        known = service.post("/v1/evaluate", evaluate_body(US_IP, known_client_ids=["app-1"])).json()
        assert (known["decision"], known["required_by"]) == ("allow", [])
        new = service.post("/v1/evaluate", evaluate_body(DE_IP, known_device_ids=["dev-9"])).json()
        assert new["required_by"] == ["trigger:new_device", "trigger:new_country"]
        unknown = evaluate_body(US_IP)
        del unknown["user"]["known_device_ids"]
        answer = service.post("/v1/evaluate", unknown).json()
        assert answer["required_by"] == ["trigger:new_device"]
        assert "new_device: known devices unknown, counted as new" in answer["notes"]


# -- what rules see -------------------------------------------------------------------------------

SHOW = '''
"""Logs the GeoIP detail and the risk figures."""


def rule(user, context):
    geo = context.connection.geo
    context.log(geo.country_name, geo.continent, geo.subdivision, geo.time_zone)
    risk = context.risk
    context.log(risk.first_login, risk.first_login_to_client, risk.new_device, risk.new_country, risk.travel_kmh)
'''


def test_rules_see_the_geoip_detail_and_the_risk_figures(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, rules={"10-show": SHOW}):
        body = evaluate_body(DE_IP, known_client_ids=["app-1"], last_login="2026-11-27T08:00:00+00:00",
                             last_login_geo={"latitude": 52.52, "longitude": 13.405})
        answer = service.post("/v1/evaluate", body).json()
        assert answer["trace"][0]["logs"] == ["Germany EU BE Europe/Berlin", "False False False True 0.0"]


SHOW_FIRED = '''
"""Logs which triggers fired and whether the travel was impossible."""


def rule(user, context):
    context.log(context.risk.triggers, context.risk.impossible_travel)
    if "impossible_travel" in context.risk.triggers:
        context.multifactor.enable()
'''


def test_rules_see_which_triggers_fired_and_whether_the_travel_was_impossible(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    """Review of issue 10: context.risk.triggers (the fired names, in the decision's order) and
    context.risk.impossible_travel (None without a previous place; a fact even with the trigger off)."""
    on = {"new_country": {"enabled": True}, "impossible_travel": {"enabled": True}}
    for service in serve(tmp_path, loop_thread, rules={"10-show": SHOW_FIRED}, cities=CITIES, triggers=on):
        ten_minutes_ago = "2026-11-27T09:50:00+00:00"
        new_york = {"latitude": 40.71, "longitude": -74.01, "accuracy_radius": 10}
        far = service.post("/v1/evaluate", evaluate_body(LONDON_IP, known_countries=["US"], last_login=ten_minutes_ago,
                                                         last_login_geo=new_york)).json()
        assert far["trace"][0]["logs"] == ["('new_country', 'impossible_travel') True"]
        assert far["required_by"] == ["trigger:new_country", "trigger:impossible_travel", "rule:10-show"]
        near = service.post("/v1/evaluate", evaluate_body(NEW_YORK_IP, known_countries=["US"],
                                                          last_login=ten_minutes_ago, last_login_geo=new_york)).json()
        assert near["trace"][0]["logs"] == ["() False"]
        unknown = service.post("/v1/evaluate", evaluate_body(LONDON_IP, known_countries=["GB"])).json()
        assert unknown["trace"][0]["logs"] == ["() None"]
    (tmp_path / "off").mkdir()
    for service in serve(tmp_path / "off", loop_thread, rules={"10-show": SHOW_FIRED}, cities=CITIES, triggers={}):
        off = service.post("/v1/evaluate", evaluate_body(LONDON_IP, last_login=ten_minutes_ago,
                                                         last_login_geo=new_york)).json()
        assert off["trace"][0]["logs"] == ["() True"]  # the fact, though the trigger is off


def test_the_rule_lint_knows_the_new_risk_fields() -> None:
    from engine import rule_lint

    source = '"""x"""\n\ndef rule(user, context):\n    context.log(context.risk.triggers, context.risk.impossible_travel)\n'
    assert rule_lint.lint(source) == []


# -- the seed story, unchanged -------------------------------------------------------------------------

SMS_FIRST = '''
"""Require a second factor outside the US and Canada, SMS first."""


def rule(user, context):
    if context.connection.ip_country not in ("US", "CA"):
        context.multifactor.enable()
        context.multifactor.add_factor("sms")
        context.multifactor.add_factor("otp")
'''
ANY_ORDER = '''
"""Require a second factor outside the US and Canada, in no particular order."""


def rule(user, context):
    if context.connection.ip_country not in ("US", "CA"):
        context.multifactor.enable()
'''
FIRST_LOGIN = '''
"""A first login needs a second factor."""


def rule(user, context):
    if context.risk.first_login:
        context.multifactor.enable()
'''


def enrolled_both(service: LoginService) -> dict[str, Any]:
    service.create_user(email="alice@example.com")
    first = service.first_login_enrolling_otp()
    sms_id, _ = service.enroll_sms(first["token"])
    return {"otp": first["factor_id"], "secret": first["secret"], "sms": sms_id}


def test_a_rule_prioritising_sms_makes_it_the_default_though_the_user_has_an_app(
        tmp_path: Path, loop_thread: LoopThread, store: str) -> None:
    for service in serve(tmp_path, loop_thread, store, rules={"20-sms-first": SMS_FIRST, "40-first": FIRST_LOGIN}):
        enrolled_both(service)
        login = service.login(ip=DE_IP).json()
        assert [(f["type"], f["default"]) for f in login["factors"]] == [("sms", True), ("otp", False),
                                                                        ("recovery", False)]
        assert login["default_factor_source"] == "rule"
        assert login["required_by"] == ["rule:20-sms-first"]


def test_without_a_rule_order_the_last_factor_used_is_the_default(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in serve(tmp_path, loop_thread, rules={"20-abroad": ANY_ORDER, "40-first": FIRST_LOGIN}):
        factors = enrolled_both(service)
        login = service.login(ip=DE_IP).json()
        assert (login["factors"][0]["type"], login["default_factor_source"]) == ("otp", "user")
        service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": factors["sms"]})
        done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": factors["sms"],
                                               "code": service.sms.last_code_for("+14155550123")})
        assert done.status_code == 200, done.text
        again = service.login(ip=DE_IP).json()
        assert (again["factors"][0]["type"], again["default_factor_source"]) == ("sms", "user")
