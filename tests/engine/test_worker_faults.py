"""Faults around the sandbox workers, through the real HTTP stack (issue 7, items 1 and 4).

- An input that passed validation never crashes a worker, and dates that cannot be turned
  into UTC do not pass validation.
- A worker that dies while idle is replaced when it dies, and no user's evaluation is
  charged for it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.app import create_app
from engine.rule_host import HOST, HOST_PATH
from sandbox.inprocess import InProcessRunner
from sandbox.pool import WorkerPool
from tests.conftest import TEST_LIMITS, LoopThread, SyncRunner, program_set, rule_payload
from tests.engine.asgi import ServiceClient
from tests.engine.service import US_IP, auth, evaluate_body, make_settings

OVERFLOWING = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
OUT_OF_RANGE = ["1899-12-31T23:59:59+00:00", "9500-01-01T00:00:00+00:00"]


@pytest.fixture(params=["inprocess", "process"])
def client(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    app = create_app(make_settings(tmp_path, isolation=request.param))
    with ServiceClient(app, loop_thread) as service:
        yield service


def _sandbox(client: ServiceClient) -> dict[str, Any]:
    return client.get("/healthz").json()["sandbox"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("value", OVERFLOWING + OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["created_at", "last_login", "method"])
def test_a_date_that_cannot_be_a_utc_instant_in_range_is_a_400_naming_the_field(
        client: ServiceClient, field: str, value: str) -> None:
    body = evaluate_body(US_IP)
    if field == "method":
        body["context"]["authentication_methods"] = [{"name": "pwd", "timestamp": value}]
        path = "context.authentication_methods[0].timestamp"
    else:
        body["user"][field] = value
        path = f"user.{field}"

    response = client.post("/v1/evaluate", json=body, headers=auth())

    assert response.status_code == 400, response.text
    assert (response.json()["error"], response.json()["field"]) == ("invalid_request", path)
    if client.get("/healthz").json()["sandbox"]["isolation"] == "process":
        assert _sandbox(client)["kills"] == 0


def test_dates_at_the_edges_of_the_range_and_in_any_zone_are_read_as_utc(client: ServiceClient) -> None:
    body = evaluate_body(US_IP, created_at="1900-01-01T01:00:00+01:00", last_login="9000-12-31T22:59:59-01:00")

    response = client.post("/v1/evaluate", json=body, headers=auth())

    assert response.status_code == 200, response.text
    assert response.json()["decision"] == "allow"


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_an_input_the_rule_api_cannot_bind_fails_closed_and_never_kills_the_worker(
        request: pytest.FixtureRequest, loop_thread: LoopThread, isolation: str) -> None:
    # Below the HTTP schema: the payload a worker receives is the host's to validate too.
    executor = InProcessRunner(HOST, TEST_LIMITS) if isolation == "inprocess" else request.getfixturevalue("rule_pool")
    sync = SyncRunner(executor, loop_thread)
    kills = getattr(executor, "kills", 0)
    rule = 'def rule(user, context):\n    pass\n'
    for value in OVERFLOWING:
        report = sync.run({"10-any": rule}, rule_payload({"created_at": value}))
        assert report.result is None
        assert [(t.name, t.outcome, t.error) for t in report.trace] == [
            ("<input>", "error", "the input could not be bound for the rules (ValueError)")]
    assert getattr(executor, "kills", 0) == kills
    assert sync.run({"10-any": rule}, rule_payload()).result is not None


# -- idle worker deaths --------------------------------------------------------------------------


def _wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def process_client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    app = create_app(make_settings(tmp_path, isolation="process"))
    with ServiceClient(app, loop_thread) as service:
        yield service


def test_a_worker_that_dies_while_idle_is_replaced_at_once_and_health_says_so(process_client: ServiceClient) -> None:
    assert process_client.post("/v1/evaluate", json=evaluate_body(US_IP), headers=auth()).status_code == 200
    pool: WorkerPool = process_client.app.state.services.executor
    victim = next(iter(pool._all))
    os.kill(victim.process.pid, signal.SIGKILL)

    _wait_until(lambda: _sandbox(process_client)["deaths"] == 1 and _sandbox(process_client)["alive"] == 2)

    state = _sandbox(process_client)
    assert (state["alive"], state["idle"], state["kills"]) == (2, 2, 0)
    assert process_client.get("/healthz").json()["status"] == "ok"


def test_no_evaluation_is_charged_for_a_worker_that_died_before_it_started(loop_thread: LoopThread) -> None:
    pool = WorkerPool(HOST_PATH, TEST_LIMITS, size=1)
    loop_thread.call(pool.start())
    try:
        rules = program_set({"10-allow": 'def rule(user, context):\n    context.claims["https://x.example/ok"] = 1\n'})
        sync = SyncRunner(pool, loop_thread)
        assert sync.run(rules, rule_payload()).result is not None
        worker = next(iter(pool._all))

        async def kill_then_evaluate() -> Any:
            # Nothing yields between the kill and the dispatch: the pool cannot have seen the
            # death yet, and must find out on its own.
            os.kill(worker.process.pid, signal.SIGKILL)
            return await pool.run(rules, rule_payload())

        report = loop_thread.call(kill_then_evaluate())

        assert report.result is not None and report.result["denied"] is False, report.trace
        assert [t.outcome for t in report.trace] == ["ok"]
        assert (pool.kills, pool.deaths) == (0, 1)
    finally:
        loop_thread.call(pool.close())


def test_an_evaluation_that_kills_its_own_worker_still_fails_closed(loop_thread: LoopThread) -> None:
    pool = WorkerPool(HOST_PATH, TEST_LIMITS, size=1)
    loop_thread.call(pool.start())
    try:
        catastrophic = 'def rule(user, context):\n    re.match("(a+)+b", "a" * 40)\n'
        report = SyncRunner(pool, loop_thread).run({"10-hang": catastrophic}, rule_payload())
        assert report.result is None
        assert [(t.name, t.outcome) for t in report.trace] == [("10-hang", "killed")]
        assert (pool.kills, pool.deaths) == (1, 0)
    finally:
        loop_thread.call(pool.close())
