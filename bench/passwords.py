"""The cost of argon2id password hashing through engine.passwords.PasswordHasher, per parameter set.

    .venv/bin/python bench/passwords.py [--repeat 15]      # from the repository root; about 30 s

For the configured default (login.password_time_cost / password_memory_kib /
password_parallelism, read from engine.config.LoginSettings) and two cheaper alternatives,
it prints the median wall time of one hash, one verify of the right password, one verify of
a wrong password and one verify for an unknown user (`encoded=None`: the engine verifies
against a dummy hash so that unknown users cost the same), each awaited alone through the
hasher's executor, as a login does, the four kinds in turn. CPU ms per verify is the
process's CPU time (argon2 runs one thread per lane, so it can exceed the wall time);
logins/s per core is 1000 / that.

Then 4 x CPU-count verifies at once: the verifies/s this machine sustains and the longest
stall of a 1 ms ticker on the event loop meanwhile (hashing must run off the loop,
DESIGN.md section 9), once on the event loop's default executor (what the engine uses today)
and once on a dedicated executor of CPUs // parallelism threads (PasswordHasher's `executor=`).

Compare lines of the same run; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import LoginSettings  # noqa: E402
from engine.passwords import PasswordHasher  # noqa: E402

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Parameters:
    label: str
    time_cost: int
    memory_kib: int
    parallelism: int

    def describe(self) -> str:
        return f"t={self.time_cost} m={self.memory_kib // 1024} MiB p={self.parallelism}"


DEFAULTS = LoginSettings()
PARAMETER_SETS = [
    Parameters("configured default", DEFAULTS.password_time_cost, DEFAULTS.password_memory_kib,
               DEFAULTS.password_parallelism),
    Parameters("OWASP minimum", 2, 19_456, 1),
    Parameters("tests and bench setup", 1, 8_192, 1),
]


async def timed(calls: dict[str, Callable[[], Awaitable[object]]], repeat: int) -> dict[str, tuple[float, float]]:
    """Median wall ms and mean process CPU ms per call of each kind, `repeat` awaited calls each,
    one at a time and in turn (hash, verify, wrong, ...), so a slow phase of the machine hits all kinds alike."""
    walls: dict[str, list[float]] = {kind: [] for kind in calls}
    cpu: dict[str, float] = dict.fromkeys(calls, 0.0)
    for _ in range(repeat):
        for kind, call in calls.items():
            cpu_started = time.process_time()
            started = time.perf_counter()
            await call()
            walls[kind].append(time.perf_counter() - started)
            cpu[kind] += time.process_time() - cpu_started
    return {kind: (statistics.median(walls[kind]) * 1e3, cpu[kind] / repeat * 1e3) for kind in calls}


async def concurrent(hasher: PasswordHasher, encoded: str, count: int) -> tuple[float, float]:
    """Verifies/s with `count` verifies in flight at once, and the longest event-loop stall meanwhile (ms)."""
    stalls = [0.0]
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append(time.perf_counter() - before - 0.001)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    results = await asyncio.gather(*(hasher.verify(encoded, PASSWORD) for _ in range(count)))
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    assert all(results)
    return count / elapsed, max(stalls) * 1e3


async def measure(parameters: Parameters, repeat: int) -> list[str]:
    hasher = PasswordHasher(parameters.time_cost, parameters.memory_kib, parameters.parallelism)
    encoded = await hasher.hash(PASSWORD)
    assert await hasher.verify(encoded, PASSWORD)
    await hasher.verify(None, PASSWORD)  # makes the dummy hash once, as the first unknown login would
    times = await timed({
        "hash": lambda: hasher.hash(PASSWORD),
        "verify": lambda: hasher.verify(encoded, PASSWORD),
        "wrong": lambda: hasher.verify(encoded, "wrong " + PASSWORD),
        "unknown": lambda: hasher.verify(None, PASSWORD),
    }, repeat)
    hash_ms, verify_ms, wrong_ms, unknown_ms = (times[kind][0] for kind in ("hash", "verify", "wrong", "unknown"))
    verify_cpu_ms = times["verify"][1]
    in_flight = 4 * (os.cpu_count() or 1)
    per_second, stall_ms = await concurrent(hasher, encoded, in_flight)
    threads = dedicated_threads(parameters)
    with ThreadPoolExecutor(threads, thread_name_prefix="argon2") as executor:
        dedicated = PasswordHasher(parameters.time_cost, parameters.memory_kib, parameters.parallelism,
                                   executor=executor)
        dedicated_per_second, dedicated_stall_ms = await concurrent(dedicated, encoded, in_flight)
    return [parameters.label, encoded.split("$")[3], f"{hash_ms:.1f}", f"{verify_ms:.1f}", f"{wrong_ms:.1f}",
            f"{unknown_ms:.1f}", f"{unknown_ms / verify_ms:.2f}", f"{verify_cpu_ms:.1f}",
            f"{1000 / verify_cpu_ms:.0f}", f"{per_second:.0f}", f"{stall_ms:.1f}", f"{dedicated_per_second:.0f}",
            f"{dedicated_stall_ms:.1f}"]


def dedicated_threads(parameters: Parameters) -> int:
    """A dedicated executor that keeps argon2's lanes within the CPUs: CPUs // parallelism, at least 1."""
    return max(1, (os.cpu_count() or 1) // parameters.parallelism)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="calls per measurement (default 15)")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    executor_threads = min(32, cores + 4)  # asyncio's default executor
    rows = [["parameters", "encoded", "hash", "verify", "wrong", "unknown", "unk/ver", "CPU/ver",
             "logins/s/core", "verifies/s", "stall", "ded. verifies/s", "ded. stall"]]
    for parameters in PARAMETER_SETS:
        rows.append(asyncio.run(measure(parameters, args.repeat)))

    print(f"argon2id via engine.passwords.PasswordHasher; {cores} CPUs; hash/verify/wrong/unknown: median wall ms "
          f"of {args.repeat} calls each, one at a time, in turn; CPU/ver: process CPU ms per verify (all argon2 "
          f"lanes); logins/s/core = 1000 / CPU/ver")
    print(f"verifies/s and stall: {4 * cores} verifies at once on the default executor ({executor_threads} threads "
          f"here), and the longest stall of a 1 ms ticker on the event loop meanwhile (ms); ded.: the same on a "
          f"dedicated executor of CPUs // parallelism threads\n")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()
    for parameters in PARAMETER_SETS:
        memory_mib = parameters.memory_kib // 1024
        threads = dedicated_threads(parameters)
        print(f"{parameters.label}: {parameters.describe()}; every hash in flight holds {memory_mib} MiB: up to "
              f"{executor_threads * memory_mib} MiB on the default executor, {threads * memory_mib} MiB on the "
              f"dedicated one ({threads} thread{'s' if threads > 1 else ''})")
    print("settings: login.password_time_cost, login.password_memory_kib, login.password_parallelism "
          "(MFA_LOGIN__PASSWORD_TIME_COST, ...)")
    print("targets (DESIGN.md section 9): hashing runs off the event loop (stall far below one verify); an unknown "
          "user costs what a known one does (unk/ver about 1.0); the cost itself is a setting, reported here")

if __name__ == "__main__":
    main()
