"""A recovery code is used up only by the login it completes (issue 7, item 8).

It was consumed in SQL before the store's atomic challenge step: ten concurrent verifies of
one challenge, each with a different valid code, burned ten codes for one login, and a valid
code sent with a challenge that then failed its step (another client, expired) was burned
for nothing. A code is now checked before the step and spent only with a login the step
let through. Over HTTP, on both stores; the codes left are read from the directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.services import Services
from tests.conftest import LoopThread
from tests.engine.login_harness import DE_IP, LoginService, start_service
from tests.engine.service import auth

PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param)


@pytest.fixture
def alice(service: LoginService) -> dict[str, Any]:
    """alice with an authenticator app and her ten recovery codes."""
    service.create_user("alice")
    enrolled = service.first_login_enrolling_otp()
    assert len(enrolled["recovery_codes"]) == 10
    return enrolled


def codes_left(service: LoginService, user_id: str) -> int:
    """The user's unused recovery codes, as the service's own directory counts them (SQLite answers
    from any thread, so a loop of the test's own will do)."""
    services: Services = service.client.app.state.services
    return asyncio.run(services.directory.recovery_codes_left(user_id))


def challenge_of(service: LoginService) -> str:
    login = service.login("alice", PASSWORD, ip=DE_IP).json()  # abroad: a second factor is required
    assert login["status"] == "mfa_required", login
    assert "recovery" in [factor["type"] for factor in login["factors"]]
    return login["challenge_id"]  # type: ignore[no-any-return]


def verify_recovery(service: LoginService, challenge_id: str, code: str, **extra: str) -> httpx.Response:
    return service.post("/v1/mfa/verify", {"challenge_id": challenge_id, "factor_id": "recovery", "code": code,
                                           **extra})


def test_ten_concurrent_verifies_with_different_codes_use_up_exactly_one(
    service: LoginService, alice: dict[str, Any]
) -> None:
    challenge_id = challenge_of(service)
    bodies = [{"challenge_id": challenge_id, "factor_id": "recovery", "code": code}
              for code in alice["recovery_codes"]]
    # As on a busy server, ten store connections are open already; otherwise the first verify
    # is done while the other nine are still connecting, and there is no race to see.
    service.client.post_concurrently("/v1/mfa/verify", [{**body, "challenge_id": "A" * 22} for body in bodies],
                                     auth())

    answers = service.client.post_concurrently("/v1/mfa/verify", bodies, auth())

    assert sorted(answer.status_code for answer in answers) == [200] + [401] * 9
    assert codes_left(service, alice["user_id"]) == 9
    winner = next(code for code, answer in zip(alice["recovery_codes"], answers, strict=True)
                  if answer.status_code == 200)
    for code in alice["recovery_codes"]:
        if code != winner:  # each of the nine losers still logs in, once
            assert verify_recovery(service, challenge_of(service), code).status_code == 200
    assert codes_left(service, alice["user_id"]) == 0


def test_a_valid_code_sent_by_another_client_uses_up_nothing(service: LoginService, alice: dict[str, Any]) -> None:
    code = alice["recovery_codes"][0]

    stolen = verify_recovery(service, challenge_of(service), code, client_id="app-2")

    assert stolen.status_code == 401 and stolen.json()["error"] == "invalid_code"
    assert codes_left(service, alice["user_id"]) == 10
    assert verify_recovery(service, challenge_of(service), code).status_code == 200
    assert codes_left(service, alice["user_id"]) == 9


def test_a_valid_code_on_an_expired_challenge_uses_up_nothing(service: LoginService, alice: dict[str, Any]) -> None:
    code = alice["recovery_codes"][0]
    challenge_id = challenge_of(service)
    service.clock.advance(301)  # mfa.challenge_ttl_seconds is 300

    late = verify_recovery(service, challenge_id, code)

    assert late.status_code == 401 and late.json()["error"] == "invalid_code"
    assert codes_left(service, alice["user_id"]) == 10


def test_a_valid_code_on_a_challenge_out_of_attempts_uses_up_nothing(
    service: LoginService, alice: dict[str, Any]
) -> None:
    challenge_id = challenge_of(service)
    for _ in range(5):  # mfa.max_attempts is 5: the challenge is gone after the fifth wrong code
        assert verify_recovery(service, challenge_id, "aaaaa-aaaaa").status_code == 401

    spent = verify_recovery(service, challenge_id, alice["recovery_codes"][0])

    assert spent.status_code == 401
    assert codes_left(service, alice["user_id"]) == 10


@pytest.fixture(params=["memory", "redis"])
def locking_service(request: pytest.FixtureRequest, tmp_path: Path,
                    loop_thread: LoopThread) -> Iterator[LoginService]:
    """A service that locks the second factor after three consecutive failures."""
    yield from start_service(tmp_path, loop_thread, request.param, mfa={"lockout_threshold": 3})


def test_a_valid_code_while_the_second_factor_is_locked_uses_up_nothing(locking_service: LoginService) -> None:
    service = locking_service
    service.create_user("alice")
    alice = service.first_login_enrolling_otp()
    challenge_id = challenge_of(service)
    answers = [verify_recovery(service, challenge_id, "aaaaa-aaaaa").status_code for _ in range(3)]
    assert answers == [401, 401, 429]  # locked, and the challenge (3 of 5 attempts) is still there

    locked = verify_recovery(service, challenge_id, alice["recovery_codes"][0])

    assert locked.status_code == 429
    assert codes_left(service, alice["user_id"]) == 10
