"""A live `mfa-engine serve` bounds each request's line and headers (http.max_header_bytes).

uvicorn's httptools parser, which the engine serves on, keeps any amount of header bytes; the
engine's protocol refuses a head past the bound with 431 headers_too_large and closes, so a few
connections sending endless headers cannot take the server's memory.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine.config import ConfigError, load_settings
from tests.engine.live_process import RawConnection, ServerProcess, start_server, write_config
from tests.engine.service import auth, evaluate_body

pytestmark = pytest.mark.slow

LIMIT = 8192


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    yield from start_server(tmp_path, write_config(tmp_path, http={"max_header_bytes": LIMIT}))


def _raw_head(port: int, header_bytes: int) -> bytes:
    return (f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"X-Filler: {'a' * header_bytes}\r\n\r\n").encode()


def _response(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_head_over_the_bound_gets_431_with_a_code_and_a_closed_connection(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(_raw_head(server.port, 3 * LIMIT))

        received = _response(sock)  # ends: the server closed the connection

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in head.lower()
    assert orjson.loads(body)["error"] == "headers_too_large"


def test_a_head_that_never_ends_is_cut_off_at_the_bound_not_buffered(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ".encode())
        sent, refused = 0, False
        try:
            while sent < 16 * 1024 * 1024:  # the old parser took all of it and waited for more
                sock.sendall(b"a" * 4096)
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            refused = True
        if not refused:
            received = _response(sock)
            assert received.startswith(b"HTTP/1.1 431 "), received[:80]
    assert sent < 4 * 1024 * 1024, f"{sent} bytes of one header were accepted"


def test_heads_within_the_bound_are_served_on_one_keep_alive_connection(server: ServerProcess) -> None:
    filler = {"X-Filler": "a" * (LIMIT // 2)}  # each head alone is within the bound, the two together are not
    with RawConnection(server.port) as connection:
        for _ in range(3):
            response = connection.request("POST", "/v1/evaluate", {**auth(), **filler}, evaluate_body("203.0.113.7"))
            assert response.status == 200, response.body


def test_the_bound_is_a_setting_with_a_floor() -> None:
    assert load_settings(None, environ={}).http.max_header_bytes == 32_768
    with pytest.raises(ConfigError, match="http.max_header_bytes"):
        load_settings(None, environ={"MFA_HTTP__MAX_HEADER_BYTES": "100"})
