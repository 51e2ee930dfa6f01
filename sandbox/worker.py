"""The isolated worker: a process that runs rules and nothing else.

Started by pool.py as `python -I -m sandbox.worker HOST LIMITS PROGRESS_FD REQUEST_FD REPLY_FD PARENT_PID`
with an empty environment, `/` as working directory, fds 0-2 on /dev/null and one pipe each
way for the protocol (so output from C code or a stray print cannot corrupt a reply).
Before it reads any rule it caps its own address space, file size, open files and core
dumps, and drops root. It holds no secrets and no connections: a rule that escaped every
guard would find an empty, unprivileged process.

After each reply the worker collects the garbage the evaluation may have left in reference
cycles (GarbageCollector), so none of it is still taking memory when the next one starts.

Protocol on the pipes: frames of a 4-byte big-endian length and an orjson body.
  {"op": "load", "version", "sources": [{name, source, meta}]} -> {"ok": true} | {"errors": [...]}
  {"op": "run", "version", "payload"}                           -> {"result", "trace", "logs_dropped"}
  where each trace entry is [name, outcome, duration_us, error, logs].
The progress memory holds one byte per program (runner.NOT_RUN ... TIMEOUT).
"""

from __future__ import annotations

import gc
import importlib
import mmap
import os
import resource
import signal
import sys
import time
from typing import Any

PROGRESS_BYTES = 4096
# The last byte of the progress page counts the requests the worker has read (mod 256): a
# worker lost before it read an evaluation died on its own, and that evaluation may be retried.
RECEIVED_INDEX = PROGRESS_BYTES - 1
MAX_FRAME_BYTES = 64 * 1024 * 1024
_UNPRIVILEGED_ID = 65534  # nobody / nogroup
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_CPU_WINDOW_S = 10.0
_FIRST_READ_BYTES = 1 << 16  # a Linux pipe's default capacity


def read_frame(fd: int, max_bytes: int = MAX_FRAME_BYTES) -> bytes | None:
    """One frame from a blocking fd; None at end of stream.

    The parent sends a frame only to an idle worker and waits for its reply, so the pipe
    never holds more than one: one read takes all of a frame up to the pipe's size (one
    system call instead of two), and bytes past the frame are a protocol violation."""
    data = os.read(fd, _FIRST_READ_BYTES)
    if not data:
        return None
    if len(data) < 4:
        data += _read_remaining(fd, 4 - len(data))
    size = int.from_bytes(data[:4], "big")
    if size > max_bytes:
        raise ValueError(f"frame of {size} bytes")
    if len(data) > 4 + size:
        raise ValueError("bytes after the frame")
    body = data[4:]
    if len(body) < size:
        body += _read_remaining(fd, size - len(body))
    return body


def len_prefixed(body: bytes) -> bytes:
    """One frame: a 4-byte big-endian length, then the body."""
    return len(body).to_bytes(4, "big") + body


def write_frame(fd: int, body: bytes) -> None:
    """Blocking: the worker's side, which has nothing else to do."""
    view = memoryview(len_prefixed(body))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_remaining(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _cap_resources(memory_mb: int) -> None:
    address_space = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _drop_privileges() -> None:
    """After the imports: the interpreter may live where only root can read."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(_UNPRIVILEGED_ID)
            os.setuid(_UNPRIVILEGED_ID)
        except OSError:
            pass  # a container without CAP_SETUID: the other confinements still hold
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def _die_with_parent(parent_pid: int) -> None:
    """A worker whose server died (SIGKILL, the OOM killer) is killed too, at once, even in the
    middle of C code that would never read its pipe again. Set after the privileges drop,
    which clears it (prctl(2))."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the server died before the call above
        os._exit(0)


class CpuBackstop:
    """A backstop under the parent's deadline and the parent-death signal: SIGXCPU ends this
    worker once one request has used `seconds` of CPU, plus at most `_CPU_WINDOW_S`.

    setrlimit costs microseconds, so the limit is re-armed only when the CPU time used so far
    (process_time, a cheap clock read) comes within `seconds` of it."""

    __slots__ = ("_armed_until",)

    def __init__(self) -> None:
        self._armed_until = 0.0

    def before(self, seconds: float) -> None:
        used = time.process_time()
        if used + seconds > self._armed_until:
            self._armed_until = used + seconds + _CPU_WINDOW_S
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (int(self._armed_until) + 1, hard))


class GarbageCollector:
    """Frees, after each evaluation, what the evaluation left in reference cycles, collecting
    only the generations that can hold it: a full collection after every evaluation cost
    6-9 us of a 10-rule evaluation's ~100 us of work (it also empties the interpreter's free
    lists, which the next evaluation refills); generation 0 alone, about 1 us.

    Everything an evaluation allocates starts in generation 0; only an automatic collection
    during the evaluation moves survivors up, one generation per collection. So collecting
    one generation above the oldest that was collected since the last call reaches all of
    it, as a full collection would, and memory one evaluation leaves behind never counts
    against the next one's `memory_mb`."""

    __slots__ = ("_oldest",)

    def __init__(self) -> None:
        self._oldest = -1
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] > self._oldest:
            self._oldest = info["generation"]

    def after_evaluation(self) -> None:
        gc.collect(min(self._oldest + 1, 2))
        self._oldest = -1


def _load_host(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _encode(reply: dict[str, Any]) -> bytes:
    """The reply's frame body; a reply that cannot be encoded becomes a failed evaluation."""
    import orjson

    from sandbox.runner import SANDBOX_FAILURE

    try:
        return orjson.dumps(reply)
    except (TypeError, orjson.JSONEncodeError):
        # Text from a rule is validated where the rule produces it; this is the backstop.
        return orjson.dumps({"result": None, "logs_dropped": 0,
                             "trace": [[SANDBOX_FAILURE, "error", 0, "the evaluation's output could not be encoded", []]]})


def main(argv: list[str]) -> int:
    host_path, limits_json, progress_fd, request_fd, reply_fd, parent_pid = argv
    requests, replies = int(request_fd), int(reply_fd)
    import orjson

    from sandbox.limits import Limits

    limits = Limits.from_plain(orjson.loads(limits_json))
    _cap_resources(limits.memory_mb)
    progress = mmap.mmap(int(progress_fd), PROGRESS_BYTES)
    os.close(int(progress_fd))

    from sandbox.errors import CompileFailed
    from sandbox.guards import Guards
    from sandbox.programs import ProgramSet, ProgramSource, compile_set
    from sandbox.runner import Program, prepare_programs, run_programs

    import _strptime  # noqa: F401  datetime.strptime imports it lazily, after privileges are gone
    import ctypes  # noqa: F401  for _die_with_parent, while the library can still be read

    host = _load_host(host_path)
    guards = Guards(host.access, limits)
    loaded: dict[str, tuple[Program, ...]] = {}
    _drop_privileges()
    _die_with_parent(int(parent_pid))
    gc.freeze()
    run_cpu_s = (limits.pipeline_timeout_ms + limits.kill_grace_ms) / 1000 + 1
    backstop = CpuBackstop()
    collector = GarbageCollector()

    def set_progress(index: int, code: int) -> None:
        progress[index] = code

    while True:
        frame = read_frame(requests)
        if frame is None:
            return 0
        progress[RECEIVED_INDEX] = (progress[RECEIVED_INDEX] + 1) % 256
        request = orjson.loads(frame)
        if request["op"] == "load":
            backstop.before(5 + len(request["sources"]) * (limits.rule_timeout_ms + 20) / 1000)
            sources = tuple(ProgramSource(s["name"], s["source"], s["meta"]) for s in request["sources"])
            try:
                programs = prepare_programs(compile_set(ProgramSet(request["version"], sources), limits), guards)
            except CompileFailed as exc:
                write_frame(replies, orjson.dumps({"errors": list(exc.errors)}))
                continue
            loaded = {request["version"]: programs}
            reply: dict[str, Any] = {"ok": True}
            # The loaded programs live until the next load: keep them out of the collections
            # after every evaluation, and let the previous version's be collected now.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        else:
            backstop.before(run_cpu_s)
            programs = loaded[request["version"]]
            progress[: len(programs)] = bytes(len(programs))
            report = run_programs(programs, host, guards, request["payload"], progress=set_progress)
            reply = {
                "result": report.result,
                "trace": [tuple(trace) for trace in report.trace],  # positional arrays on the wire
                "logs_dropped": report.logs_dropped,
            }
        write_frame(replies, _encode(reply))
        if request["op"] == "run":
            collector.after_evaluation()  # a load collected already, before freezing its programs


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
