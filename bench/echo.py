"""The floor under a worker round trip: a child process that only echoes a fixed-size frame.

Same pipes and frame sizes as the pool (a run request out, a reply back), no Python work
on either side beyond reading and writing, so the figure is what the OS and the
interpreter charge for two wakeups and four system calls.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from bench.timing import Probe

_CHILD = r"""
import os, sys
reply = bytes(int(sys.argv[1]))
while True:
    header = os.read(0, 4)
    if len(header) < 4:
        break
    size = int.from_bytes(header, "big")
    while size:
        chunk = os.read(0, size)
        if not chunk:
            sys.exit()
        size -= len(chunk)
    os.write(1, len(reply).to_bytes(4, "big") + reply)
"""


class EchoProcess:
    def __init__(self, request_bytes: int, reply_bytes: int) -> None:
        self._process = subprocess.Popen([sys.executable, "-I", "-c", _CHILD, str(reply_bytes)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._write_fd = self._process.stdin.fileno()
        self._read_fd = self._process.stdout.fileno()
        self._request = request_bytes.to_bytes(4, "big") + bytes(request_bytes)
        self._reply_size = 4 + reply_bytes
        self._received = 0
        self._done: asyncio.Future[None] | None = None

    def blocking_probe(self) -> Probe:
        async def run(count: int) -> int:
            os.set_blocking(self._read_fd, True)
            started = time.perf_counter_ns()
            for _ in range(count):
                os.write(self._write_fd, self._request)
                received = 0
                while received < self._reply_size:
                    chunk = os.read(self._read_fd, 1 << 16)
                    if not chunk:
                        raise EOFError("echo process exited")
                    received += len(chunk)
            return time.perf_counter_ns() - started

        return run

    def asyncio_probe(self) -> Probe:
        """As pool.py waits: a reader callback on the event loop completes a future."""

        async def run(count: int) -> int:
            loop = asyncio.get_running_loop()
            os.set_blocking(self._read_fd, False)
            loop.add_reader(self._read_fd, self._on_readable)
            started = time.perf_counter_ns()
            for _ in range(count):
                self._received, done = 0, loop.create_future()
                self._done = done
                os.write(self._write_fd, self._request)
                await done
            elapsed = time.perf_counter_ns() - started
            loop.remove_reader(self._read_fd)
            return elapsed

        return run

    def set_cpus(self, cpus: frozenset[int]) -> None:
        """Where the echo process may run: on the loop's one CPU, the floor under cpu_affinity=loop."""
        os.sched_setaffinity(self._process.pid, cpus)

    def _on_readable(self) -> None:
        chunk = os.read(self._read_fd, 1 << 16)
        self._received += len(chunk)
        if self._done is None or self._done.done():
            return
        if not chunk:
            self._done.set_exception(EOFError("echo process exited"))
        elif self._received == self._reply_size:
            self._done.set_result(None)

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(5)
        self._process.stdout.close()
