"""A body that stalls cannot hold a request, or the process, forever (issue 7, item 3).

Live `mfa-engine serve` processes and raw sockets: a client that sends its headers and half
a body then stalls gets 408 and a closed connection once http.body_timeout_ms has passed;
SIGTERM ends the process within http.shutdown_timeout_seconds even while such a client is
connected, and still lets an ordinary in-flight request finish.
"""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine.config import ConfigError, load_settings
from tests.engine.live_process import RawConnection, ServerProcess, start_server, write_config
from tests.engine.service import auth, evaluate_body

pytestmark = pytest.mark.slow

BODY = orjson.dumps(evaluate_body())


def send_half_a_body(connection: RawConnection) -> None:
    """Announce the whole body, send half of it and stall."""
    connection.send_head("POST", "/v1/evaluate", {"Content-Type": "application/json", **auth()}, len(BODY))
    connection.send_body(BODY[: len(BODY) // 2], last=False)
    time.sleep(0.2)  # the request has reached the endpoint, which is waiting for the rest


@pytest.fixture
def impatient_server(tmp_path: Path) -> Iterator[ServerProcess]:
    yield from start_server(tmp_path, write_config(tmp_path, http={"body_timeout_ms": 500}))


@pytest.fixture
def patient_server(tmp_path: Path) -> Iterator[ServerProcess]:
    # Bodies may take a minute: only the shutdown bound can end a stalled request here.
    yield from start_server(tmp_path, write_config(
        tmp_path, http={"body_timeout_ms": 60_000, "shutdown_timeout_seconds": 1}))


@pytest.fixture
def graceful_server(tmp_path: Path) -> Iterator[ServerProcess]:
    yield from start_server(tmp_path, write_config(tmp_path, http={"shutdown_timeout_seconds": 5}))


def test_a_body_that_stalls_half_way_gets_408_and_a_closed_connection(impatient_server: ServerProcess) -> None:
    started = time.monotonic()
    with RawConnection(impatient_server.port, timeout=3) as connection:
        send_half_a_body(connection)

        response = connection.read_response()

        assert response.status == 408
        assert response.json()["error"] == "request_timeout"
        assert response.headers["connection"] == "close"
        assert connection.server_closed(timeout=2)
    assert time.monotonic() - started < 0.5 + 2


def test_a_body_trickled_a_byte_at_a_time_must_still_arrive_within_the_timeout(
    impatient_server: ServerProcess,
) -> None:
    started = time.monotonic()
    with RawConnection(impatient_server.port, timeout=3) as connection:
        connection.send_head("POST", "/v1/evaluate", {"Content-Type": "application/json", **auth()}, len(BODY))
        for byte in BODY:  # one byte every 100 ms, until the server answers
            if select.select([connection.sock], [], [], 0.1)[0]:
                break
            connection.send_body(bytes([byte]), last=False)

        response = connection.read_response()

        assert response.status == 408
        assert connection.server_closed(timeout=2)
    assert time.monotonic() - started < 0.5 + 2


def test_a_body_that_arrives_in_time_is_served_as_usual(impatient_server: ServerProcess) -> None:
    with RawConnection(impatient_server.port) as connection:
        connection.send_head("POST", "/v1/evaluate", {"Content-Type": "application/json", **auth()}, len(BODY))
        connection.send_body(BODY[:10], last=False)
        time.sleep(0.2)
        connection.send_body(BODY[10:])
        response = connection.read_response()

    assert response.status == 200
    assert response.json()["decision"] == "allow"


def test_sigterm_ends_the_process_within_the_shutdown_timeout_while_a_body_is_stalled(
    patient_server: ServerProcess,
) -> None:
    with RawConnection(patient_server.port) as connection:
        send_half_a_body(connection)
        started = time.monotonic()

        patient_server.terminate()

        assert patient_server.exited_within(1 + 4), "the process was still running 4 s after the shutdown timeout"
        assert time.monotonic() - started >= 1, "in-flight requests get the whole shutdown timeout"
        # The cancelled request is told to come back, not left hanging.
        response = connection.read_response()
    assert response.status == 503
    assert response.json()["error"] == "service_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert "Traceback" not in patient_server.log()


def test_sigterm_lets_an_in_flight_request_finish(graceful_server: ServerProcess) -> None:
    with RawConnection(graceful_server.port) as connection:
        send_half_a_body(connection)
        graceful_server.terminate()
        time.sleep(0.3)  # shutdown has begun: no new connections, but this request may finish
        connection.send_body(BODY[len(BODY) // 2:])
        response = connection.read_response()

        assert response.status == 200
        assert response.json()["decision"] == "allow"
        assert connection.server_closed(timeout=2), "a shutting-down server keeps no connection alive"
    assert graceful_server.exited_within(3)


SPIN_FOR_SECONDS = '''"""Keeps its worker busy for seconds: only the shutdown timeout cuts it short."""

def rule(user, context):
    total = 0
    for outer in range(100000):
        for inner in range(100000):
            total = total + inner
'''


def child_pids(pid: int) -> list[int]:
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=True)
    return [int(child) for child in listed.stdout.split()]


@pytest.fixture
def busy_worker_server(tmp_path: Path) -> Iterator[ServerProcess]:
    yield from start_server(tmp_path, write_config(
        tmp_path, {"10-spin": SPIN_FOR_SECONDS}, http={"shutdown_timeout_seconds": 1},
        sandbox={"isolation": "process", "workers": 1, "rule_timeout_ms": 10_000, "pipeline_timeout_ms": 10_000,
                 "max_steps": 1_000_000_000}))


def test_sigterm_cancels_a_slow_evaluation_and_stops_the_workers_after_the_shutdown_timeout(
    busy_worker_server: ServerProcess,
) -> None:
    workers = child_pids(busy_worker_server.process.pid)
    assert workers
    with RawConnection(busy_worker_server.port) as connection:
        connection.send_head("POST", "/v1/evaluate", {"Content-Type": "application/json", **auth()}, len(BODY))
        connection.send_body(BODY)
        time.sleep(0.3)  # the evaluation is running in the worker
        started = time.monotonic()

        busy_worker_server.terminate()

        assert busy_worker_server.exited_within(1 + 4)
        assert time.monotonic() - started >= 1
        assert connection.read_response().status == 503
    deadline = time.monotonic() + 2
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a sandbox worker outlived the service"


@pytest.mark.parametrize(("key", "value"), [("body_timeout_ms", 0), ("body_timeout_ms", 600_001),
                                            ("shutdown_timeout_seconds", 0), ("shutdown_timeout_seconds", 601)])
def test_the_body_and_shutdown_timeouts_are_bounded_in_config(tmp_path: Path, key: str, value: int) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"http:\n  {key}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"^http.{key}: must be "):
        load_settings(path, environ={})
