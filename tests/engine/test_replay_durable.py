"""A TOTP code is accepted once, even after the challenge store forgets (issue 7, item 2).

The store's atomic step keeps the last accepted time step for a few minutes, but a Redis
restart without persistence (FLUSHDB here, on the test's own database) or a restart of a
service on the memory store (a new app on the same SQLite file here) forgets it, and the
same code was accepted again within its drift window. The directory now keeps the last
accepted step of each factor, written with the login, and refuses steps at or below it.
Over HTTP, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.sms.recording import RecordingSmsGateway
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import (
    DE_IP,
    REDIS_URL,
    START,
    LoginService,
    flush_redis,
    redis_or_skip,
    totp_now,
)
from tests.engine.service import admin_auth, auth, make_settings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery staple"


class Deployment:
    """One service configuration (one SQLite file, one store) that the test can restart, and
    whose store it can empty: FLUSHDB for Redis, a restart for the memory store."""

    def __init__(self, tmp_path: Path, loop: LoopThread, store: str) -> None:
        if store == "redis":
            redis_or_skip()
            flush_redis()
        self.store = store
        self.settings = make_settings(tmp_path, redis_url=REDIS_URL if store == "redis" else "")
        self.clock = FrozenClock(START)
        self._loop = loop
        self._clients: list[ServiceClient] = []
        self.service = self.start_instance()

    def start_instance(self) -> LoginService:
        """Another instance of the service on the same directory (and Redis, if any)."""
        sms = RecordingSmsGateway()
        app = create_app(self.settings, clock=self.clock, gateway=sms)
        client = ServiceClient(app, self._loop).__enter__()
        self._clients.append(client)
        return LoginService(client, self.clock, sms)

    def forget_store(self) -> None:
        """What a Redis restart without persistence, or a restart on the memory store, does."""
        if self.store == "redis":
            flush_redis()
            return
        self._clients.pop().__exit__(None, None, None)
        self.service = self.start_instance()

    def close(self) -> None:
        for client in reversed(self._clients):
            client.__exit__(None, None, None)
        if self.store == "redis":
            flush_redis()


@pytest.fixture(params=["memory", "redis"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[Deployment]:
    running = Deployment(tmp_path, loop_thread, request.param)
    yield running
    running.close()


def alice_with_an_app(service: LoginService) -> str:
    user = service.create_user("alice")
    factor = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "otp", "secret": SECRET}, admin_auth())
    assert factor.status_code == 201, factor.text
    return factor.json()["id"]  # type: ignore[no-any-return]


def challenge_of(service: LoginService) -> str:
    login = service.login("alice", PASSWORD, ip=DE_IP).json()  # abroad: a second factor is required
    assert login["status"] == "mfa_required", login
    return login["challenge_id"]  # type: ignore[no-any-return]


def verify(service: LoginService, challenge_id: str, factor_id: str, code: str) -> httpx.Response:
    return service.post("/v1/mfa/verify", {"challenge_id": challenge_id, "factor_id": factor_id, "code": code})


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_code"


def test_a_totp_code_that_logged_in_is_refused_after_the_store_forgets_it(deployment: Deployment) -> None:
    factor_id = alice_with_an_app(deployment.service)
    code = totp_now(SECRET, deployment.clock.now())
    assert verify(deployment.service, challenge_of(deployment.service), factor_id, code).status_code == 200

    deployment.forget_store()
    deployment.clock.advance(40)  # the next time step: the code is one step old, inside the drift window

    assert_refused(verify(deployment.service, challenge_of(deployment.service), factor_id, code))
    fresh = totp_now(SECRET, deployment.clock.now())
    assert verify(deployment.service, challenge_of(deployment.service), factor_id, fresh).status_code == 200


def test_a_totp_code_that_confirmed_enrollment_is_refused_after_the_store_forgets_it(
    deployment: Deployment
) -> None:
    deployment.service.create_user("alice")
    enrolled: dict[str, Any] = deployment.service.first_login_enrolling_otp()  # confirmed at START, clock +30 s
    confirming_code = totp_now(enrolled["secret"], START)

    deployment.forget_store()

    assert_refused(verify(deployment.service, challenge_of(deployment.service), enrolled["factor_id"],
                          confirming_code))


def test_concurrent_logins_with_one_totp_code_get_exactly_one_token(deployment: Deployment) -> None:
    factor_id = alice_with_an_app(deployment.service)
    challenges = [challenge_of(deployment.service) for _ in range(5)]
    code = totp_now(SECRET, deployment.clock.now())
    bodies = [{"challenge_id": challenge_id, "factor_id": factor_id, "code": code} for challenge_id in challenges]

    answers = deployment.service.client.post_concurrently("/v1/mfa/verify", bodies, auth())
    statuses = sorted(answer.status_code for answer in answers)

    assert statuses == [200, 401, 401, 401, 401], [answer.text for answer in answers]


@pytest.mark.parametrize("deployment", ["memory"], indirect=True)
def test_two_instances_that_share_only_the_directory_accept_a_totp_code_once(deployment: Deployment) -> None:
    first = deployment.service
    second = deployment.start_instance()  # its own memory store: it knows nothing of the first's steps
    factor_id = alice_with_an_app(first)
    code = totp_now(SECRET, deployment.clock.now())
    at_second = challenge_of(second)

    assert verify(first, challenge_of(first), factor_id, code).status_code == 200
    assert_refused(verify(second, at_second, factor_id, code))
