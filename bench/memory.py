"""RSS of the engine's processes after 1,000 evaluations and after 100,000 (issue 11: memory does not grow).

Starts `python -m engine serve` of this checkout with process isolation (sandbox.workers 2; with
--workers N, N server processes on Redis), sends POST /v1/evaluate with the ten rules of
bench/rules.py and the varied users of bench/http_evaluate.py over keep-alive connections, and
reads VmRSS (and VmHWM, the peak) of every process of the server's tree from /proc/PID/status
after the first 1,000 evaluations and after all of them. Prints both side by side; asserts
nothing. A worker replaced in between (killed at its deadline) shows as two rows.

    .venv/bin/python bench/memory.py [--evaluations 100000] [--first 1000] [--connections 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_evaluate import (  # noqa: E402
    SIGNING_KEY, Server, bench_env, connection_requests, descendants, forget_redis_keys,
)
from bench.rules import PIPELINE  # noqa: E402


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of one process, in KiB (empty once it has ended)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in lines if line.startswith(("VmRSS", "VmHWM"))}


def role(pid: int, top: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return "ended"
    if pid == top:
        return "server" if "--workers" not in command else "server (supervisor)"
    if "sandbox.worker" in command:
        return "sandbox worker"
    if "spawn_main" in command:
        return "server worker"
    if "resource_tracker" in command:
        return "resource tracker"
    return "other"


def snapshot(top: int) -> dict[int, tuple[str, dict[str, int]]]:
    return {pid: (role(pid, top), status_kib(pid)) for pid in descendants(top)}


async def send(port: int, total: int, connections: int) -> Counter[int]:
    """Send `total` evaluations over `connections` keep-alive connections; the statuses seen, counted."""
    sent = 0
    statuses: Counter[int] = Counter()

    async def connection(index: int) -> None:
        nonlocal sent
        requests = connection_requests(port, index)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while sent < total:
            writer.write(requests[sent % len(requests)])
            sent += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            status = int(head[9:12])
            statuses[status] += 1
        writer.close()

    await asyncio.gather(*(connection(index) for index in range(connections)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="server processes (more than 1 uses --redis-url)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        env = bench_env(Path(scratch)) | {"MFA_SANDBOX__ISOLATION": "process",
                                             "MFA_DIRECTORY__URL": f"sqlite:///{scratch}/mfa.db"}
        if args.workers > 1:
            env |= {"MFA_STORE__REDIS_URL": args.redis_url, "MFA_TOKENS__SIGNING_KEY": SIGNING_KEY}
        workers = ["--workers", str(args.workers)] if args.workers > 1 else []
        server = Server("engine", [sys.executable, "-m", "engine", "serve", *workers], env, ROOT)
        server.start()
        assert server.process is not None
        try:
            started = time.perf_counter()
            first_counts = asyncio.run(send(server.port, args.first, args.connections))
            first = snapshot(server.process.pid)
            rest_counts = asyncio.run(send(server.port, args.evaluations - args.first, args.connections))
            last = snapshot(server.process.pid)
            elapsed = time.perf_counter() - started
        finally:
            server.stop()
            if args.workers > 1:
                forget_redis_keys(args.redis_url)

    print(f"{args.evaluations} evaluations ({len(PIPELINE)} rules, process isolation, sandbox.workers 2, "
          f"server workers {args.workers}) in {elapsed:.0f} s over {args.connections} connections; "
          f"answers by status: {dict(first_counts + rest_counts)}")
    print(f"{'pid':>8}  {'process':<22}{'RSS after ' + str(args.first):>18}{'RSS after ' + str(args.evaluations):>19}"
          f"{'growth':>9}{'peak (HWM)':>12}")
    for pid in sorted(first.keys() | last.keys()):
        name, early = first.get(pid, last.get(pid, ("", {})))
        late = last.get(pid, ("", {}))[1]
        before = f"{early['VmRSS'] / 1024:.1f} MiB" if pid in first and "VmRSS" in early else "-"
        after = f"{late['VmRSS'] / 1024:.1f} MiB" if "VmRSS" in late else "-"
        growth = (f"{(late['VmRSS'] - early['VmRSS']) / 1024:+.1f}" if pid in first and "VmRSS" in late
                  and "VmRSS" in early else "")
        peak = f"{late.get('VmHWM', early.get('VmHWM', 0)) / 1024:.1f} MiB"
        print(f"{pid:>8}  {name:<22}{before:>18}{after:>19}{growth:>9}{peak:>12}")


if __name__ == "__main__":
    main()
