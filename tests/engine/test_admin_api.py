"""The admin API: users and factors behind the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import auth


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, "memory")


def admin(token: str = "test-admin-token-0123456789abcdef") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, admin("wrong-token-0123456789abcdef"), auth()])
def test_the_admin_api_needs_the_admin_token(service: LoginService, headers: dict[str, str]) -> None:
    assert service.client.get("/admin/users", headers=headers).status_code == 401
    created = service.post("/admin/users", {"username": "eve", "password": "pw-0123456789"}, headers)
    assert created.status_code == 401


def test_users_are_created_read_listed_changed_and_deleted(service: LoginService) -> None:
    user = service.create_user(email="alice@example.com", phone_number="+14155550123",
                               app_metadata={"roles": ["admin"]})
    assert "password" not in user and "password_hash" not in user
    assert service.client.get(f"/admin/users/{user['user_id']}", headers=admin()).json() == user
    assert [u["username"] for u in service.client.get("/admin/users", headers=admin()).json()["users"]] == ["alice"]
    changed = service.client.request("PATCH", f"/admin/users/{user['user_id']}", headers=admin(),
                                     json={"name": "Alice A.", "password": "a new long passphrase"})
    assert changed.json()["name"] == "Alice A."
    assert service.login(password="a new long passphrase").status_code == 200
    assert service.client.request("DELETE", f"/admin/users/{user['user_id']}", headers=admin()).status_code == 204
    assert service.client.get(f"/admin/users/{user['user_id']}", headers=admin()).status_code == 404


def test_a_taken_username_is_a_409_whatever_its_case(service: LoginService) -> None:
    service.create_user()
    response = service.post("/admin/users", {"username": "ALICE", "password": "pw-0123456789"},
                            admin())
    assert response.status_code == 409
    assert response.json()["field"] == "username"


def test_bad_user_input_is_a_400_naming_the_field(service: LoginService) -> None:
    response = service.post("/admin/users", {"username": "alice", "password": "x", "phone_number": "12"}, admin())
    assert response.status_code == 400
    assert response.json()["field"] == "phone_number"


def test_an_imported_totp_secret_and_a_pre_enrolled_phone_work_at_login(service: LoginService) -> None:
    user = service.create_user()
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    otp = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "totp", "secret": secret}, admin())
    sms = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "sms", "phone_number": "+14155550123"},
                       admin())
    assert otp.status_code == sms.status_code == 201
    assert otp.json()["status"] == "active"
    listed = service.client.get(f"/admin/users/{user['user_id']}/factors", headers=admin()).json()
    assert {f["type"] for f in listed["factors"]} == {"otp", "sms"}
    assert "secret" not in str(listed)

    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required"
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": otp.json()["id"],
                                           "code": totp_now(secret, service.clock.now())})
    assert done.status_code == 200, done.text


def test_a_factor_can_be_removed_and_mfa_reset(service: LoginService) -> None:
    user = service.create_user()
    factor = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "sms", "phone_number": "+14155550123"},
                          admin()).json()
    path = f"/admin/users/{user['user_id']}/factors/{factor['id']}"
    assert service.client.request("DELETE", path, headers=admin()).status_code == 204
    assert service.client.request("DELETE", path, headers=admin()).status_code == 404
    service.post(f"/admin/users/{user['user_id']}/factors", {"type": "sms", "phone_number": "+14155550123"}, admin())
    reset = service.post(f"/admin/users/{user['user_id']}/reset-mfa", {}, admin())
    assert reset.json() == {"status": "reset", "user_id": user["user_id"]}
    assert service.client.get(f"/admin/users/{user['user_id']}/factors", headers=admin()).json()["factors"] == []
    assert service.login(ip=DE_IP).json()["status"] == "mfa_enrollment_required"


# -- imported TOTP secrets: what pyotp can use (at least 112 bits, whole base32), else 400 -------

# 16 characters: 80 bits; 21: 104 bits; 17, 22, 25, 27, 30: base32 lengths that leave a partial byte.
TOO_SHORT = ["JBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXPJBSWY", "JBSWY3DPEHPK3PXP===="]
BROKEN_LENGTH = ["JBSWY3DPEHPK3PXPJ", "JBSWY3DPEHPK3PXPJBSWY3", "JBSWY3DPEHPK3PXPJBSWY3DPE",
                 "JBSWY3DPEHPK3PXPJBSWY3DPEHP", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3P"]


@pytest.mark.parametrize("secret", TOO_SHORT + BROKEN_LENGTH)
def test_an_imported_totp_secret_pyotp_cannot_use_is_a_400_naming_the_field(service: LoginService,
                                                                            secret: str) -> None:
    user = service.create_user()
    response = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "totp", "secret": secret}, admin())
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["error"], body["field"]) == ("invalid_request", "secret")
    assert secret.rstrip("=") not in response.text
    listed = service.client.get(f"/admin/users/{user['user_id']}/factors", headers=admin()).json()
    assert listed["factors"] == []


@pytest.mark.parametrize("secret", ["JBSWY3DPEHPK3PXPJBSWY3D", "JBSWY3DPEHPK3PXPJBSWY3DP",
                                    "JBSWY3DPEHPK3PXPJBSWY3DPEH", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                                    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                                    "JBSWY3DPEHPK3PXPJBSWY3DPEH======"])
def test_an_imported_totp_secret_of_112_bits_or_more_works_at_login(service: LoginService, secret: str) -> None:
    user = service.create_user()
    otp = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "totp", "secret": secret}, admin())
    assert otp.status_code == 201, otp.text
    login = service.login(ip=DE_IP).json()
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": otp.json()["id"],
                                           "code": totp_now(secret.rstrip("="), service.clock.now())})
    assert done.status_code == 200, done.text


def test_a_stored_secret_pyotp_refuses_fails_closed_at_verify_and_is_logged(
        service: LoginService, caplog: pytest.LogCaptureFixture) -> None:
    """A factor imported before the check (or written by another tool): a 401 like a wrong code, never a 500."""
    import asyncio
    import logging

    from engine.services import Services

    user = service.create_user()
    services: Services = service.client.app.state.services
    factor = asyncio.run(services.directory.add_factor(user["user_id"], "otp", service.clock.now(), status="active",
                                                       secret="JBSWY3DPEHPK3PXP"))
    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required", login
    with caplog.at_level(logging.WARNING):
        response = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"],
                                                   "factor_id": factor.factor_id, "code": "123456"})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_code"
    logged = [r.getMessage() for r in caplog.records if "totp_secret_unusable" in r.getMessage()]
    assert logged and factor.factor_id in logged[0]
    assert "JBSWY3DPEHPK3PXP" not in caplog.text


def test_an_admin_factor_past_the_per_user_limit_is_the_409_enrollment_answers(service: LoginService) -> None:
    user = service.create_user()
    for number in range(10):
        added = service.post(f"/admin/users/{user['user_id']}/factors",
                             {"type": "sms", "phone_number": f"+1415555012{number}"}, admin())
        assert added.status_code == 201, added.text
    refused = service.post(f"/admin/users/{user['user_id']}/factors",
                           {"type": "totp", "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, admin())
    assert refused.status_code == 409
    assert refused.json() == {"error": "conflict", "field": "factor",
                              "message": "at most 10 factors per user; remove one first"}
    listed = service.client.get(f"/admin/users/{user['user_id']}/factors", headers=admin()).json()
    assert len(listed["factors"]) == 10
