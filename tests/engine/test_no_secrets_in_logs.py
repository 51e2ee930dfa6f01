"""Secrets never reach a log line or an error body: a whole login is captured and searched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import ADMIN_TOKEN, API_KEY, SECRET_KEY, SIGNING_KEY

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
