"""`context.multifactor.return_to` reaches the application: in /v1/evaluate's answer, and in the
final answer of a login, straight after the password or after the second factor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, US_IP, LoginService, start_service
from tests.engine.service import auth, evaluate_body

RETURN_TO = "https://app.example.com/welcome?from=login"

RULES = {
    "10-deny-mallory": (
        "def rule(user, context):\n"
        "    if user.username == 'mallory':\n"
        "        context.multifactor.return_to = 'https://app.example.com/denied'\n"
        "        context.deny('blocked')\n"
    ),
    "20-abroad-needs-a-factor": (
        "def rule(user, context):\n"
        "    if context.connection.ip_country != 'US':\n"
        "        context.multifactor.enable()\n"
    ),
    "30-return-to": (
        "def rule(user, context):\n"
        f"    context.multifactor.returnTo = {RETURN_TO!r}\n"
    ),
}


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param, rules=RULES)


def test_evaluate_answers_the_rules_return_to(service: LoginService) -> None:
    body = service.client.post("/v1/evaluate", json=evaluate_body(US_IP), headers=auth()).json()

    assert (body["decision"], body["return_to"]) == ("allow", RETURN_TO)


def test_evaluate_answers_null_when_no_rule_set_one_and_nothing_when_denied(service: LoginService) -> None:
    denied = service.client.post("/v1/evaluate", json=evaluate_body(US_IP, username="mallory"), headers=auth())

    assert (denied.json()["decision"], denied.json()["return_to"]) == ("deny", None)


def test_a_login_the_rules_allow_answers_return_to_with_the_token(service: LoginService) -> None:
    service.create_user()

    body = service.login(ip=US_IP).json()

    assert (body["status"], body["return_to"]) == ("authenticated", RETURN_TO)


def test_a_login_that_needed_a_factor_answers_return_to_after_the_factor(service: LoginService) -> None:
    service.create_user()
    token = service.login(ip=US_IP).json()["token"]
    factor_id, _ = service.enroll_sms(token)
    service.sms.messages.clear()

    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required"
    assert "return_to" not in login  # not before the login is finished
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": factor_id})
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": factor_id,
                                           "code": service.sms.last_code_for("+14155550123")})

    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["return_to"]) == ("authenticated", RETURN_TO)


def test_a_denied_login_answers_no_return_to(service: LoginService) -> None:
    service.create_user("mallory")

    denied = service.login("mallory")

    assert denied.status_code == 403
    assert "return_to" not in denied.json() and "app.example.com" not in denied.text


def test_a_rule_with_a_plain_http_return_to_fails_closed_in_production(tmp_path: Path,
                                                                      loop_thread: LoopThread) -> None:
    rules = {"10-insecure": "def rule(user, context):\n    context.multifactor.return_to = 'http://app.example.com/'\n"}
    for service in start_service(tmp_path, loop_thread, "memory", rules=rules, environment="production"):
        body = service.client.post("/v1/evaluate", json=evaluate_body(US_IP), headers=auth()).json()

        assert (body["decision"], body["reason"], body["return_to"]) == ("deny", "rule_failed", None)
        assert body["trace"][0]["error"].startswith("ValueError: return_to must be an https:// URL")


def test_an_enrollment_that_finishes_a_login_answers_return_to_with_the_token(service: LoginService) -> None:
    from tests.engine.login_harness import totp_now

    service.create_user()
    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_enrollment_required", login
    started = service.post("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": login["enrollment_token"]}).json()
    done = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"],
                                                   "code": totp_now(started["secret"], service.clock.now())})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["return_to"]) == ("authenticated", RETURN_TO)
    assert "token" in body
