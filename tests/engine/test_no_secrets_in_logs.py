"""Secrets never reach a log line or an error body: a whole login is captured and searched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import ADMIN_TOKEN, API_KEY, SECRET_KEY, SIGNING_KEY, admin_auth

PASSWORD = "tr0ub4dor-and-3-horses"
PHONE = "+14155550123"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param)


def test_no_password_code_secret_or_token_appears_in_logs_or_error_bodies(
    service: LoginService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    secrets: list[str] = [PASSWORD, API_KEY, ADMIN_TOKEN, SECRET_KEY, SIGNING_KEY]

    service.create_user(password=PASSWORD)
    bodies.append(service.login(password=PASSWORD + "x").text)  # a wrong password
    first = service.first_login_enrolling_otp_with(PASSWORD)
    secrets += [first["secret"], first["token"], *first["recovery_codes"]]
    enrolled = service.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": PHONE, "user_token": first["token"]})
    enrollment_code = service.sms.last_code_for(PHONE)
    secrets.append(enrollment_code)
    bodies.append(service.post("/v1/mfa/enroll/confirm", {"enrollment_id": enrolled.json()["enrollment_id"],
                                                          "code": "000000"}).text)
    service.post("/v1/mfa/enroll/confirm", {"enrollment_id": enrolled.json()["enrollment_id"],
                                            "code": enrollment_code})

    login = service.login(password=PASSWORD, ip=DE_IP).json()
    sms_factor = next(f for f in login["factors"] if f["type"] == "sms")
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": sms_factor["id"]})
    code = service.sms.last_code_for(PHONE)
    secrets.append(code)
    wrong_code = "000000" if code != "000000" else "111111"
    bodies.append(service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"],
                                                  "factor_id": sms_factor["id"], "code": wrong_code}).text)
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": sms_factor["id"],
                                           "code": code}).json()
    secrets.append(done["token"])
    otp_code = totp_now(first["secret"], service.clock.now())
    bodies.append(service.post("/v1/mfa/verify", {"challenge_id": "unknown-challenge-0000",
                                                  "factor_id": first["factor_id"], "code": otp_code}).text)
    secrets.append(otp_code)

    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert caplog.records, "the login should have logged events"
    assert "verify_succeeded" in logged
    for secret in secrets:
        assert secret not in logged
        for body in bodies:
            assert secret not in body


# Rule settings (issue 9): a secret set through the admin API and read by rules that try every
# way out: a log line, print, a claim, return_to, a deny reason, an exception's message.
SETTING_SECRET = "s3cret-'quoted'-\\value-0123456789"
URL_SECRET = "url-safe-secret-9876543210"
LEAKY_RULES = {
    "10-leaks-into-the-trace": '''"""Writes the secret everywhere it can on a login."""


def rule(user, context):
    secret = context.settings["api_key"]
    if context.action == "login":
        context.log("the key is", secret)
        print("printed:", secret)
        context.claims["https://example.com/key"] = {"nested": [secret, "before " + secret + " after"]}
        context.multifactor.return_to = "https://example.com/?k=" + context.settings["url_key"]
''',
    "20-denies-with-it": '''"""Denies with the secret as reason."""


def rule(user, context):
    if context.action == "transaction":
        context.deny("reason " + context.settings["api_key"])
''',
    "30-raises-with-it": '''"""Raises an exception carrying the secret."""


def rule(user, context):
    if context.action == "change_profile":
        raise ValueError("boom " + repr(context.settings["api_key"]) + " " + context.settings["api_key"])
''',
}


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_a_rule_setting_secret_never_leaves_the_engine(tmp_path: Path, loop_thread: LoopThread,
                                                       caplog: pytest.LogCaptureFixture, isolation: str) -> None:
    import base64

    from engine.app import create_app
    from tests.engine.asgi import ServiceClient
    from tests.engine.service import admin_auth, auth, evaluate_body, make_settings

    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, LEAKY_RULES, isolation=isolation)
    answers: list[str] = []
    with ServiceClient(create_app(settings), loop_thread) as client:
        def admin(method: str, path: str, body: object = None) -> str:
            response = client.request(method, path, json=body, headers=admin_auth())
            answers.append(response.text)
            return response.text

        admin("PUT", "/admin/rules/settings/api_key", {"value": SETTING_SECRET, "secret": True})
        admin("PUT", "/admin/rules/settings/url_key", {"value": URL_SECRET, "secret": True})
        admin("PUT", "/admin/rules/settings/api_key", {"value": SETTING_SECRET, "secret": "yes"})  # a 400
        admin("PUT", "/admin/rules/settings/api_key", {"value": SETTING_SECRET, "secret": True, "x": 1})
        admin("PUT", "/admin/rules/settings/bad%20key", {"value": SETTING_SECRET, "secret": True})
        seen: dict[str, dict[str, object]] = {}
        for action in ("login", "transaction", "change_profile"):
            body = evaluate_body()
            body["context"]["action"] = action
            evaluated = client.post("/v1/evaluate", json=body, headers=auth())
            answers.append(evaluated.text)
            seen[action] = evaluated.json()
            admin("GET", f"/admin/decisions/{evaluated.json()['decision_id']}")
            admin("POST", "/admin/rules/dry-run", body)
        admin("GET", "/admin/rules/settings")
        admin("GET", "/admin/rules/settings/api_key")
        admin("GET", "/admin/rules/versions")
        admin("GET", "/admin/rules")
        admin("POST", "/admin/users", {"username": "alice", "password": PASSWORD})
        login = client.post("/v1/login", json={"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                               "context": {"ip": "203.0.113.7", "device_id": "dev-1"}},
                            headers=auth())
        answers.append(login.text)
        for token in (value for value in login.json().values() if isinstance(value, str) and value.count(".") == 2):
            answers += [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1")
                        for part in token.split(".")[:2]]

    # The rules did run and did read the secret: what they wrote is there, the secret is not.
    login_claim = seen["login"]["claims"]["https://example.com/key"]  # type: ignore[index]
    assert login_claim == {"nested": ["[redacted]", "before [redacted] after"]}
    assert seen["login"]["return_to"] == "https://example.com/?k=[redacted]"
    assert seen["transaction"]["reason"] == "reason [redacted]"
    assert seen["change_profile"]["reason"] == "rule_failed"
    assert "[redacted]" in seen["login"]["trace"][0]["logs"][0]  # type: ignore[index]
    assert "[redacted]" in (seen["change_profile"]["trace"][-1]["error"] or "")  # type: ignore[index]
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    forms = (SETTING_SECRET, repr(SETTING_SECRET)[1:-1], "s3cret-", URL_SECRET)
    for text in [*answers, logged]:
        for form in forms:
            assert form not in text, text


# Remember this browser (issue 10): the token is a bearer credential for skipping the factor.
REMEMBERING_RULES = {"10-remember": '''"""Every login needs a factor; a remembered browser may skip it."""


def rule(user, context):
    context.multifactor.enable(allow_remember_browser=True)
'''}
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_remember_token_never_appears_in_logs_records_or_other_answers(
    tmp_path: Path, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for service in start_service(tmp_path, loop_thread, "memory", rules=REMEMBERING_RULES):
        user = service.create_user(password=PASSWORD)
        factor = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "otp", "secret": OTP_SECRET},
                              admin_auth()).json()

        def login(token: str | None = None, device_id: str = "dev-1") -> Any:
            context = {"device_id": device_id} | ({"remember_token": token} if token else {})
            return service.post("/v1/login", {"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                              "context": context})

        challenge = login().json()
        token = service.post("/v1/mfa/verify", {"challenge_id": challenge["challenge_id"], "factor_id": factor["id"],
                                                "code": totp_now(OTP_SECRET, service.clock.now()),
                                                "remember_browser": True}).json()["remember_token"]
        mac = token.split(".")[1]
        answers = [login(token), login(token[:-1] + "x"), login(token, "dev-2"), login(token + "\n"),
                   service.post("/v1/evaluate", {"user": {"user_id": user["user_id"]},
                                                 "context": {"remember_token": token}}),
                   service.client.get(f"/admin/users/{user['user_id']}/remembered-browsers", headers=admin_auth())]
        assert answers[0].json()["remembered_browser"] is True
        record = service.client.get(f"/admin/decisions/{answers[0].json()['decision_id']}", headers=admin_auth())
        logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
        assert "login_remembered_browser" in logged
        for text in (logged, record.text, *(answer.text for answer in answers)):
            assert token not in text
            assert mac not in text
