"""Another user's factor id tells an attacker nothing, not even whether its owner is locked.

Issue 6, item 10: verifying with one's own challenge and someone else's factor id answered
429 with the victim's `retry_after` when the victim was locked (the store judged the
factor owner's lock before checking the challenge belonged to that owner). An unknown or
foreign factor must get exactly the answer a wrong code gets. Over HTTP, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import admin_auth

ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
MALLORY_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param, mfa={"lockout_threshold": 3})


def user_with_factors(service: LoginService, username: str, secret: str) -> dict[str, str]:
    user = service.create_user(username)
    path = f"/admin/users/{user['user_id']}/factors"
    otp = service.post(path, {"type": "otp", "secret": secret}, admin_auth()).json()
    sms = service.post(path, {"type": "sms", "phone_number": "+14155550123"}, admin_auth()).json()
    return {"otp": otp["id"], "sms": sms["id"]}


def challenge_of(service: LoginService, username: str) -> str:
    login = service.login(username, PASSWORD, ip=DE_IP).json()
    assert login["status"] == "mfa_required", login
    return login["challenge_id"]  # type: ignore[no-any-return]


def verify(service: LoginService, challenge_id: str, factor_id: str, code: str) -> Any:
    return service.post("/v1/mfa/verify", {"challenge_id": challenge_id, "factor_id": factor_id, "code": code})


@pytest.fixture
def locked_alice(service: LoginService) -> dict[str, str]:
    alice = user_with_factors(service, "alice", ALICE_SECRET)
    challenge_id = challenge_of(service, "alice")
    statuses = [verify(service, challenge_id, alice["otp"], "000000").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    return alice


def test_my_challenge_with_a_locked_victims_factor_answers_like_a_wrong_code(
    service: LoginService, locked_alice: dict[str, str]
) -> None:
    user_with_factors(service, "mallory", MALLORY_SECRET)
    mine = challenge_of(service, "mallory")
    wrong = verify(service, challenge_of(service, "mallory"), "f" * 22, "000000")
    for factor_id in (locked_alice["otp"], locked_alice["sms"]):
        probe = verify(service, mine, factor_id, totp_now(ALICE_SECRET, service.clock.now()))
        assert probe.status_code == 401
        assert probe.json() == wrong.json()
        assert "retry-after" not in probe.headers


def test_a_made_up_challenge_with_a_locked_victims_factor_answers_like_a_wrong_code(
    service: LoginService, locked_alice: dict[str, str]
) -> None:
    probe = verify(service, "A" * 22, locked_alice["otp"], "123456")
    assert probe.status_code == 401
    assert probe.json()["error"] == "invalid_code"


def test_asking_for_a_code_on_a_victims_factor_answers_like_an_unknown_factor(
    service: LoginService, locked_alice: dict[str, str]
) -> None:
    user_with_factors(service, "mallory", MALLORY_SECRET)
    mine = challenge_of(service, "mallory")
    probe = service.post("/v1/mfa/challenge", {"challenge_id": mine, "factor_id": locked_alice["sms"]})
    unknown = service.post("/v1/mfa/challenge", {"challenge_id": mine, "factor_id": "f" * 22})
    assert probe.status_code == unknown.status_code == 401
    assert probe.json() == unknown.json()
    assert service.sms.messages == []


def test_probing_with_a_victims_factor_counts_no_failure_against_anyone(
    service: LoginService, locked_alice: dict[str, str]
) -> None:
    mallory = user_with_factors(service, "mallory", MALLORY_SECRET)
    mine = challenge_of(service, "mallory")
    for _ in range(4):
        verify(service, mine, locked_alice["otp"], "000000")
    done = verify(service, mine, mallory["otp"], totp_now(MALLORY_SECRET, service.clock.now()))
    assert done.status_code == 200, done.text  # her own challenge was not used up by the probes


def test_the_owner_of_a_locked_factor_is_still_told_to_wait(service: LoginService,
                                                            locked_alice: dict[str, str]) -> None:
    login = service.login("alice", PASSWORD, ip=DE_IP)
    assert login.status_code == 429
