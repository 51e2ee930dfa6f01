"""One CPU shared by a serving process's event-loop thread and its sandbox workers (sandbox.cpu_affinity: loop).

A worker round trip is two pipe wake-ups. Between two CPUs each one goes through an idle CPU
waking up (a raw echo round trip: 55-85 us); on one CPU it is a context switch (8-18 us).
The kernel's own placement does not keep them together: a task woken while its CPU is busy
goes to an idle one, so the loop follows the worker's reply onto the other CPU. Pinning
the loop thread and its workers to one CPU does.

Only the loop thread is pinned (Linux affinity is per thread), but threads it creates later
inherit its mask: executors that do heavy work (argon2's) reset theirs with release_thread.
Several serving processes (`--workers N`) each claim a CPU of their own, while there are
free ones: the claim is an abstract unix socket named after the CPU, which the kernel
releases when the process exits, so no file is left behind and no crash leaks a claim.
"""

from __future__ import annotations

import ctypes
import os
import socket

# The CPUs this process may use, read when the sandbox is imported, before any pinning.
# (Affinity is a Linux call, as the worker's memfd and prctl are; elsewhere nothing is pinned.)
_HAS_AFFINITY = hasattr(os, "sched_setaffinity")
PROCESS_CPUS = frozenset(os.sched_getaffinity(0) if _HAS_AFFINITY else range(os.cpu_count() or 1))

_libc = ctypes.CDLL(None, use_errno=True)


def current_cpu() -> int:
    """The CPU the calling thread runs on now (sched_getcpu(3))."""
    return int(_libc.sched_getcpu())


def release_thread() -> None:
    """Let the calling thread run on any of the process's CPUs again; a ThreadPoolExecutor
    initializer, for threads created from a pinned event-loop thread."""
    if _HAS_AFFINITY:
        os.sched_setaffinity(0, PROCESS_CPUS)


class CpuClaim:
    """The CPU this process's loop and workers run on, held until close() or the process ends."""

    def __init__(self, cpu: int, holder: socket.socket | None, *, pinned_here: bool) -> None:
        self.cpu = cpu
        self._holder = holder
        self._pinned_here = pinned_here

    @classmethod
    def pin_loop_thread(cls, namespace: str = "mfa-engine") -> CpuClaim:
        """Pin the calling thread (the event loop's) to a CPU no sibling process holds, trying
        the one it runs on first; to that one when every CPU is held. A thread already pinned
        to one CPU (another pool on this loop, `taskset -c`) keeps it."""
        pinned = os.sched_getaffinity(0)
        if len(pinned) == 1:
            return cls(next(iter(pinned)), None, pinned_here=False)
        cpus = sorted(pinned)
        here = current_cpu()
        first = cpus.index(here) if here in cpus else 0
        claim = cls(cpus[first], None, pinned_here=True)
        for offset in range(len(cpus)):
            cpu = cpus[(first + offset) % len(cpus)]
            holder = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                holder.bind(f"\0{namespace}-{os.getuid()}-cpu-{cpu}")
            except OSError:
                holder.close()
                continue
            claim = cls(cpu, holder, pinned_here=True)
            break
        os.sched_setaffinity(0, {claim.cpu})
        return claim

    def pin(self, pid: int) -> None:
        os.sched_setaffinity(pid, {self.cpu})

    def close(self) -> None:
        """On the loop thread: give the CPU back, and the thread its CPUs if this claim pinned it."""
        if self._holder is not None:
            self._holder.close()
            self._holder = None
        if self._pinned_here:
            release_thread()
            self._pinned_here = False
