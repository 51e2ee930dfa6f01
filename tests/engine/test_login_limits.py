"""Every limit of the login, over HTTP, on both challenge stores, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import auth

PHONE = "+14155550123"


def service_with(request: pytest.FixtureRequest, tmp_path: Path, loop: LoopThread, **settings: Any
                 ) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop, request.param, **settings)


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from service_with(request, tmp_path, loop_thread, mfa={"lockout_threshold": 7, "lockout_seconds": 600},
                            sms={"sends_per_user_per_hour": 4},
                            login={"failures_per_username": 3})


@pytest.fixture
def user(service: LoginService) -> dict[str, str]:
    service.create_user()
    first = service.first_login_enrolling_otp()
    sms_id, _ = service.enroll_sms(first["token"], PHONE)
    service.sms.messages.clear()
    return {"otp": first["factor_id"], "secret": first["secret"], "sms": sms_id}


def challenge(service: LoginService) -> str:
    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required", login
    return login["challenge_id"]  # type: ignore[no-any-return]


def verify(service: LoginService, challenge_id: str, factor_id: str, code: str) -> Any:
    return service.post("/v1/mfa/verify", {"challenge_id": challenge_id, "factor_id": factor_id, "code": code})


def send_sms(service: LoginService, challenge_id: str, factor_id: str) -> Any:
    return service.post("/v1/mfa/challenge", {"challenge_id": challenge_id, "factor_id": factor_id})


def test_a_challenge_dies_after_five_wrong_codes(service: LoginService, user: dict[str, str]) -> None:
    challenge_id = challenge(service)
    for _ in range(5):
        assert verify(service, challenge_id, user["otp"], "000000").status_code == 401
    right = totp_now(user["secret"], service.clock.now())
    assert verify(service, challenge_id, user["otp"], right).status_code == 401


def test_failures_across_challenges_lock_the_second_factor_until_the_lock_expires(
    service: LoginService, user: dict[str, str]
) -> None:
    statuses = []
    for failures in (4, 3):  # seven consecutive failures over two challenges reach the threshold
        challenge_id = challenge(service)
        statuses += [verify(service, challenge_id, user["otp"], "000000").status_code for _ in range(failures)]
    assert statuses == [401] * 6 + [429]  # the failure that reaches the threshold already says so
    locked = service.login(ip=DE_IP)
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"
    assert 0 < locked.json()["retry_after"] <= 600
    assert locked.headers["retry-after"] == str(locked.json()["retry_after"])

    service.clock.advance(601)
    challenge_id = challenge(service)
    code = totp_now(user["secret"], service.clock.now())
    assert verify(service, challenge_id, user["otp"], code).status_code == 200


def test_a_success_resets_the_failure_count(service: LoginService, user: dict[str, str]) -> None:
    challenge_id = challenge(service)
    for _ in range(4):
        verify(service, challenge_id, user["otp"], "000000")
    assert verify(service, challenge_id, user["otp"], totp_now(user["secret"], service.clock.now())).status_code == 200
    service.clock.advance(30)
    for _ in range(2):
        challenge_id = challenge(service)
        for _ in range(3):
            verify(service, challenge_id, user["otp"], "000000")
    assert service.login(ip=DE_IP).status_code == 200  # 6 failures since the success: not locked at 7


def test_a_resend_waits_for_the_cooldown_replaces_the_code_and_keeps_the_attempts(
    service: LoginService, user: dict[str, str]
) -> None:
    challenge_id = challenge(service)
    assert send_sms(service, challenge_id, user["sms"]).status_code == 200
    first_code = service.sms.last_code_for(PHONE)
    too_soon = send_sms(service, challenge_id, user["sms"])
    assert too_soon.status_code == 429
    assert 0 < too_soon.json()["retry_after"] <= 30
    for _ in range(4):
        assert verify(service, challenge_id, user["sms"], "999999" if first_code != "999999" else "999998"
                      ).status_code == 401
    service.clock.advance(30)
    assert send_sms(service, challenge_id, user["sms"]).status_code == 200
    second_code = service.sms.last_code_for(PHONE)
    assert len(service.sms.messages) == 2
    if first_code != second_code:
        assert verify(service, challenge_id, user["sms"], first_code).status_code == 401  # the fifth failure
        assert verify(service, challenge_id, user["sms"], second_code).status_code == 401  # attempts were kept
    else:
        assert verify(service, challenge_id, user["sms"], second_code).status_code == 200


def test_sms_sends_per_user_are_limited(service: LoginService, user: dict[str, str]) -> None:
    statuses = []
    for _ in range(4):
        statuses.append(send_sms(service, challenge(service), user["sms"]).status_code)
    assert statuses == [200, 200, 200, 429]  # four an hour, and enrolling the phone sent the first
    service.clock.advance(3601)
    assert send_sms(service, challenge(service), user["sms"]).status_code == 200


def test_an_expired_challenge_sends_nothing_and_verifies_nothing(service: LoginService, user: dict[str, str]) -> None:
    challenge_id = challenge(service)
    service.clock.advance(301)
    response = send_sms(service, challenge_id, user["sms"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_challenge"
    assert service.sms.messages == []


def test_an_authenticator_code_is_accepted_once(service: LoginService, user: dict[str, str]) -> None:
    code = totp_now(user["secret"], service.clock.now())
    assert verify(service, challenge(service), user["otp"], code).status_code == 200
    assert verify(service, challenge(service), user["otp"], code).status_code == 401
    service.clock.advance(30)
    assert verify(service, challenge(service), user["otp"], totp_now(user["secret"], service.clock.now())
                  ).status_code == 200


def test_concurrent_verifications_of_one_code_succeed_exactly_once(service: LoginService, user: dict[str, str]
                                                                   ) -> None:
    challenge_id = challenge(service)
    send_sms(service, challenge_id, user["sms"])
    code = service.sms.last_code_for(PHONE)
    body = {"challenge_id": challenge_id, "factor_id": user["sms"], "code": code}
    responses = service.client.post_concurrently("/v1/mfa/verify", [body] * 12, auth())
    assert sorted(r.status_code for r in responses) == [200] + [401] * 11


def test_a_gateway_failure_is_a_503_and_leaves_the_challenge_usable(service: LoginService, user: dict[str, str]
                                                                    ) -> None:
    challenge_id = challenge(service)
    service.sms.fail_next()
    failed = send_sms(service, challenge_id, user["sms"])
    assert failed.status_code == 503
    assert failed.json()["error"] == "factor_unavailable"
    assert send_sms(service, challenge_id, user["sms"]).status_code == 200  # no cooldown for an unsent code
    code = totp_now(user["secret"], service.clock.now())
    assert verify(service, challenge_id, user["otp"], code).status_code == 200


def test_repeated_wrong_passwords_are_throttled_per_username(service: LoginService) -> None:
    service.create_user()
    for _ in range(3):
        assert service.login(password="wrong").status_code == 401
    throttled = service.login()
    assert throttled.status_code == 429
    assert throttled.json()["retry_after"] > 0
    service.clock.advance(901)
    assert service.login().status_code == 200


@pytest.fixture
def us_only(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    request.param = "memory"
    yield from service_with(request, tmp_path, loop_thread, sms={"allowed_countries": ("US",)})


def test_phones_outside_the_country_allow_list_cannot_enroll(us_only: LoginService) -> None:
    us_only.create_user()
    token = us_only.first_login_enrolling_otp()["token"]
    refused = us_only.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": "+4915123456789", "user_token": token})
    assert refused.status_code == 403
    assert refused.json()["error"] == "sms_country_not_allowed"
    assert us_only.sms.messages == []
    allowed = us_only.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": PHONE, "user_token": token})
    assert allowed.status_code == 200


def test_an_admin_mfa_reset_lifts_the_lock(service: LoginService, user: dict[str, str]) -> None:
    for failures in (4, 3):
        challenge_id = challenge(service)
        for _ in range(failures):
            verify(service, challenge_id, user["otp"], "000000")
    assert service.login(ip=DE_IP).status_code == 429
    user_id = service.client.get("/admin/users", headers={"Authorization": "Bearer test-admin-token-0123456789abcdef"}
                                 ).json()["users"][0]["user_id"]
    service.post(f"/admin/users/{user_id}/reset-mfa", {}, {"Authorization": "Bearer test-admin-token-0123456789abcdef"})
    assert service.login(ip=DE_IP).json()["status"] == "mfa_enrollment_required"
