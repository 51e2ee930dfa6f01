"""A frozen store answers 503 as fast as a stopped one (issue 7, item 5).

A Redis that accepts connections but answers nothing (SIGSTOP here: a hung, swapping or
paused server) held every login, verify and /healthz for redis-py's defaults: a 5 s socket
timeout, retried. `store.timeout_ms` (default 500) now bounds connecting and every reply,
with no retry of a command that timed out, so the service answers 503 `store_unavailable`
within about a second and serves again as soon as the store does. A live uvicorn in front
of a redis-server of the test's own (never the shared one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import ConfigError, StoreSettings, load_settings
from engine.sms.recording import RecordingSmsGateway
from tests.engine.live_process import serve_in_thread
from tests.engine.login_harness import START, totp_now
from tests.engine.redis_process import RedisProcess, redis_process  # noqa: F401 - the fixture
from tests.engine.service import DE_IP, admin_auth, auth, make_settings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery staple"
# The default store.timeout_ms is 500: one timed-out round trip, and the answer; the margin is
# for a loaded CI machine, far below the 5 s (and more, with retries) it took before.
FAST_ENOUGH_SECONDS = 1.5


@dataclass
class LiveService:
    url: str
    store: RedisProcess
    factor_id: str


@pytest.fixture
def live(tmp_path: Path, redis_process: RedisProcess) -> Iterator[LiveService]:  # noqa: F811
    """alice (with an authenticator app) on a live service whose store is the test's own Redis."""
    settings = make_settings(tmp_path, redis_url=redis_process.url)
    assert settings.store.timeout_ms == 500  # the default is what is tested
    app = create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway())
    server, thread, url = serve_in_thread(app)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            user = client.post("/admin/users", json={"username": "alice", "password": PASSWORD}, headers=admin_auth())
            factor = client.post(f"/admin/users/{user.json()['user_id']}/factors",
                                 json={"type": "otp", "secret": SECRET}, headers=admin_auth())
        yield LiveService(url, redis_process, factor.json()["id"])
    finally:
        if redis_process.is_frozen:
            redis_process.thaw()  # or the server's shutdown waits for requests stuck on the store
        server.should_exit = True
        thread.join(15)


def timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def log_in(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/login", json={"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                          "context": {"ip": DE_IP}}, headers=auth())


def assert_store_unavailable(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "store_unavailable"
    assert seconds < FAST_ENOUGH_SECONDS, f"answered after {seconds:.2f} s"


@pytest.mark.slow
def test_a_login_against_a_frozen_store_answers_503_within_a_second(live: LiveService) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        assert log_in(client).json()["status"] == "mfa_required"  # the store's connections are open
        live.store.freeze()

        response, seconds = timed(client, "POST", "/v1/login",
                                  json={"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                        "context": {"ip": DE_IP}}, headers=auth())

    assert_store_unavailable(response, seconds)


@pytest.mark.slow
def test_a_verify_against_a_frozen_store_answers_503_within_a_second(live: LiveService) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        challenge_id = log_in(client).json()["challenge_id"]
        live.store.freeze()

        response, seconds = timed(client, "POST", "/v1/mfa/verify", headers=auth(), json={
            "challenge_id": challenge_id, "factor_id": live.factor_id, "code": totp_now(SECRET, START)})

    assert_store_unavailable(response, seconds)


@pytest.mark.slow
def test_healthz_reports_a_frozen_store_within_a_second(live: LiveService) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        live.store.freeze()

        response, seconds = timed(client, "GET", "/healthz")

    assert response.status_code == 503
    assert response.json()["store"]["healthy"] is False
    assert seconds < FAST_ENOUGH_SECONDS, f"answered after {seconds:.2f} s"


@pytest.mark.slow
def test_the_service_serves_again_as_soon_as_the_store_thaws(live: LiveService) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        challenge_id = log_in(client).json()["challenge_id"]
        live.store.freeze()
        assert log_in(client).status_code == 503
        live.store.thaw()

        assert client.get("/healthz").status_code == 200
        done = client.post("/v1/mfa/verify", headers=auth(), json={
            "challenge_id": challenge_id, "factor_id": live.factor_id, "code": totp_now(SECRET, START)})

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "authenticated"


def test_store_timeout_ms_defaults_to_500_and_is_range_checked(tmp_path: Path) -> None:
    assert StoreSettings().timeout_ms == 500
    config = tmp_path / "config.yaml"
    for bad in ("0", "9", "60001", "0.5", "'500'"):
        config.write_text(f"store:\n  timeout_ms: {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"^store\.timeout_ms: must be"):
            load_settings(config, environ={})
    config.write_text("store:\n  timeout_ms: 250\n", encoding="utf-8")
    assert load_settings(config, environ={}).store.timeout_ms == 250
    assert load_settings(None, environ={"MFA_STORE__TIMEOUT_MS": "2000"}).store.timeout_ms == 2000


@pytest.mark.slow
def test_an_admin_mfa_reset_against_a_frozen_store_is_refused_whole_not_half_applied(live: LiveService) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        user_id = client.get("/admin/users", headers=admin_auth()).json()["users"][0]["user_id"]
        live.store.freeze()

        response, seconds = timed(client, "POST", f"/admin/users/{user_id}/reset-mfa", headers=admin_auth())
        factors = client.get(f"/admin/users/{user_id}/factors", headers=admin_auth()).json()["factors"]

    assert_store_unavailable(response, seconds)
    assert [factor["id"] for factor in factors] == [live.factor_id]
