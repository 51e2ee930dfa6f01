"""Step-up for sensitive actions (issue 10), over HTTP: POST /v1/step-up runs the rules again with the
action and the methods the user's token carries; a stale session gets a challenge exactly like a login's,
and finishing it returns a fresher token. Freshness moves with the clock the test holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import US_IP, LoginService, start_service, totp_now
from tests.engine.service import SIGNING_KEY, admin_auth, auth

FRESH_FOR_TRANSFERS = '''"""Ask for a fresh authenticator code or SMS before a transfer."""


def rule(user, context):
    if context.action == "transfer" and not context.authentication.completed_within(minutes=5, factors=["otp", "sms"]):
        context.multifactor.enable()
        context.multifactor.add_factor("otp")
'''
NO_ACCOUNT_CLOSING = '''"""Accounts are closed by support, never online."""


def rule(user, context):
    if context.action == "close_account":
        context.deny("call support to close your account")
'''
RULES = {"10-fresh-for-transfers": FRESH_FOR_TRANSFERS, "20-no-account-closing": NO_ACCOUNT_CLOSING}
CONTEXT = {"ip": US_IP, "device_id": "dev-1", "user_agent": "Firefox"}


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param, rules=RULES)


@pytest.fixture
def memory_service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, "memory", rules=RULES)


def password_token(service: LoginService) -> str:
    """alice logs in from home on her usual device: no rule asks for a factor at login."""
    login = service.login().json()
    assert login["status"] == "authenticated", login
    return str(login["token"])


def enroll_otp(service: LoginService, user_token: str) -> dict[str, str]:
    started = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": user_token})
    assert started.status_code == 200, started.text
    code = totp_now(started.json()["secret"], service.clock.now())
    confirmed = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started.json()["enrollment_id"],
                                                        "code": code})
    assert confirmed.status_code == 200, confirmed.text
    service.clock.advance(30)  # the next code must come from a later time step (replay)
    return {"factor_id": started.json()["factor_id"], "secret": started.json()["secret"]}


@pytest.fixture
def alice(service: LoginService) -> dict[str, Any]:
    """alice with an authenticator app, and a token from a password login at START."""
    user = service.create_user(email="alice@example.com")
    token = password_token(service)
    return {"user_id": user["user_id"], "token": token, **enroll_otp(service, token)}


def step_up(service: LoginService, token: str, action: str = "transfer",
            headers: dict[str, str] | None = None) -> httpx.Response:
    return service.post("/v1/step-up", {"user_token": token, "action": action, "context": CONTEXT}, headers)


def pass_otp(service: LoginService, challenge: dict[str, Any], factor: dict[str, str]) -> dict[str, Any]:
    code = totp_now(factor["secret"], service.clock.now())
    done = service.post("/v1/mfa/verify", {"challenge_id": challenge["challenge_id"],
                                           "factor_id": factor["factor_id"], "code": code})
    assert done.status_code == 200, done.text
    return done.json()  # type: ignore[no-any-return]


def stepped_up(service: LoginService, alice: dict[str, Any]) -> dict[str, Any]:
    challenge = step_up(service, alice["token"]).json()
    assert challenge["status"] == "mfa_required", challenge
    return pass_otp(service, challenge, alice)


# -- the story --------------------------------------------------------------------------------


def test_an_action_no_rule_guards_is_ok_on_the_password_alone(service: LoginService,
                                                               alice: dict[str, Any]) -> None:
    response = step_up(service, alice["token"], "view_statement")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_a_transfer_without_a_fresh_factor_gets_a_challenge_exactly_like_a_logins(
        service: LoginService, alice: dict[str, Any]) -> None:
    body = step_up(service, alice["token"]).json()
    assert body["status"] == "mfa_required"
    assert body["expires_in"] > 0 and body["challenge_id"] and body["decision_id"]
    assert [(f["type"], f["default"]) for f in body["factors"]] == [("otp", True), ("recovery", False)]
    assert body["factors"][0]["id"] == alice["factor_id"]
    assert body["default_factor_source"] == "rule"
    started = service.post("/v1/mfa/challenge", {"challenge_id": body["challenge_id"],
                                                 "factor_id": alice["factor_id"]})
    assert started.json() == {"factor_id": alice["factor_id"], "type": "otp", "sent": False}


def test_passing_the_step_up_returns_a_token_with_the_fresh_factor_and_its_time(
        service: LoginService, alice: dict[str, Any]) -> None:
    before = service.decode(alice["token"])
    done = stepped_up(service, alice)
    assert done["status"] == "authenticated"
    assert done["amr"] == ["pwd", "otp"]
    claims = service.decode(done["token"])
    now = int(service.clock.now().timestamp())
    assert claims["sub"] == before["sub"] == alice["user_id"]
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["acr"] == "mfa"
    assert claims["auth_time"] == before["auth_time"]  # the password was not typed again
    assert claims["auth_methods"] == [{"name": "pwd", "time": before["auth_time"]}, {"name": "otp", "time": now}]
    assert claims["iat"] == now


def test_freshness_is_per_time_five_minutes_at_10_05_is_ok_at_10_06_it_is_not(
        service: LoginService, alice: dict[str, Any]) -> None:
    fresh = stepped_up(service, alice)["token"]
    assert step_up(service, fresh).json() == {"status": "ok"}
    service.clock.advance(5 * 60)
    assert step_up(service, fresh).json() == {"status": "ok"}
    service.clock.advance(60)
    again = step_up(service, fresh).json()
    assert again["status"] == "mfa_required"
    fresher = pass_otp(service, again, alice)["token"]
    methods = service.decode(fresher)["auth_methods"]
    assert [m["name"] for m in methods] == ["pwd", "otp"]  # one entry per method: its latest time
    assert methods[1]["time"] == int(service.clock.now().timestamp())
    assert step_up(service, fresher).json() == {"status": "ok"}


def test_a_rule_that_denies_the_action_is_a_403(memory_service: LoginService) -> None:
    memory_service.create_user()
    response = step_up(memory_service, password_token(memory_service), "close_account")
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "access_denied"


def test_the_step_up_is_recorded_as_a_decision_with_its_action(memory_service: LoginService) -> None:
    memory_service.create_user()
    alice = {"token": password_token(memory_service)}
    alice.update(enroll_otp(memory_service, alice["token"]))
    body = step_up(memory_service, alice["token"]).json()
    record = memory_service.client.get(f"/admin/decisions/{body['decision_id']}", headers=admin_auth()).json()
    assert record["endpoint"] == "step_up"
    assert record["decision"] == "mfa"
    assert record["signals"]["action"] == "transfer"
    assert alice["token"] not in str(record)


def test_a_step_up_is_not_a_login_it_counts_nothing(service: LoginService, alice: dict[str, Any]) -> None:
    before = service.client.get(f"/admin/users/{alice['user_id']}", headers=admin_auth()).json()
    stepped_up(service, alice)
    after = service.client.get(f"/admin/users/{alice['user_id']}", headers=admin_auth()).json()
    assert after["logins_count"] == before["logins_count"]
    assert after["last_login"] == before["last_login"]


def test_a_user_without_a_factor_enrolls_one_and_gets_the_fresher_token(memory_service: LoginService) -> None:
    memory_service.create_user()
    token = password_token(memory_service)
    body = step_up(memory_service, token).json()
    assert body["status"] == "mfa_enrollment_required", body
    started = memory_service.post("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": body["enrollment_token"]})
    assert started.status_code == 200, started.text
    code = totp_now(started.json()["secret"], memory_service.clock.now())
    done = memory_service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started.json()["enrollment_id"],
                                                          "code": code}).json()
    claims = memory_service.decode(done["token"])
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["auth_time"] == memory_service.decode(token)["auth_time"]
    assert step_up(memory_service, done["token"]).json() == {"status": "ok"}


# -- tokens refused ---------------------------------------------------------------------------


def test_the_token_of_a_user_whose_mfa_was_reset_is_refused(service: LoginService, alice: dict[str, Any]) -> None:
    fresh = stepped_up(service, alice)["token"]
    reset = service.post(f"/admin/users/{alice['user_id']}/reset-mfa", {}, admin_auth())
    assert reset.status_code == 200, reset.text
    for token in (alice["token"], fresh):
        response = step_up(service, token, "view_statement")
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"
    # Nor may it enroll the next factor: whoever held it before the reset is not the user now.
    enroll = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": fresh})
    assert enroll.status_code == 401, enroll.text
    assert step_up(service, password_token(service), "view_statement").json() == {"status": "ok"}


def test_the_token_of_a_deleted_user_is_refused(service: LoginService, alice: dict[str, Any]) -> None:
    deleted = service.client.request("DELETE", f"/admin/users/{alice['user_id']}", headers=admin_auth())
    assert deleted.status_code == 204
    response = step_up(service, alice["token"], "view_statement")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"


def test_an_expired_token_is_refused(memory_service: LoginService) -> None:
    memory_service.create_user()
    token = password_token(memory_service)
    memory_service.clock.advance(3600)
    response = step_up(memory_service, token, "view_statement")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize("forge", ["garbage", "other_key", "no_signature"])
def test_a_token_the_engine_did_not_issue_is_refused(memory_service: LoginService, forge: str) -> None:
    memory_service.create_user()
    claims = memory_service.decode(password_token(memory_service))
    claims["auth_methods"] = [{"name": "pwd", "time": claims["auth_time"]},
                              {"name": "otp", "time": int(memory_service.clock.now().timestamp())}]
    token = {"garbage": "not.a.token",
             "other_key": jwt.encode(claims, "another-secret-of-at-least-32-characters", algorithm="HS256"),
             "no_signature": jwt.encode(claims, None, algorithm="none")}[forge]
    assert SIGNING_KEY not in token
    response = step_up(memory_service, token)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"


# -- the request ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, auth("wrong-key-0123456789abcdef0123456789"), {"Authorization": "Basic x"}])
def test_the_api_key_is_required(memory_service: LoginService, headers: dict[str, str]) -> None:
    memory_service.create_user()
    response = step_up(memory_service, password_token(memory_service), "view_statement", headers)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "transfer"}, "user_token"),
    ({"user_token": "a.b.c"}, "action"),
    ({"user_token": "a.b.c", "action": "transfer", "extra": 1}, "extra"),
    ({"user_token": "a.b.c", "action": "transfer", "context": {"pin": "1234"}}, "context.pin"),
    ({"user_token": "a.b.c", "action": "wire money"}, "action"),
    ({"user_token": "a.b.c", "action": 5}, "action"),
    ({"user_token": "a.b.c", "action": "transfer", "context": {"ip": "not-an-ip"}}, "context.ip"),
    ({"user_token": "a.b.c", "action": "transfer", "context": {"action": "login"}}, "context.action"),
    ({"user_token": 7, "action": "transfer"}, "user_token"),
])
def test_a_bad_body_is_a_400_naming_the_field(memory_service: LoginService, body: dict[str, Any],
                                               field: str) -> None:
    response = memory_service.post("/v1/step-up", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field


def test_a_body_that_is_not_an_object_is_a_400(memory_service: LoginService) -> None:
    response = memory_service.client.post("/v1/step-up", content=b"[1]", headers=auth())
    assert response.status_code == 400, response.text


# -- mfa.triggers.sensitive_actions -----------------------------------------------------------


@pytest.fixture
def wire_service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    """No rule at all: the sensitive_actions trigger alone guards 'wire'."""
    triggers = {"sensitive_actions": {"actions": ("wire",), "within_minutes": 5}}
    yield from start_service(tmp_path, loop_thread, "memory", rules={"10-roles": ROLES},
                             mfa=mfa_with_triggers(triggers))


ROLES = '''"""Nothing to ask."""


def rule(user, context):
    context.log("action", context.action)
'''


def mfa_with_triggers(triggers: dict[str, Any]) -> dict[str, Any]:
    from engine.config import SensitiveActionsTrigger, TriggersSettings

    sensitive = SensitiveActionsTrigger(**triggers["sensitive_actions"])
    return {"triggers": TriggersSettings(sensitive_actions=sensitive)}


def test_a_sensitive_action_always_needs_a_recent_factor(wire_service: LoginService) -> None:
    wire_service.create_user()
    token = password_token(wire_service)
    factor = enroll_otp(wire_service, token)
    assert step_up(wire_service, token, "transfer").json() == {"status": "ok"}
    challenge = step_up(wire_service, token, "wire").json()
    assert challenge["status"] == "mfa_required", challenge
    fresh = pass_otp(wire_service, challenge, factor)["token"]
    assert step_up(wire_service, fresh, "wire").json() == {"status": "ok"}
    wire_service.clock.advance(6 * 60)
    assert step_up(wire_service, fresh, "wire").json()["status"] == "mfa_required"


def test_evaluate_asks_for_a_factor_for_a_sensitive_action_without_a_recent_one(wire_service: LoginService) -> None:
    now = wire_service.clock.now()

    def evaluate(methods: list[dict[str, str]]) -> dict[str, Any]:
        body = {"user": {"user_id": "u-1", "factors": ["otp"]},
                "context": {"action": "wire", "authentication_methods": methods}}
        response = wire_service.post("/v1/evaluate", body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    stale = [{"name": "pwd", "timestamp": "2026-11-27T09:00:00+00:00"},
             {"name": "otp", "timestamp": "2026-11-27T09:50:00+00:00"}]
    fresh = [*stale[:1], {"name": "otp", "timestamp": now.isoformat()}]
    assert evaluate(stale)["decision"] == "mfa"
    assert evaluate(fresh)["decision"] == "allow"


# -- review of issue 10: a login's methods are its own, and a method from the future is not fresh ----

FRESH_AT_LOGIN = '''"""A login needs a factor passed within the hour; logs the methods the rules see."""


def rule(user, context):
    context.log(*[(m.name, m.timestamp == context.now) for m in context.authentication.methods])
    if not context.authentication.completed_within(minutes=60):
        context.multifactor.enable()
'''


@pytest.fixture
def fresh_at_login(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, "memory", rules={"10-fresh": FRESH_AT_LOGIN})


def test_a_login_refuses_caller_supplied_authentication_methods(fresh_at_login: LoginService) -> None:
    """The caller could otherwise claim a factor it never passed and skip a freshness rule."""
    fresh_at_login.create_user()
    now = fresh_at_login.clock.now().isoformat()
    forged = fresh_at_login.post("/v1/login", {
        "username": "alice", "password": "correct horse battery staple", "client_id": "app-1",
        "context": {**CONTEXT, "authentication_methods": [{"name": "otp", "timestamp": now}]}})
    assert forged.status_code == 400, forged.text
    assert (forged.json()["error"], forged.json()["field"]) == ("invalid_request", "context.authentication_methods")


def test_a_login_rule_sees_the_password_just_typed_as_the_only_method(fresh_at_login: LoginService) -> None:
    fresh_at_login.create_user()
    login = fresh_at_login.login().json()
    assert login["status"] == "mfa_enrollment_required", login
    assert login["required_by"] == ["rule:10-fresh"]
    trace = fresh_at_login.client.get(f"/admin/decisions/{login['decision_id']}", headers=admin_auth()).json()
    assert trace["rules"][0]["logs"] == ["('pwd', True)"]


def test_evaluate_keeps_the_callers_methods_but_one_dated_after_now_is_not_fresh(
        wire_service: LoginService) -> None:
    """/v1/evaluate's caller is the trusted backend describing its session: its methods stand, but a
    completion time later than now (a skewed clock, a forged entry) does not satisfy the
    sensitive_actions trigger."""
    now = wire_service.clock.now()
    for later in (now + timedelta(seconds=1), now + timedelta(days=365)):
        body = {"user": {"user_id": "u-1", "factors": ["otp"]},
                "context": {"action": "wire", "authentication_methods": [
                    {"name": "pwd", "timestamp": now.isoformat()}, {"name": "otp", "timestamp": later.isoformat()}]}}
        answer = wire_service.post("/v1/evaluate", body).json()
        assert (answer["decision"], answer["required_by"]) == ("mfa", ["trigger:sensitive_actions"]), answer


# -- review of issue 10: a step-up's challenge and the client that finishes it --------------------

def step_up_for(service: LoginService, token: str, client_id: str | None) -> dict[str, Any]:
    context = CONTEXT if client_id is None else {**CONTEXT, "client_id": client_id}
    challenge = service.post("/v1/step-up", {"user_token": token, "action": "transfer", "context": context}).json()
    assert challenge["status"] == "mfa_required", challenge
    return challenge  # type: ignore[no-any-return]


def verify_as(service: LoginService, challenge: dict[str, Any], factor: dict[str, str],
              client_id: str | None) -> httpx.Response:
    body = {"challenge_id": challenge["challenge_id"], "factor_id": factor["factor_id"],
            "code": totp_now(factor["secret"], service.clock.now())}
    return service.post("/v1/mfa/verify", body if client_id is None else {**body, "client_id": client_id})


def test_a_step_up_that_named_no_client_may_be_finished_by_a_verify_that_names_one(
        service: LoginService, alice: dict[str, Any]) -> None:
    """The token carries no client, so such a challenge is bound to none: a verify (or challenge)
    naming its client_id is not refused for it."""
    challenge = step_up_for(service, alice["token"], None)
    started = service.post("/v1/mfa/challenge", {"challenge_id": challenge["challenge_id"],
                                                 "factor_id": alice["factor_id"], "client_id": "app-1"})
    assert started.status_code == 200, started.text
    done = verify_as(service, challenge, alice, "app-1")
    assert done.status_code == 200, done.text
    assert done.json()["amr"] == ["pwd", "otp"]


def test_a_step_up_that_named_its_client_is_finished_by_that_client_only(
        service: LoginService, alice: dict[str, Any]) -> None:
    challenge = step_up_for(service, alice["token"], "app-1")
    refused = verify_as(service, challenge, alice, "app-2")
    assert refused.status_code == 401, refused.text  # the challenge is consumed
    again = step_up_for(service, alice["token"], "app-1")
    service.clock.advance(30)
    assert verify_as(service, again, alice, "app-1").status_code == 200
