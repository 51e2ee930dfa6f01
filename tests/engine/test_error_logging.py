"""Client hang-ups are quiet and unexpected errors are one safe line (issue 7, item 7).

Live server processes, their real log output: a client that goes away mid-request is a
DEBUG line, never an ERROR or a traceback; an unexpected error (a component that raises,
injected through create_app's overrides) answers a JSON 500 naming a request id, logs one
line with the error's type and that id and none of its values, and leaves the keep-alive
connection serving the next request.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.engine.live_process import RawConnection, ServerProcess, start_server, write_config
from tests.engine.service import auth, evaluate_body

pytestmark = pytest.mark.slow

# Values an exception may carry: they must reach no log line and no response.
SECRET_IN_MESSAGE = "hunter2-in-the-exception-message"
SECRET_IN_BODY = "Correct Horse In The Body"

BROKEN_GEO_SERVER = '''
"""`mfa-engine serve`'s own logging and uvicorn settings, around an app whose GeoIP reader breaks."""
import sys

from engine.app import create_app
from engine.cli import configure_logging, serve
from engine.config import load_settings


class BrokenGeoLocator:
    """As a corrupt database would: every lookup raises, with request data in the message."""

    def lookup(self, ip):
        raise {error}("lookup of " + ip + " failed: {secret}")

    def close(self):
        pass


settings = load_settings(sys.argv[1])
configure_logging(settings)
serve(create_app(settings, geo=BrokenGeoLocator()), settings, "127.0.0.1", int(sys.argv[3]))
'''


@pytest.fixture
def debug_server(tmp_path: Path) -> Iterator[ServerProcess]:
    yield from start_server(tmp_path, write_config(tmp_path, logging={"level": "DEBUG"}))


@pytest.fixture
def broken_geo_server(error: str, tmp_path: Path) -> Iterator[ServerProcess]:
    script = tmp_path / "broken_geo_server.py"
    script.write_text(BROKEN_GEO_SERVER.format(error=error, secret=SECRET_IN_MESSAGE), encoding="utf-8")
    yield from start_server(tmp_path, write_config(tmp_path), command=[sys.executable, str(script)])


def stopped_log(server: ServerProcess) -> str:
    server.stop()
    return server.log()


def wait_for_line(server: ServerProcess, text: str, timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{server.log()}"
        time.sleep(0.05)


def hang_up(connection: RawConnection, *, reset: bool) -> None:
    if reset:  # RST instead of FIN: the peer sees "connection reset"
        connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_client_that_hangs_up_mid_body_leaves_a_debug_line_and_no_error(debug_server: ServerProcess,
                                                                         reset: bool) -> None:
    body = orjson.dumps(evaluate_body())
    connection = RawConnection(debug_server.port)
    connection.send_head("POST", "/v1/evaluate", {"Content-Type": "application/json", **auth()}, len(body))
    connection.send_body(body[:20], last=False)
    time.sleep(0.2)  # the endpoint is reading the body

    hang_up(connection, reset=reset)

    wait_for_line(debug_server, "client_disconnected")
    with RawConnection(debug_server.port) as after:
        assert after.request("POST", "/v1/evaluate", auth(), evaluate_body()).status == 200
    log = stopped_log(debug_server)
    assert "ERROR" not in log
    assert "Traceback" not in log


# A ConnectionError raised by one of our own dependencies is a fault, not a client hanging up.
@pytest.mark.parametrize("error", ["RuntimeError", "ConnectionRefusedError"])
def test_an_unexpected_error_answers_500_with_a_request_id_and_keeps_the_connection(
    broken_geo_server: ServerProcess, error: str,
) -> None:
    with RawConnection(broken_geo_server.port) as connection:
        failed = connection.request("POST", "/v1/evaluate", auth(),
                                    evaluate_body(name=SECRET_IN_BODY))
        health = connection.request("GET", "/healthz", {})  # the same keep-alive connection

    assert failed.status == 500
    assert failed.headers["content-type"] == "application/json"
    request_id = failed.json()["request_id"]
    assert failed.json() == {"error": "internal_error", "message": "internal error", "request_id": request_id}
    assert failed.headers["x-request-id"] == request_id
    assert health.status == 200
    assert health.headers["x-request-id"] not in ("", request_id)

    log = stopped_log(broken_geo_server)
    error_lines = [line for line in log.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1, log
    assert f"type={error}" in error_lines[0] and f"request_id={request_id}" in error_lines[0]
    assert "Traceback" not in log
    assert SECRET_IN_MESSAGE not in log and SECRET_IN_BODY not in log
    assert SECRET_IN_MESSAGE not in failed.body.decode()
