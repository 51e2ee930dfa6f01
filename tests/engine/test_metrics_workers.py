"""GET /metrics under `serve --workers 2`: whichever process answers the scrape, it counts both.

Which worker answered a connection is read from /proc (tests/engine/test_server_workers.py).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.engine.live_process import RawConnection, ServerProcess, write_config
from tests.engine.service import API_KEY, METRICS_TOKEN
from tests.engine.test_server_workers import answering_pid, children, command_line, live_redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    yield from live_redis(REDIS_URL)


def samples(connection: RawConnection) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = connection.request("GET", "/metrics", SCRAPE)
    assert response.status == 200, response.body
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.body.decode())
            for sample in family.samples}


def evaluate_body(index: int) -> dict[str, object]:
    return {"user": {"user_id": f"u-{index}", "username": f"user-{index}", "factors": []},
            "context": {"ip": "203.0.113.7", "device_id": "dev-1"}}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_scrape_answered_by_either_worker_sums_both_workers_counts(tmp_path: Path,
                                                                      shared_redis: redis.Redis) -> None:
    config = write_config(tmp_path, store={"redis_url": REDIS_URL}, metrics={"token": METRICS_TOKEN})
    server = ServerProcess(tmp_path, config, [sys.executable, "-m", "engine", "serve", "--workers", "2", "--config"])
    connections: list[RawConnection] = []
    try:
        server.wait_ready(timeout=30)
        workers = [pid for pid in children(server.process.pid) if "spawn_main" in command_line(pid)]
        assert len(workers) == 2
        environments = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in workers]
        directories = {entry.split(b"=", 1)[1].decode() for environment in environments for entry in environment
                       if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR=")}
        assert len(directories) == 1, "both workers write to one directory"
        directory = Path(directories.pop())
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700

        by_worker: dict[int, list[RawConnection]] = {}
        evaluations = 0
        for index in range(64):
            connection = RawConnection(server.port)
            connections.append(connection)
            for _ in range(3):
                assert connection.request("POST", "/v1/evaluate", AUTH, evaluate_body(evaluations)).status == 200
                evaluations += 1
            by_worker.setdefault(answering_pid(connection, server.port, workers), []).append(connection)
            if len(by_worker) == 2 and index >= 4:
                break
        assert len(by_worker) == 2, f"one worker answered all {len(connections)} connections"
        # A counter written directly: one failed login on each worker.
        for pool in by_worker.values():
            wrong = pool[0].request("POST", "/v1/login", AUTH, {"username": "nobody", "password": "wrong password",
                                                                "client_id": "app-1"})
            assert wrong.status == 401

        for pool in by_worker.values():  # each worker's scrape sees both (rule durations within a second)
            deadline = time.monotonic() + 5
            while True:
                seen = samples(pool[0])
                count = seen.get(("mfa_rule_duration_seconds_count", (("rule", "10-allow"),)), 0)
                if count == evaluations:
                    break
                assert count < evaluations and time.monotonic() < deadline, (count, evaluations)
                time.sleep(0.2)
            assert seen[("mfa_logins_total", (("outcome", "invalid_credentials"),))] == 2
            assert seen[("mfa_sandbox_worker_kills_total", ())] == 0
            assert not [name for name, _ in seen if name.endswith("_created")]
    finally:
        for connection in connections:
            connection.close()
        server.stop()
    assert server.process.returncode == 0, server.log()
    assert not directory.exists(), "the metrics directory outlived the server"
