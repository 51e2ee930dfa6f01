"""Requests/s, latency and server CPU per request of POST /v1/evaluate (10 rules) against a bare endpoint.

Every server is a real uvicorn process tree on this machine, in the same run, loaded by the same
raw-socket client (keep-alive, fixed concurrency, varied users), in interleaved rounds:

- bare: the Starlette endpoint of bench/bare_app.py on uvicorn with uvloop and httptools, one
  worker (issue 11's baseline: the best stack a user could pick);
- floor: bare plus the ten rules as plain Python (bench/floor_app.py), the physical limit an
  evaluation on this stack can approach;
- evaluate (process), evaluate (inprocess): `python -m engine serve` of this checkout;
- with --tree PATH: the same two of another checkout, run with its own .venv (before/after
  figures from one run);
- with --workers 1,2: `serve --workers N` with process isolation and store.redis_url (several
  server processes need Redis), for the scaling figures.

Server CPU is user + system time of the server process and all its descendants (uvicorn
workers, sandbox workers), read from /proc before and after each round. Prints the median of
the rounds, the ratios of issue 11's table with their targets, and the scaling figures.
Nothing is asserted: the machine is shared, compare lines of one run.

    .venv/bin/python bench/http_evaluate.py [--seconds 3] [--rounds 3] [--connections 16]
        [--tree ../before] [--workers 1,2] [--redis-url redis://127.0.0.1:6379/7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rules import PIPELINE  # noqa: E402
from engine.demo_geoip import write_demo_database  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdef"
SIGNING_KEY = "bench-signing-key-0123456789abcdef0123456789"
USERS_PER_CONNECTION = 64
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
USER = {"user_id": "u-1042", "username": "alice", "email": "alice@example.com", "email_verified": True,
        "name": "Alice Example", "logins_count": 42, "created_at": "2024-03-01T09:00:00+00:00",
        "last_login": "2026-11-20T08:00:00+00:00", "app_metadata": {"roles": ["staff"], "plan": "pro"},
        "user_metadata": {"locale": "en-GB"}, "factors": ["otp", "sms"], "groups": ["staff", "eu"],
        "known_device_ids": ["d-77", "d-78"], "known_countries": ["US", "DE"]}
CONTEXT = {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
           "device_id": "d-77", "client_id": "web-app", "client_name": "Example Web",
           "hostname": "login.example.com", "action": "login"}
BODY = orjson.dumps({"user": USER, "context": CONTEXT})
TARGETS = {"evaluate (process)": 0.35, "evaluate (inprocess)": 0.40}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int, env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "server died")
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (the children of each of their threads)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:  # ended meanwhile
            continue
    return found


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process (all its threads), in clock ticks; 0 once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def tree_cpu(pid: int) -> dict[int, int]:
    return {member: cpu_ticks(member) for member in descendants(pid)}


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU of the live tree between two samples (a process that ended in between is not counted)."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLOCK_TICKS


def request_bytes(port: int, body: bytes) -> bytes:
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def connection_requests(port: int, connection: int) -> list[bytes]:
    """The requests of one connection: USERS_PER_CONNECTION users of its own, in turn. Users are
    never shared between connections, so the engine's fair share (one evaluation at a time per
    user, sandbox.max_concurrent_per_user) lets every request through, as with real traffic."""
    return [request_bytes(port, orjson.dumps({"user": {**USER, "user_id": f"u-{connection}-{index}"},
                                              "context": CONTEXT}))
            for index in range(USERS_PER_CONNECTION)]


@dataclass
class Round:
    rps: float
    latencies: list[float]
    failures: Counter[int]
    requests: int
    cpu_seconds: float  # of the server's whole process tree
    client_cpu_seconds: float


async def connection_loop(port: int, requests: Sequence[bytes], stop_at: float, latencies: list[float],
                          failures: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        writer.write(requests[sent % len(requests)])
        sent += 1
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            failures[status] += 1
    writer.close()


async def timed_round(port: int, seconds: float, connections: int, server_pid: int | None = None) -> Round:
    latencies: list[float] = []
    failures: Counter[int] = Counter()
    requests = [connection_requests(port, index) for index in range(connections)]
    before = tree_cpu(server_pid) if server_pid else {}
    client_before = time.process_time()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(connection_loop(port, requests[index], stop_at, latencies, failures)
                           for index in range(connections)))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    cpu = cpu_seconds_between(before, tree_cpu(server_pid)) if server_pid else 0.0
    return Round(len(latencies) / elapsed, latencies, failures, len(latencies), cpu, client_cpu)


def run(coroutine_factory: Callable[[], Coroutine[Any, Any, Round]]) -> Round:
    """One round on uvloop when it is there: the load generator shares the CPUs with the servers,
    and the cheaper its loop, the more of them the servers get (the same for every server)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine_factory())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine_factory())


async def load(port: int, seconds: float, connections: int) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms, non-200 count of one load (bench/reload_load.py's interface)."""
    result = await timed_round(port, seconds, connections)
    latencies = sorted(result.latencies)
    return (result.rps, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3,
            sum(result.failures.values()))


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[min(int(len(sorted_values) * fraction), len(sorted_values) - 1)]


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        self.process = start([*self.command, "--port", str(self.port)], self.port, self.env, self.cwd)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def engine_env(rules: Path, database: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MFA_RULES__DIR": str(rules),
            "MFA_GEOIP__DATABASE": str(database), "MFA_API__KEYS": API_KEY,
            "MFA_GEOIP__ALLOW_NETWORKS": "203.0.113.0/24,198.51.100.0/24", "MFA_LOGGING__LEVEL": "WARNING"}


def bench_env(scratch: Path) -> dict[str, str]:
    """An engine's environment on the ten bench rules and the demo GeoIP database, written in `scratch`."""
    rules = Path(scratch, "rules")
    rules.mkdir()
    for rule_id, source in PIPELINE.items():
        (rules / f"{rule_id}.py").write_text(source, encoding="utf-8")
    database = Path(scratch, "geo.mmdb")
    write_demo_database(database)
    return engine_env(rules, database)


def servers_of(args: argparse.Namespace, scratch: Path) -> list[Server]:
    env = bench_env(Path(scratch))
    rules = Path(env["MFA_RULES__DIR"])
    servers = [Server("bare", [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
                               "--log-level", "warning", "--no-access-log", "--host", "127.0.0.1",
                               "bench.bare_app:app"], {"PATH": env["PATH"]}, ROOT),
               Server("floor (bare + 10 plain rules)", [sys.executable, "-m", "uvicorn", "--loop", "uvloop",
                                                        "--http", "httptools", "--log-level", "warning",
                                                        "--no-access-log", "--host", "127.0.0.1",
                                                        "bench.floor_app:app"], {"PATH": env["PATH"]}, ROOT)]
    trees = [("", ROOT, sys.executable)]
    if args.tree:
        tree = Path(args.tree).resolve()
        label = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True).stdout.strip() or tree.name
        trees.append((f"{label}: ", tree, str(tree / ".venv" / "bin" / "python")))
    for prefix, tree, python in trees:
        for isolation in ("process", "inprocess"):
            # Each tree its own folder: the engine writes its history (.versions.json) there.
            folder = Path(scratch, f"rules-{len(servers)}")
            folder.mkdir()
            for path in rules.glob("*.py"):
                (folder / path.name).write_text(path.read_text())
            servers.append(Server(f"{prefix}evaluate ({isolation})", [python, "-m", "engine", "serve"],
                                  env | {"MFA_RULES__DIR": str(folder), "MFA_SANDBOX__ISOLATION": isolation}, tree))
    for count in args.workers:
        folder = Path(scratch, f"rules-workers-{count}")
        folder.mkdir()
        for path in rules.glob("*.py"):
            (folder / path.name).write_text(path.read_text())
        servers.append(Server(f"process, --workers {count}", [sys.executable, "-m", "engine", "serve",
                                                               "--workers", str(count)],
                              env | {"MFA_RULES__DIR": str(folder), "MFA_SANDBOX__ISOLATION": "process",
                                     "MFA_STORE__REDIS_URL": args.redis_url,
                                     "MFA_TOKENS__SIGNING_KEY": SIGNING_KEY,
                                     "MFA_DIRECTORY__URL": f"sqlite:///{scratch}/workers-{count}.db"}, ROOT))
    return servers


def forget_redis_keys(url: str) -> None:
    """The engines' keys (decision records, the shared rule set) in the bench's Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter("mfa:*"):
            client.delete(key)
    finally:
        client.close()


def report(args: argparse.Namespace, results: dict[str, list[Round]]) -> None:
    print(f"{args.rounds} rounds x {args.seconds:g} s, {args.connections} keep-alive connections, "
          f"{USERS_PER_CONNECTION} users per connection, body {len(BODY)} bytes, {len(PIPELINE)} rules; "
          f"req/s: median of rounds; latency over all requests; CPU: server process tree")
    print(f"{'server':<32}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-200':>8}{'vs bare':>8}"
          f"{'CPU us/req':>11}{'CPU %':>7}{'client us/req':>14}")
    bare = [r.rps for r in results["bare"]]
    for name, rounds in results.items():
        latencies = sorted(latency for r in rounds for latency in r.latencies)
        requests = sum(r.requests for r in rounds)
        cpu = sum(r.cpu_seconds for r in rounds)
        print(f"{name:<32}{statistics.median(r.rps for r in rounds):>8.0f}"
              f"{percentile(latencies, 0.5) * 1e3:>8.2f}{percentile(latencies, 0.99) * 1e3:>8.2f}"
              f"{sum(sum(r.failures.values()) for r in rounds):>8}{paired_ratio(rounds, bare):>8.2f}"
              f"{cpu / requests * 1e6:>11.0f}{cpu / (args.seconds * len(rounds)) * 100:>7.0f}"
              f"{sum(r.client_cpu_seconds for r in rounds) / requests * 1e6:>14.0f}")
        failures = sum((r.failures for r in rounds), Counter())
        if failures:
            print(f"{'':<32}non-200 by status: {dict(failures)}")
    print("\nissue 11 (req/s of the round divided by bare's of the same round, median over rounds):")
    for name, rounds in results.items():
        if name.startswith("floor"):
            print(f"  {name + ' / bare':<44}{paired_ratio(rounds, bare):>6.2f}   (the physical limit)")
            continue
        target = next((value for suffix, value in TARGETS.items() if name.endswith(suffix)), None)
        if target is not None:
            print(f"  {name + ' / bare':<44}{paired_ratio(rounds, bare):>6.2f}   target >= {target:.2f}")
    scaling = {name: rounds for name, rounds in results.items() if name.startswith("process, --workers")}
    if scaling:
        print(f"\nscaling (process isolation, store on Redis, sandbox.workers 2 per server process; "
              f"{os.cpu_count()} CPUs):")
        for name, rounds in scaling.items():
            cpu_us = sum(r.cpu_seconds for r in rounds) / sum(r.requests for r in rounds) * 1e6
            print(f"  {name:<28}{statistics.median(r.rps for r in rounds):>8.0f} req/s"
                  f"{cpu_us:>8.0f} CPU us per evaluation")


def paired_ratio(rounds: Sequence[Round], bare: Sequence[float]) -> float:
    return statistics.median(r.rps / b for r, b in zip(rounds, bare, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tree", help="another checkout (with its own .venv) to measure in the same rounds")
    parser.add_argument("--workers", type=lambda text: [int(n) for n in text.split(",")], default=[],
                        help="a scaling run: serve --workers N for each N (e.g. 1,2); needs --redis-url")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7",
                        help="for --workers; the engines' mfa:* keys there are deleted afterwards")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        servers = servers_of(args, Path(scratch))
        try:
            for server in servers:
                server.start()
            for server in servers:  # warm up: worker pools load the rule set, caches fill
                run(lambda: timed_round(server.port, 0.5, args.connections))
            results: dict[str, list[Round]] = {server.name: [] for server in servers}
            for _ in range(args.rounds):
                for server in servers:
                    assert server.process is not None
                    pid = server.process.pid
                    results[server.name].append(run(lambda: timed_round(server.port, args.seconds,
                                                                        args.connections, pid)))
        finally:
            for server in servers:
                server.stop()
            if args.workers:
                forget_redis_keys(args.redis_url)
    report(args, results)


if __name__ == "__main__":
    main()
