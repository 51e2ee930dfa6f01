"""Pre-started worker processes, one evaluation at a time each, killed and replaced on deadline.

The parent never trusts a worker: a late, dead or babbling worker is killed, its
evaluation is reported with `result=None` (the caller fails closed) and a fresh worker
takes its place in the background while the others keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from sandbox.affinity import PROCESS_CPUS, CpuClaim
from sandbox.errors import CompileFailed, SandboxError, SandboxUnavailable
from sandbox.limits import Limits
from sandbox.programs import ProgramSet
from sandbox.runner import NOT_RUN, OUTCOME_NAMES, RUNNING, SANDBOX_FAILURE, ProgramTrace, RunReport
from sandbox.worker import MAX_FRAME_BYTES, PROGRESS_BYTES, RECEIVED_INDEX, len_prefixed

log = logging.getLogger("sandbox.pool")


def _report_from(reply: dict[str, Any]) -> RunReport:
    # tuple.__new__ rather than ProgramTrace(...), whose __new__ is a Python function: this
    # runs once per rule per evaluation on the event loop (10 rules: 13.3 -> 11.5 us). The
    # unpacking still refuses an entry of the wrong length.
    trace = tuple([_new_tuple(ProgramTrace, (name, outcome, duration_us, error, tuple(logs)))
                   for name, outcome, duration_us, error, logs in reply["trace"]])
    return RunReport(reply["result"], trace, reply["logs_dropped"])


_new_tuple = tuple.__new__


# How long close() waits for replacements under way (starting a worker takes ~100 ms).
_CLOSE_WAIT_S = 5.0


def _nothing(*_: object) -> None:
    return None


class WorkerLost(SandboxError):
    """The worker died, timed out or broke the protocol; it has been killed."""


class _DeadBeforeStart(SandboxError):
    """The worker was lost before it read the evaluation: it had died on its own."""


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _expire(waiter: asyncio.Future[dict[str, Any]]) -> None:
    if not waiter.done():
        waiter.set_exception(WorkerLost("deadline exceeded"))


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, host_path: str, limits: Limits) -> None:
        # The protocol has pipes of its own: fds 0-2 are /dev/null in the worker, so nothing
        # that writes to stdout (C code, a stray print) can corrupt a reply.
        memfd = os.memfd_create("mfa-sandbox-progress")
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            os.ftruncate(memfd, PROGRESS_BYTES)
            self.progress = mmap.mmap(memfd, PROGRESS_BYTES)
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-m", "sandbox.worker", host_path,
                 orjson.dumps(limits.to_plain()).decode(), str(memfd), str(request_read), str(reply_write),
                 str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={}, cwd="/", pass_fds=(memfd, request_read, reply_write), start_new_session=True,
            )
        except BaseException:
            for fd in (request_write, reply_read):
                os.close(fd)
            raise
        finally:
            for fd in (memfd, request_read, reply_write):
                os.close(fd)
        self._write_fd = request_write
        self._read_fd = reply_read
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._buffer = bytearray()
        self._waiter: asyncio.Future[dict[str, Any]] | None = None
        self.version: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Called when the worker exits or talks out of turn while no request is waiting.
        self.on_idle_loss: Callable[[_Worker], None] | None = None
        self.lost = False
        self.pinned = False

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Listen to the worker from now on, so that its death is noticed when it happens."""
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._read_fd, self._on_readable)

    def pin(self, cpu: CpuClaim) -> None:
        """Onto the loop's CPU, at its first evaluation: its start-up ran on any CPU."""
        try:
            cpu.pin(self.process.pid)
        except OSError:
            return  # it died: the write or the reply finds out
        self.pinned = True

    def received(self) -> int:
        """How many requests the worker has read (mod 256): did it take the last one at all?"""
        return self.progress[RECEIVED_INDEX]

    async def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self.watch(loop)
        waiter = self._waiter = loop.create_future()
        # A timer on the future itself: asyncio.wait_for would wrap it in a task, which
        # costs an extra loop iteration on every evaluation. It covers the write too.
        timer = loop.call_later(timeout_s, _expire, waiter)
        try:
            await self._send(loop, len_prefixed(orjson.dumps(message)), waiter)
            reply: dict[str, Any] = await waiter
        finally:
            timer.cancel()
        return reply

    async def _send(self, loop: asyncio.AbstractEventLoop, frame: bytes,
                    waiter: asyncio.Future[dict[str, Any]]) -> None:
        """Write `frame` without blocking the loop: a frame larger than the pipe's buffer, to a
        worker that is not reading (stopped, or stuck in C), used to freeze every request."""
        view = memoryview(frame)
        while view:
            try:
                view = view[os.write(self._write_fd, view):]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                raise WorkerLost(f"cannot write to worker: {exc}") from exc
            writable = loop.create_future()
            loop.add_writer(self._write_fd, _settle, writable)
            try:
                await asyncio.wait((writable, waiter), return_when=asyncio.FIRST_COMPLETED)
            finally:
                loop.remove_writer(self._write_fd)
            if waiter.done():
                waiter.result()  # the deadline passed (WorkerLost) or the worker died mid-frame

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._read_fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        waiter = self._waiter
        if not chunk:
            self._lose(waiter, "worker exited")
            return
        self._buffer += chunk
        if len(self._buffer) < 4:
            return
        size = int.from_bytes(self._buffer[:4], "big")
        if size > MAX_FRAME_BYTES or waiter is None or waiter.done():
            self._lose(waiter, "protocol violation")
            return
        if len(self._buffer) >= 4 + size:
            body = bytes(self._buffer[4 : 4 + size])
            del self._buffer[: 4 + size]
            try:
                waiter.set_result(orjson.loads(body))
            except orjson.JSONDecodeError:
                waiter.set_exception(WorkerLost("unreadable reply"))

    def _lose(self, waiter: asyncio.Future[dict[str, Any]] | None, why: str) -> None:
        self._detach()
        self.lost = True
        if waiter is not None and not waiter.done():
            waiter.set_exception(WorkerLost(why))
        elif self.on_idle_loss is not None:
            self.on_idle_loss(self)

    def _detach(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._read_fd)
            self._loop = None

    def progress_codes(self, count: int) -> bytes:
        return bytes(self.progress[:count])

    def kill(self) -> None:
        self._detach()
        try:
            self.process.kill()
        except ProcessLookupError:
            pass

    def reap(self) -> None:
        """Blocking: wait for the killed process and release its pipe and memory."""
        self.process.wait()
        for fd in (self._write_fd, self._read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.progress.close()


class WorkerPool:
    isolation = "process"

    def __init__(self, host_path: str, limits: Limits, *, size: int = 2, queue_timeout_ms: int = 1000,
                 cpu_affinity: str = "off", on_kill: Callable[[], None] = _nothing,
                 on_queue_wait: Callable[[float], None] = _nothing) -> None:
        """`on_kill` is called at each worker killed, `on_queue_wait` with the seconds each
        evaluation waited for a worker (or until it gave up): the service's metrics."""
        self._host_path = host_path
        self._cpu_affinity = cpu_affinity
        self._cpu: CpuClaim | None = None  # with cpu_affinity "loop", from start()
        self._limits = limits
        self._size = size
        self._queue_timeout_s = queue_timeout_ms / 1000
        # Last in, first out: the most recently used worker is the one whose caches and
        # CPU are warm; a FIFO queue would alternate workers and run each one cold.
        self._idle: asyncio.LifoQueue[_Worker] = asyncio.LifoQueue()
        self._all: set[_Worker] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.kills = 0
        self.deaths = 0  # workers found dead between evaluations, replaced without failing anyone
        self.spawn_failures = 0
        self._closing = False
        self._on_kill = on_kill
        self._on_queue_wait = on_queue_wait

    async def start(self) -> None:
        if self._cpu_affinity == "loop":
            self._cpu = CpuClaim.pin_loop_thread()  # start() runs on the loop's thread
        workers = await asyncio.gather(*(asyncio.to_thread(self._spawn) for _ in range(self._size)))
        for worker in workers:
            self._adopt(worker)

    def _adopt(self, worker: _Worker) -> None:
        """Watch a fresh worker and make it available."""
        worker.on_idle_loss = self._lost_while_idle
        worker.watch(asyncio.get_running_loop())
        self._idle.put_nowait(worker)

    def _lost_while_idle(self, worker: _Worker) -> None:
        # It stays in the idle queue, marked lost; _take skips it. Its replacement starts now,
        # so /healthz and the next evaluation see a full pool, not a corpse.
        self.deaths += 1
        log.warning("sandbox_worker_died_idle pid=%s", worker.process.pid)
        worker.kill()
        self._replace(worker)

    async def close(self) -> None:
        # Replacements under way finish first (a cancelled one would leave a worker its thread
        # is still starting, running after the pool is gone); they see `_closing` and stop.
        self._closing = True
        if self._background:
            _, pending = await asyncio.wait(list(self._background), timeout=_CLOSE_WAIT_S)
            for task in pending:
                task.cancel()
        for worker in list(self._all):
            worker.kill()
            await asyncio.to_thread(worker.reap)
        self._all.clear()
        if self._cpu is not None:
            self._cpu.close()

    def _spawn(self) -> _Worker:
        worker = _Worker(self._host_path, self._limits)
        self._all.add(worker)
        if self._cpu is not None:
            # The thread that started it may descend from the pinned loop thread: the worker's
            # start-up (about 100 ms of imports) runs on any CPU, not the loop's.
            with contextlib.suppress(OSError):  # one that died at once is found out later
                os.sched_setaffinity(worker.process.pid, PROCESS_CPUS)
        return worker

    def state(self) -> dict[str, Any]:
        alive = sum(not worker.lost for worker in self._all)
        idle = sum(not worker.lost for worker in self._idle._queue)  # type: ignore[attr-defined]
        return {"isolation": self.isolation, "size": self._size, "idle": idle, "busy": alive - idle,
                "alive": alive, "kills": self.kills, "deaths": self.deaths, "healthy": alive > 0}

    async def _take(self, deadline: float) -> _Worker:
        """A live idle worker, waiting until `deadline` (loop time) at most."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while True:
            try:
                worker = self._idle.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    worker = await asyncio.wait_for(self._idle.get(), max(deadline - loop.time(), 0))
                except TimeoutError as exc:
                    self._on_queue_wait(loop.time() - asked)
                    raise SandboxUnavailable("no sandbox worker became free in time") from exc
            if worker.lost:
                continue  # already being replaced
            self._on_queue_wait(loop.time() - asked)
            # One that died and whose pipe the loop has not read yet is found out by the write
            # or the reply (an evaluation it never read goes to the next worker, in run()).
            return worker

    async def run(self, program_set: ProgramSet, payload: dict[str, Any]) -> RunReport:
        deadline = asyncio.get_running_loop().time() + self._queue_timeout_s
        while True:
            worker = await self._take(deadline)
            try:
                return await self._run_on(worker, program_set, payload)
            except _DeadBeforeStart:
                # The worker died before it read this evaluation (a death the loop had not yet
                # seen): not this evaluation's doing, so it goes to another worker, as long as
                # one is free before the queue deadline. An evaluation that kills its own
                # worker never lands here (the worker had read it): it fails closed.
                continue

    async def _run_on(self, worker: _Worker, program_set: ProgramSet, payload: dict[str, Any]) -> RunReport:
        started = time.perf_counter()
        received = worker.received()
        if self._cpu is not None and not worker.pinned:
            worker.pin(self._cpu)
        try:
            if worker.version != program_set.version:
                await self._load(worker, program_set)
            worker.progress[: len(program_set.sources)] = bytes(len(program_set.sources))
            reply = await worker.request(
                {"op": "run", "version": program_set.version, "payload": payload},
                (self._limits.pipeline_timeout_ms + self._limits.kill_grace_ms) / 1000,
            )
            report = _report_from(reply)
        except CompileFailed:
            self._idle.put_nowait(worker)  # the worker is sound; the rule set is not
            raise
        except WorkerLost as exc:
            if worker.received() == received:
                self.deaths += 1
                worker.kill()
                self._replace(worker)
                raise _DeadBeforeStart(str(exc)) from exc
            return self._lost_report(worker, program_set, str(exc), started)
        except BaseException:
            # Cancelled mid-evaluation, or a reply that is not the protocol: the worker's
            # state is unknown, so it is never handed out again.
            self._killed_report(worker, program_set, "abandoned", started)
            self._replace(worker)
            raise
        self._idle.put_nowait(worker)
        return report

    async def _load(self, worker: _Worker, program_set: ProgramSet) -> None:
        message = {"op": "load", "version": program_set.version,
                   "sources": [source.to_plain() for source in program_set.sources]}
        # Loading runs each module body once (sandbox/snapshot.py), each under the rule budget.
        timeout_s = 5 + len(program_set.sources) * (self._limits.rule_timeout_ms + 20) / 1000
        reply = await worker.request(message, timeout_s)
        if "errors" in reply:
            raise CompileFailed(reply["errors"])
        worker.version = program_set.version

    def _lost_report(self, worker: _Worker, program_set: ProgramSet, why: str, started: float) -> RunReport:
        report = self._killed_report(worker, program_set, why, started)
        self._replace(worker)
        return report

    def _killed_report(self, worker: _Worker, program_set: ProgramSet, why: str, started: float) -> RunReport:
        worker.kill()
        self.kills += 1
        self._on_kill()
        log.warning("sandbox_worker_killed pid=%s reason=%s version=%s", worker.process.pid, why, program_set.version)
        elapsed_us = int((time.perf_counter() - started) * 1e6)
        traces = []
        codes = worker.progress_codes(len(program_set.sources))
        for source, code in zip(program_set.sources, codes):
            if code == NOT_RUN:
                break
            killed = code == RUNNING
            traces.append(ProgramTrace(
                source.name, OUTCOME_NAMES[code], elapsed_us if killed else 0,
                f"worker killed: {why}" if killed else None, (),
            ))
        if not traces or traces[-1].outcome != "killed":
            traces.append(ProgramTrace(SANDBOX_FAILURE, "killed", elapsed_us, f"worker killed: {why}", ()))
        return RunReport(None, tuple(traces))

    def _replace(self, dead: _Worker) -> None:
        async def replace() -> None:
            await asyncio.to_thread(dead.reap)
            self._all.discard(dead)
            while not self._closing:
                try:
                    fresh = await asyncio.to_thread(self._spawn)
                except OSError:
                    self.spawn_failures += 1
                    await asyncio.sleep(1)
                    continue
                if self._closing:
                    return  # close() kills and reaps everything in _all, this one included
                self._adopt(fresh)
                return

        task = asyncio.get_running_loop().create_task(replace())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
