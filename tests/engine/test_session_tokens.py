"""What a user token carries for later step-ups (`auth_methods`: each method and when it was completed;
`mfa_epoch`), and that an MFA reset or a deletion ends every token issued before it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import admin_auth


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param)


def test_a_token_lists_each_method_with_the_time_it_was_completed(service: LoginService) -> None:
    service.create_user()
    start = int(service.clock.now().timestamp())
    first = service.first_login_enrolling_otp()  # the enrollment confirms at START, then 30 s pass
    claims = service.decode(first["token"])
    assert claims["auth_methods"] == [{"name": "pwd", "time": start}, {"name": "otp", "time": start}]
    assert claims["mfa_epoch"] == 0

    login = service.login(ip=DE_IP).json()
    service.clock.advance(20)
    code = totp_now(first["secret"], service.clock.now())
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": first["factor_id"],
                                           "code": code}).json()
    claims = service.decode(done["token"])
    password_at = start + 30
    assert claims["auth_time"] == password_at
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["auth_methods"] == [{"name": "pwd", "time": password_at}, {"name": "otp", "time": password_at + 20}]


def test_after_an_mfa_reset_an_earlier_token_enrolls_nothing(service: LoginService) -> None:
    user = service.create_user()
    old = service.first_login_enrolling_otp()["token"]
    assert service.post(f"/admin/users/{user['user_id']}/reset-mfa", {}, admin_auth()).status_code == 200
    for path, body in (("/v1/mfa/enroll", {"factor": "otp", "user_token": old}),
                       ("/v1/mfa/recovery-codes", {"user_token": old})):
        response = service.post(path, body)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"
    # The next login's token is of the new epoch, and enrolls.
    new = service.login().json()["token"]
    assert service.decode(new)["mfa_epoch"] == 1
    assert service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": new}).status_code == 200


def test_a_deleted_users_token_enrolls_nothing(service: LoginService) -> None:
    user = service.create_user()
    token = service.first_login_enrolling_otp()["token"]
    assert service.client.request("DELETE", f"/admin/users/{user['user_id']}", headers=admin_auth()).status_code == 204
    response = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": token})
    assert response.status_code == 401, response.text
