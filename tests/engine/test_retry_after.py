"""Every 503 says when to come back (issue 7, item 6, first half).

Each way the service can be unavailable, caused for real: a store nobody listens for, a
sandbox whose only worker is busy past the queue timeout, an SMS gateway that fails. The
answer carries `Retry-After` (whole seconds, RFC 9110 10.2.3) and the same figure in the
body; a 503 rendered outside the error tree (/healthz) carries the header too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import errors
from engine.app import create_app
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.live_process import free_port
from tests.engine.login_harness import DE_IP, LoginService, start_service
from tests.engine.service import US_IP, admin_auth, auth, evaluate_body, make_settings

BUSY_FOR_EVERYONE = '''"""Spins until the rule timeout stops it: the worker is busy meanwhile."""

def rule(user, context):
    for step in range(1000000000):
        pass
'''


def assert_retry_after(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503
    assert response.json()["error"] == code
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    assert response.json()["retry_after"] == int(retry_after)


def test_a_store_that_does_not_answer_is_a_503_with_retry_after(tmp_path: Path, loop_thread: LoopThread) -> None:
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(tmp_path, redis_url=nobody_listens))
    with ServiceClient(app, loop_thread) as client:
        client.post("/admin/users", json={"username": "alice", "password": "long enough password"},
                    headers=admin_auth())
        login = client.post("/v1/login", json={"username": "alice", "password": "long enough password",
                                               "client_id": "app", "context": {"ip": US_IP}}, headers=auth())
        health = client.get("/healthz")

    assert_retry_after(login, "store_unavailable")
    assert health.status_code == 503
    assert int(health.headers["Retry-After"]) >= 1


def test_a_saturated_sandbox_is_a_503_with_retry_after(tmp_path: Path, loop_thread: LoopThread) -> None:
    settings = make_settings(tmp_path, {"10-busy": BUSY_FOR_EVERYONE}, isolation="process",
                             sandbox={"workers": 1, "queue_timeout_ms": 1})
    # Two users of two clients: only the pool's size stands between them.
    bodies = [evaluate_body(user_id="alice"), evaluate_body(user_id="bob")]
    bodies[1]["context"]["client_id"] = "app-2"
    with ServiceClient(create_app(settings), loop_thread) as client:
        answers = client.post_concurrently("/v1/evaluate", bodies, auth())

    assert sorted(answer.status_code for answer in answers) == [200, 503]
    assert_retry_after(next(answer for answer in answers if answer.status_code == 503), "sandbox_unavailable")


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, "memory")


def test_an_sms_gateway_failure_is_a_503_with_retry_after(service: LoginService) -> None:
    service.create_user()
    service.first_login_enrolling_sms()
    login = service.login(ip=DE_IP).json()
    sms = next(factor for factor in login["factors"] if factor["type"] == "sms")

    service.sms.fail_next()
    failed = service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": sms["id"]})

    assert_retry_after(failed, "factor_unavailable")


def every_error_class(root: type[errors.EngineError]) -> Iterator[type[errors.EngineError]]:
    for subclass in root.__subclasses__():
        yield subclass
        yield from every_error_class(subclass)


def test_every_error_that_answers_503_carries_a_retry_after() -> None:
    unavailable = [kind for kind in every_error_class(errors.EngineError) if kind.status == 503]
    assert {kind.code for kind in unavailable} >= {"store_unavailable", "sandbox_unavailable", "factor_unavailable"}
    for kind in unavailable:
        error = kind("unavailable")
        assert error.headers()["Retry-After"] == str(error.retry_after), kind.__name__
        assert error.retry_after >= 1, kind.__name__
