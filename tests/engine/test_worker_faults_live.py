"""Issue 7, items 1 and 4, against a live `mfa-engine serve` with process isolation: poisoned
dates never reach a worker, and a worker killed while idle costs no one a login."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.live_process import ServerProcess, start_server, write_config
from tests.engine.service import API_KEY

pytestmark = pytest.mark.slow
CLAIM_RULE = '''"""Everyone in, with a claim that shows the rules ran."""

def rule(user, context):
    context.claims["https://example.com/ran"] = True
'''


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = write_config(tmp_path, {"10-claim": CLAIM_RULE}, sandbox={"isolation": "process", "workers": 2})
    yield from start_server(tmp_path, config)


def evaluate(server: ServerProcess, **user: Any) -> httpx.Response:
    body = {"user": {"user_id": "u-1", **user}, "context": {"ip": "203.0.113.7"}}
    return httpx.post(f"{server.url}/v1/evaluate", json=body, headers={"Authorization": f"Bearer {API_KEY}"},
                      timeout=10)


def sandbox(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(f"{server.url}/healthz", timeout=5).json()["sandbox"]  # type: ignore[no-any-return]


def worker_pids(server: ServerProcess) -> list[int]:
    listing = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(server.process.pid)], capture_output=True,
                             text=True, check=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "sandbox.worker" in line]


def test_dates_that_overflow_in_utc_are_400s_and_kill_no_worker(server: ServerProcess) -> None:
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        response = evaluate(server, created_at=value)
        assert (response.status_code, response.json()["field"]) == (400, "user.created_at")

    assert evaluate(server).json()["decision"] == "allow"
    assert sandbox(server)["kills"] == 0


def test_a_worker_killed_while_idle_is_replaced_and_the_next_login_is_not_charged_for_it(
        server: ServerProcess) -> None:
    assert evaluate(server).status_code == 200
    for round_number in range(1, 4):
        for pid in worker_pids(server):  # every worker: the next evaluation cannot avoid a dead one
            os.kill(pid, signal.SIGKILL)

        answer = evaluate(server)  # at once: the server may not have seen the death yet

        assert answer.status_code == 200, answer.text
        assert (answer.json()["decision"], answer.json()["claims"]) == ("allow", {"https://example.com/ran": True})
        deadline = time.monotonic() + 5
        while not (sandbox(server)["alive"] == 2 and sandbox(server)["deaths"] == 2 * round_number):
            assert time.monotonic() < deadline, sandbox(server)
            time.sleep(0.05)
    assert sandbox(server)["kills"] == 0


def test_workers_end_with_a_server_that_is_killed_even_in_the_middle_of_c_code(tmp_path: Path) -> None:
    stuck = '''"""A catastrophic regular expression: C code that never returns."""

def rule(user, context):
    re.fullmatch("(a+)+b", "a" * 60)
'''
    config = write_config(tmp_path, {"10-stuck": stuck}, sandbox={
        "isolation": "process", "workers": 2, "pipeline_timeout_ms": 30_000, "rule_timeout_ms": 10_000,
        "kill_grace_ms": 10_000})
    server = ServerProcess(tmp_path, config)
    workers: list[int] = []
    try:
        server.wait_ready()
        workers = worker_pids(server)
        sending = threading.Thread(target=lambda: _ignore_errors(lambda: evaluate(server)), daemon=True)
        sending.start()
        time.sleep(0.5)  # a worker is now deep in the regular expression

        server.process.kill()  # as an orchestrator or the OOM killer would
        server.process.wait()

        deadline = time.monotonic() + 3
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, [pid for pid in workers if _alive(pid)]
            time.sleep(0.05)
    finally:
        server.stop()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _ignore_errors(call: Any) -> None:
    try:
        call()
    except httpx.HTTPError:
        pass
