"""A real `mfa-engine serve` process, for tests where sockets, signals and log output matter.

Each server gets its own config file, a free port and a stderr file the test reads; raw
sockets speak HTTP/1.1 through h11, so a test can hold a body half-sent, reuse one
keep-alive connection, or hang up mid-request, which no HTTP client library lets it do.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h11
import httpx
import orjson
import uvicorn
import yaml

from tests.engine.service import ADMIN_TOKEN, API_KEY, SECRET_KEY, SIGNING_KEY

REPO = Path(__file__).resolve().parents[2]
ALLOW_ALL = '''"""Let everyone in."""

def rule(user, context):
    pass
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, rules: Mapping[str, str] | None = None, **sections: Mapping[str, Any]) -> Path:
    """A config file for a quick-starting server (in-process rules, cheap argon2, no GeoIP);
    `sections` replace keys section by section (`http={"body_timeout_ms": 500}`)."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    for rule_id, source in (rules or {"10-allow": ALLOW_ALL}).items():
        (rules_dir / f"{rule_id}.py").write_text(source, encoding="utf-8")
    config: dict[str, dict[str, Any]] = {
        "rules": {"dir": str(rules_dir)},
        "sandbox": {"isolation": "inprocess"},
        "geoip": {"database": ""},
        "api": {"keys": [API_KEY]},
        "admin": {"token": ADMIN_TOKEN},
        "secrets": {"key": SECRET_KEY},
        "tokens": {"signing_key": SIGNING_KEY},
        "directory": {"url": f"sqlite:///{tmp_path / 'mfa.db'}"},
        "login": {"password_time_cost": 1, "password_memory_kib": 8192, "password_parallelism": 1},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class ServerProcess:
    """One server process; `command` gets the config path and the port appended."""

    def __init__(self, tmp_path: Path, config: Path, command: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._stderr_path = tmp_path / f"server-{self.port}.log"
        stderr = self._stderr_path.open("wb")
        environ = {name: value for name, value in os.environ.items() if not name.startswith("MFA_")}
        environ["PYTHONPATH"] = str(REPO)  # this checkout's engine, for scripts as for `-m engine`
        self.process = subprocess.Popen(
            [*(command or [sys.executable, "-m", "engine", "serve", "--config"]), str(config),
             "--port", str(self.port)],
            cwd=REPO, env=environ, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        stderr.close()

    def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"the server did not answer /healthz within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self._stderr_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def exited_within(self, seconds: float) -> bool:
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            if not self.exited_within(10):
                self.process.kill()
                self.process.wait()


def start_server(tmp_path: Path, config: Path, command: list[str] | None = None) -> Iterator[ServerProcess]:
    """For fixtures: a ready server, stopped (killed if need be) after the test."""
    server = ServerProcess(tmp_path, config, command)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class RawConnection:
    """One TCP connection speaking HTTP/1.1 by hand: nothing is retried or reopened behind the test."""

    def __init__(self, port: int, timeout: float = 5) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.http = h11.Connection(h11.CLIENT)

    def send_head(self, method: str, path: str, headers: Mapping[str, str], content_length: int | None) -> None:
        fields = [("Host", "engine.test"), *headers.items()]
        if content_length is not None:
            fields.append(("Content-Length", str(content_length)))
        self.sock.sendall(self.http.send(h11.Request(method=method, target=path, headers=fields)) or b"")

    def send_body(self, data: bytes, *, last: bool = True) -> None:
        self.sock.sendall(self.http.send(h11.Data(data=data)) or b"")
        if last:
            self.sock.sendall(self.http.send(h11.EndOfMessage()) or b"")

    def request(self, method: str, path: str, headers: Mapping[str, str], body: Any = None) -> RawResponse:
        data = b"" if body is None else orjson.dumps(body)
        self.send_head(method, path, {"Content-Type": "application/json", **headers}, len(data))
        self.send_body(data)
        response = self.read_response()
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
        return response

    def read_response(self) -> RawResponse:
        """The next response; raises ConnectionClosed if the server hangs up before sending one."""
        head: h11.Response | None = None
        body = b""
        while True:
            try:
                event = self.http.next_event()
                if event is h11.NEED_DATA:
                    self.http.receive_data(self.sock.recv(65536))
                    continue
            except (ConnectionResetError, h11.RemoteProtocolError) as exc:
                raise ConnectionClosed("the server closed the connection without a response") from exc
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                return RawResponse(head.status_code, {k.decode().lower(): v.decode() for k, v in head.headers}, body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionClosed("the server closed the connection without a response")

    def server_closed(self, timeout: float) -> bool:
        """True if the server ends the connection (EOF or reset) within `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ConnectionClosed(Exception):
    pass


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


def serve_in_thread(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    """A uvicorn on a thread of this process, on a free port: (server, thread, base url).
    Stop it with `server.should_exit = True` and `thread.join()`."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",  # type: ignore[arg-type]
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"
