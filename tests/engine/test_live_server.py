"""A live uvicorn server keeps answering while a hostile rule's worker is being killed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from engine.app import create_app
from tests.engine.live_process import serve_in_thread
from tests.engine.service import DE_IP, US_IP, auth, evaluate_body, make_settings

pytestmark = pytest.mark.slow

HOSTILE_RULES = {
    "10-hostile": '''"""Hangs in C code for one user: only killing the worker stops it."""

def rule(user, context):
    if user.user_id == "attacker":
        re.match("(a+)+$", "a" * 64 + "b")
''',
    "20-outside-home": '''"""Second factor outside the US."""

def rule(user, context):
    if context.connection.ip_country != "US":
        context.multifactor.enable()
''',
}


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    settings = make_settings(tmp_path, HOSTILE_RULES, isolation="process",
                             sandbox={"workers": 2, "pipeline_timeout_ms": 300, "kill_grace_ms": 300})
    server, thread, url = serve_in_thread(create_app(settings))
    yield url
    server.should_exit = True
    thread.join(10)


def test_the_service_answers_other_requests_while_a_hostile_rule_is_killed(server_url: str) -> None:
    with httpx.Client(base_url=server_url, headers=auth(), timeout=10) as client, ThreadPoolExecutor(1) as pool:
        hostile = pool.submit(client.post, "/v1/evaluate", json=evaluate_body(US_IP, user_id="attacker"))
        time.sleep(0.05)  # let the hostile evaluation reach its worker
        answered_meanwhile = []
        while not hostile.done():
            benign = client.post("/v1/evaluate", json=evaluate_body(DE_IP, user_id="bob"))
            health = client.get("/healthz")
            if not hostile.done():
                answered_meanwhile.append((benign, health))
        response = hostile.result()

        assert answered_meanwhile, "no request was answered while the hostile rule ran"
        for benign, health in answered_meanwhile:
            assert benign.status_code == 200 and benign.json()["decision"] == "mfa"
            assert health.status_code == 200

        body = response.json()
        assert response.status_code == 200
        assert body["decision"] == "deny"
        assert body["reason"] == "rule_failed"
        assert body["trace"][0]["rule"] == "10-hostile"
        assert body["trace"][0]["outcome"] == "killed"

        # The pool replaces the killed worker and serves the hostile user's neighbours again.
        assert client.get("/healthz").json()["sandbox"]["kills"] == 1
        after = client.post("/v1/evaluate", json=evaluate_body(US_IP, user_id="carol")).json()
        assert after["decision"] == "allow"
        deadline = time.monotonic() + 10
        while client.get("/healthz").json()["sandbox"]["alive"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/healthz").json()["sandbox"]["alive"] == 2
