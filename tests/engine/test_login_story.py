"""The story the product exists for, end to end over HTTP, on both challenge stores, and as several
instances would run it: Redis and a PostgreSQL directory.

A user logs in with a password; the rules decide a second factor is needed; the user has
enrolled a phone and an authenticator app, picks one, and is logged in with a token whose
`amr` says how.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, US_IP, LoginService, start_service, totp_now
from tests.postgres_db import empty, postgres_database

__all__ = ["postgres_database"]  # the fixture


@pytest.fixture(params=["memory", "redis", "redis+postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    if request.param == "redis+postgresql":
        url: str = request.getfixturevalue("postgres_database")
        empty(url)  # the app migrates it when it starts
        yield from start_service(tmp_path, loop_thread, "redis", directory_url=url)
        return
    yield from start_service(tmp_path, loop_thread, request.param)


@pytest.fixture
def enrolled(service: LoginService) -> dict[str, str]:
    """alice with an authenticator app (enrolled at her first login) and a phone (self-service)."""
    service.create_user(email="alice@example.com")
    first = service.first_login_enrolling_otp()
    assert first["status"] == "authenticated"
    assert len(first["recovery_codes"]) == 10
    sms_id, second = service.enroll_sms(first["token"])
    assert "recovery_codes" not in second
    return {"otp": first["factor_id"], "secret": first["secret"], "sms": sms_id,
            "recovery": first["recovery_codes"][0]}


def test_a_password_login_from_home_on_a_known_device_is_authenticated_with_amr_pwd(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    body = service.login(ip=US_IP).json()
    assert body["status"] == "authenticated"
    claims = service.decode(body["token"])
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "pwd"
    assert claims["sub"] == body["user_id"]


def test_abroad_the_user_picks_sms_types_the_code_and_is_logged_in(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required"
    assert [f["type"] for f in login["factors"]] == ["otp", "sms", "recovery"]
    assert login["factors"][0]["default"] is True
    assert login["factors"][1]["phone"] == "+1 *** *** 0123"
    assert login["default_factor_source"] == "rule"

    sent = service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": enrolled["sms"]})
    assert sent.json() == {"factor_id": enrolled["sms"], "type": "sms", "sent": True}
    code = service.sms.last_code_for("+14155550123")
    assert code is not None and len(code) == 6

    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": enrolled["sms"],
                                           "code": code})
    assert done.status_code == 200, done.text
    claims = service.decode(done.json()["token"])
    assert claims["amr"] == ["pwd", "sms"]
    assert claims["acr"] == "mfa"
    assert "https://mfa-engine.example/roles" in claims


def test_abroad_the_user_types_the_authenticator_code_and_is_logged_in(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    login = service.login(ip=DE_IP).json()
    started = service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": enrolled["otp"]})
    assert started.json()["sent"] is False
    code = totp_now(enrolled["secret"], service.clock.now())
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": enrolled["otp"],
                                           "code": code})
    assert done.status_code == 200, done.text
    assert service.decode(done.json()["token"])["amr"] == ["pwd", "otp"]


def test_a_recovery_code_logs_in_once(service: LoginService, enrolled: dict[str, str]) -> None:
    start = service.login(ip=DE_IP).json()
    done = service.post("/v1/mfa/verify", {"challenge_id": start["challenge_id"], "factor_id": "recovery",
                                           "code": enrolled["recovery"]})
    assert done.status_code == 200, done.text
    assert service.decode(done.json()["token"])["amr"] == ["pwd", "recovery"]
    second = service.login(ip=DE_IP).json()
    again = service.post("/v1/mfa/verify", {"challenge_id": second["challenge_id"], "factor_id": "recovery",
                                            "code": enrolled["recovery"]})
    assert again.status_code == 401


def test_the_last_used_factor_becomes_the_users_default(service: LoginService, enrolled: dict[str, str]) -> None:
    login = service.login(ip=US_IP, device_id="new-device").json()  # a new device: MFA, no rule order
    assert login["status"] == "mfa_required"
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": enrolled["sms"]})
    code = service.sms.last_code_for("+14155550123")
    service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": enrolled["sms"], "code": code})
    again = service.login(ip=US_IP, device_id="another-device").json()
    assert again["factors"][0]["type"] == "sms"
    assert again["default_factor_source"] == "user"


def test_wrong_credentials_and_unknown_users_get_the_same_401(service: LoginService) -> None:
    service.create_user()
    wrong = service.login(password="nope")
    unknown = service.login(username="mallory")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "invalid_credentials",
                                              "message": "the username or password is wrong"}


def test_a_rule_denial_is_a_403_with_the_rules_reason(service: LoginService) -> None:
    service.create_user(app_metadata={"blocked": True})
    response = service.login()
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert response.json()["reason"] == "this account is blocked; contact your administrator"


def test_a_first_login_asks_for_enrollment_and_enrolling_finishes_the_login(service: LoginService) -> None:
    service.create_user()
    login = service.login(ip=US_IP).json()
    assert login["status"] == "mfa_enrollment_required"
    assert login["factors_allowed"] == ["otp", "sms"]
    started = service.post("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": login["enrollment_token"]}).json()
    assert started["otpauth_uri"].startswith("otpauth://totp/")
    assert started["qr_svg"].lstrip().startswith("<")
    code = totp_now(started["secret"], service.clock.now())
    done = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"], "code": code}).json()
    assert done["status"] == "authenticated"
    assert len(done["recovery_codes"]) == 10
    assert service.decode(done["token"])["amr"] == ["pwd", "otp"]


def test_unknown_and_expired_challenges_and_wrong_codes_get_the_same_answer(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    login = service.login(ip=DE_IP).json()
    wrong = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": enrolled["otp"],
                                            "code": "000000"})
    unknown = service.post("/v1/mfa/verify", {"challenge_id": "A" * 22, "factor_id": enrolled["otp"],
                                              "code": "123456"})
    service.clock.advance(301)
    expired = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": enrolled["otp"],
                                              "code": totp_now(enrolled["secret"], service.clock.now())})
    assert wrong.status_code == unknown.status_code == expired.status_code == 401
    assert wrong.json() == unknown.json() == expired.json()


def test_a_store_outage_stops_the_login_with_a_503_never_a_token(tmp_path: Path, loop_thread: LoopThread) -> None:
    # A Redis that does not answer (nothing listens on port 1): no login may skip its factor.
    from engine.app import create_app
    from engine.clock import FrozenClock
    from engine.sms.recording import RecordingSmsGateway
    from tests.engine.asgi import ServiceClient
    from tests.engine.login_harness import START
    from tests.engine.service import admin_auth, auth, make_settings

    app = create_app(make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0"), clock=FrozenClock(START),
                     gateway=RecordingSmsGateway())
    with ServiceClient(app, loop_thread) as client:
        client.post("/admin/users", json={"username": "alice", "password": "long enough password"},
                    headers=admin_auth())
        response = client.post("/v1/login", json={"username": "alice", "password": "long enough password",
                                                  "client_id": "app", "context": {"ip": US_IP}}, headers=auth())
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["store"] == {"kind": "redis", "healthy": False, "persistent": "unknown",
                                          "persistence": "unknown"}


def test_a_challenge_is_bound_to_the_client_that_started_the_login(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    login = service.login(ip=DE_IP).json()  # client_id "app-1"
    other = service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": enrolled["sms"],
                                               "client_id": "app-2"})
    assert other.status_code == 401
    code = totp_now(enrolled["secret"], service.clock.now())
    stolen = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": enrolled["otp"],
                                             "code": code, "client_id": "app-2"})
    assert stolen.status_code == 401


def test_a_password_only_token_cannot_add_a_factor_to_a_protected_account(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    password_only = service.login(ip=US_IP).json()  # home, known device: no second factor asked
    assert service.decode(password_only["token"])["acr"] == "pwd"
    added = service.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": "+14155550199",
                                            "user_token": password_only["token"]})
    assert added.status_code == 401
    assert added.json()["error"] == "invalid_token"
    codes = service.post("/v1/mfa/recovery-codes", {"user_token": password_only["token"]})
    assert codes.status_code == 401


def test_starting_an_enrollment_drops_an_unfinished_one(service: LoginService, enrolled: dict[str, str]) -> None:
    token = service.login(ip=DE_IP).json()
    code = totp_now(enrolled["secret"], service.clock.now())
    user_token = service.post("/v1/mfa/verify", {"challenge_id": token["challenge_id"], "factor_id": enrolled["otp"],
                                                 "code": code}).json()["token"]
    first = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": user_token}).json()
    second = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": user_token}).json()
    stale = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": first["enrollment_id"],
                                                    "code": totp_now(first["secret"], service.clock.now())})
    assert stale.status_code == 401
    fresh = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": second["enrollment_id"],
                                                    "code": totp_now(second["secret"], service.clock.now())})
    assert fresh.status_code == 200


def test_a_transaction_from_a_new_device_still_accepts_only_the_authenticator(
    service: LoginService, enrolled: dict[str, str]
) -> None:
    # Rule 30 asks for the authenticator; rule 40 (new device) then asks for "a" factor: the
    # riskier login must not accept less than the safer one (issue 6, item 11).
    login = service.post("/v1/login", {"username": "alice", "password": "correct horse battery staple",
                                       "client_id": "app-1",
                                       "context": {"ip": US_IP, "device_id": "new-device", "action": "transaction"}})
    assert login.status_code == 200, login.text
    assert [(f["id"], f["type"]) for f in login.json()["factors"]] == [(enrolled["otp"], "otp")]
