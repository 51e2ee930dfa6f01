"""A redis-server of the test's own, for fault tests: stop it, freeze it, restart it.

Fault tests must never touch the shared Redis on port 6379 (other runs and developers use
it): `RedisProcess` starts `redis-server` on a free port of 127.0.0.1 with no persistence
unless asked, in a directory of the test's own, and can freeze it (SIGSTOP: the process
keeps its socket, the kernel still accepts connections, nothing answers, which is what a
hung or swapping server looks like), thaw it (SIGCONT), or stop it (SIGTERM).

    with RedisProcess(tmp_path) as server:   # or the `redis_process` fixture
        app = create_app(make_settings(tmp_path, redis_url=server.url))
        server.freeze()
        ...                                  # requests must fail fast, not hang
        server.thaw()

Tests that start one are slow tests: mark them `@pytest.mark.slow`. Without a `redis-server`
executable the test is skipped, or fails when REQUIRE_REDIS=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import pytest
import redis

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on at the moment of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_server_or_skip() -> str:
    """The redis-server executable; skips the test (fails with REQUIRE_REDIS=1) without one."""
    executable = shutil.which("redis-server")
    if executable is None:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is required (REQUIRE_REDIS=1) but not on PATH")
        pytest.skip("redis-server is not on PATH")
    return executable


class RedisProcess:
    """One redis-server child process, on a free port, in `directory`.

    `extra_args` are appended to the command line (e.g. ["--appendonly", "yes"]); the
    defaults keep nothing on disk. The server is started by `start()` (or entering the
    context) and always ended by `close()` (or leaving it), frozen or not.
    """

    def __init__(self, directory: Path, extra_args: Sequence[str] = ()) -> None:
        self.directory = directory
        self.extra_args = tuple(extra_args)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def is_frozen(self) -> bool:
        return self._frozen

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the redis-server is not running")
        return self._process.pid

    def start(self, port: int = 0) -> RedisProcess:
        """Starts the server (on `port`, else a free one) and returns once it answers PING.
        Raises RuntimeError if it does not."""
        executable = redis_server_or_skip()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        command = [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                   *self.extra_args]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_until_it_answers()
        return self

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but no command is ever answered."""
        os.kill(self.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT: the server answers again, including the commands sent while it was frozen."""
        os.kill(self.pid, signal.SIGCONT)
        self._frozen = False

    def restart(self) -> None:
        """Stops the server and starts a new one on the same port: without persistence (the
        default) it comes back empty, as a restarted cache does; clients must reconnect."""
        port = self.port
        self.close()
        self.start(port)

    def client(self) -> redis.Redis:
        """A synchronous client for the test's own checks and set-up; the caller closes it."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def close(self) -> None:
        """Thaws the server if frozen, asks it to stop (SIGTERM), kills it if it does not."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._frozen:
            os.kill(process.pid, signal.SIGCONT)
            self._frozen = False
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _wait_until_it_answers(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with self.client() as probe:
            while True:
                if self._process.poll() is not None:
                    stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    self.close()
                    raise RuntimeError(f"redis-server exited at start: {stderr.strip()}")
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"redis-server did not answer on port {self.port}")
                time.sleep(0.02)


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A running redis-server of this test's own (no persistence), ended after the test."""
    with RedisProcess(tmp_path / "redis") as server:
        yield server
