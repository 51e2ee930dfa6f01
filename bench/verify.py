"""Requests/s and latency of POST /v1/mfa/verify, with the in-process and the Redis challenge store,
against a bare Starlette JSON endpoint; and the Redis round trips one verify costs.

    .venv/bin/python bench/verify.py [--verifies 2000] [--rounds 4] [--connections 16]
                                     [--redis-url redis://127.0.0.1:6379/13] [--no-redis]
                                     [--db-dir DIR] [--profile]

Three real uvicorn processes run on this machine: the bare endpoint (bench/bare_app.py) and
the engine (`python -m engine serve`) twice, once with the in-process store and once with
store.redis_url. Both engines share one SQLite directory in a temporary folder.

Setup, not timed: users are created through the admin API, each with an imported TOTP
secret, and each engine logs its own users in once (a rule that always requires MFA), which
leaves one fresh challenge per user in that engine's store. Every verify uses its own user:
TOTP replay protection (durable, in the shared directory) accepts one code per factor per
30 s step, so one user per verify is the only way to send thousands of correct codes in a
few seconds. Codes are computed here with hmac/hashlib (RFC 6238), not with the engine's code.

Timed: the verifies only, in interleaved rounds (bare, memory, redis, bare, ...), by a
raw-socket keep-alive client at fixed concurrency. Around each Redis round the script reads
INFO stats/commandstats/cpu and reports the deltas per verify. Round trips are the requests
Redis read from its sockets (total_reads_processed): Redis 7 counts the commands a Lua script
runs in commandstats and total_commands_processed too, so those are not round trips.

Compare lines of the same run; nothing here asserts a time. Targets (DESIGN.md section 9):
MFA verify needs one Redis round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import hmac
import math
import os
import pstats
import secrets
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]

API_KEY = "bench-api-key-0123456789abcdef"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
SECRETS_KEY = base64.b64encode(bytes(range(32))).decode()
SIGNING_KEY = "bench-signing-secret-0123456789abcdef-0123456789"
PASSWORD = "bench password 0123456789"
ALWAYS_MFA_RULE = '''"""Every login needs a second factor."""


def rule(user, context):
    context.multifactor.enable()
'''
IP = "203.0.113.7"
CLIENT_ID = "bench-client"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# RFC 6238 TOTP (SHA-1, 6 digits, 30 s), written from the RFC as in tests/engine/login_harness.py,
# not from the engine's code path.
def totp(secret_base32: str, at: float, digits: int = 6) -> str:
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    binary = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    profile: Path | None = None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


def start_server(name: str, command: list[str], env: dict[str, str], scratch: Path,
                 profile: Path | None = None, cwd: Path = ROOT) -> Server:
    port = free_port()
    log_path = scratch / f"{name.replace(' ', '-').strip('()')}.log"
    log = log_path.open("wb")
    process = subprocess.Popen([*command, "--port", str(port)], cwd=cwd, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Server(name, port, process, log, profile)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    log.close()
    raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')}")


# A raw HTTP/1.1 client: keep-alive connections, one request in flight per connection.


def http_request(port: int, method: str, path: str, body: Any, bearer: str) -> bytes:
    payload = orjson.dumps(body)
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {bearer}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(head[9:12]), await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def exchange_all(port: int, requests: Sequence[bytes], connections: int) -> list[tuple[int, bytes]]:
    """Every request's (status, body), in order, sent over `connections` keep-alive connections."""
    replies: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    indexes = iter(range(len(requests)))  # shared: each connection takes the next request

    async def worker() -> None:
        connection = await Connection.open(port)
        for index in indexes:
            replies[index] = await connection.send(requests[index])
        await connection.close()

    await asyncio.gather(*(worker() for _ in range(min(connections, len(requests)))))
    return replies


@dataclass
class Round:
    requests: int
    seconds: float
    latencies: list[float]
    failures: collections.Counter[int]
    cpu_seconds: float  # the server's CPU time during the round

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def timed_round(server: Server, requests: Sequence[bytes], connections: int, expect: bytes) -> Round:
    """Sends `requests` at fixed concurrency. A reply counts as a failure unless it is a 200
    whose body contains `expect` (failures are recorded by status; 200 without it as 0)."""
    pool = [await Connection.open(server.port) for _ in range(min(connections, len(requests)))]
    latencies: list[float] = []
    failures: collections.Counter[int] = collections.Counter()
    queue = iter(requests)

    async def worker(connection: Connection) -> None:
        for request in queue:
            started = time.perf_counter()
            status, body = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            if status != 200 or expect not in body:
                failures[status if status != 200 else 0] += 1

    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in pool))
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    for connection in pool:
        await connection.close()
    return Round(len(requests), elapsed, latencies, failures, cpu)


# Setup through the API (not timed)


@dataclass
class BenchUser:
    username: str
    secret: str  # base32, as imported


@dataclass
class Pending:
    """A challenge left by a login, waiting for its verify."""

    user: BenchUser
    challenge_id: str
    factor_id: str


def create_users(server: Server, count: int, connections: int, prefix: str = "bench") -> list[BenchUser]:
    users = [BenchUser(f"{prefix}-{index:05d}", base64.b32encode(secrets.token_bytes(20)).decode())
             for index in range(count)]
    created = asyncio.run(exchange_all(server.port, [
        http_request(server.port, "POST", "/admin/users", {"username": user.username, "password": PASSWORD},
                     ADMIN_TOKEN) for user in users], connections))
    user_ids = []
    for status, body in created:
        if status != 201:
            raise RuntimeError(f"POST /admin/users answered {status}: {body[:300]!r}")
        user_ids.append(orjson.loads(body)["user_id"])
    factors = asyncio.run(exchange_all(server.port, [
        http_request(server.port, "POST", f"/admin/users/{user_id}/factors", {"type": "otp", "secret": user.secret},
                     ADMIN_TOKEN) for user, user_id in zip(users, user_ids, strict=True)], connections))
    for status, body in factors:
        if status != 201:
            raise RuntimeError(f"POST /admin/users/{{id}}/factors answered {status}: {body[:300]!r}")
    return users


def log_in(server: Server, users: Sequence[BenchUser], connections: int) -> list[Pending]:
    replies = asyncio.run(exchange_all(server.port, [
        http_request(server.port, "POST", "/v1/login", {
            "username": user.username, "password": PASSWORD, "client_id": CLIENT_ID,
            "context": {"ip": IP, "device_id": f"device-{user.username}", "user_agent": "bench/verify"}}, API_KEY)
        for user in users], connections))
    pending = []
    for user, (status, body) in zip(users, replies, strict=True):
        reply = orjson.loads(body) if body else {}
        if status != 200 or reply.get("status") != "mfa_required":
            raise RuntimeError(f"{server.name}: POST /v1/login answered {status}: {body[:300]!r}")
        factor = next(f for f in reply["factors"] if f["type"] == "otp")
        pending.append(Pending(user, reply["challenge_id"], factor["id"]))
    return pending


def verify_requests(port: int, pending: Sequence[Pending]) -> list[bytes]:
    """Built just before a round: a code of the current step stays valid for the next one too
    (the engine accepts one step of drift), so a round may cross a step boundary."""
    now = time.time()
    return [http_request(port, "POST", "/v1/mfa/verify", {"challenge_id": item.challenge_id,
                                                          "factor_id": item.factor_id,
                                                          "code": totp(item.user.secret, now),
                                                          "client_id": CLIENT_ID}, API_KEY)
            for item in pending]


def chunks(items: Sequence[Pending], sizes: Sequence[int]) -> Iterator[Sequence[Pending]]:
    start = 0
    for size in sizes:
        yield items[start:start + size]
        start += size


# Redis accounting


@dataclass
class RedisDeltas:
    verifies: int = 0
    seconds: float = 0.0
    reads: int = 0
    commands: int = 0
    cpu_seconds: float = 0.0
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    usec: collections.Counter[str] = field(default_factory=collections.Counter)
    engine_connections: int = 0
    other_active_clients: set[str] = field(default_factory=set)


class RedisMeter:
    """INFO deltas around a measured window. The monitor's own traffic inside the window is
    exactly one INFO call (the opening one, counted once it finished) and one socket read
    (the closing INFO, counted when read): both are subtracted."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.own_id = int(self.client.client_id())
        self.totals = RedisDeltas()

    def snapshot(self) -> dict[str, Any]:
        return self.client.info("stats", "commandstats", "cpu")

    def measure(self, before: dict[str, Any], after: dict[str, Any], verifies: int, seconds: float) -> None:
        totals = self.totals
        totals.verifies += verifies
        totals.seconds += seconds
        totals.reads += after["total_reads_processed"] - before["total_reads_processed"] - 1
        totals.commands += after["total_commands_processed"] - before["total_commands_processed"] - 1
        totals.cpu_seconds += (after["used_cpu_sys"] + after["used_cpu_user"]
                               - before["used_cpu_sys"] - before["used_cpu_user"])
        for key, stats in after.items():
            if key.startswith("cmdstat_"):
                old = before.get(key, {"calls": 0, "usec": 0})
                totals.calls[key[8:]] += stats["calls"] - old["calls"]
                totals.usec[key[8:]] += stats["usec"] - old["usec"]
        totals.calls["info"] -= 1
        # Another client busy during the window (tests on another database, say) would add to
        # these server-wide counters: name it in the report.
        clients = self.client.client_list()
        totals.engine_connections = max(totals.engine_connections,
                                        sum(1 for c in clients if int(c["db"]) == self.db
                                            and int(c["id"]) != self.own_id))
        for client in clients:
            if int(client["id"]) != self.own_id and int(client["db"]) != self.db \
                    and int(client["idle"]) <= math.ceil(seconds):
                totals.other_active_clients.add(f"{client['addr']} db={client['db']} cmd={client['cmd']}")

    def flush(self) -> None:
        self.client.flushdb()

    def close(self) -> None:
        self.client.close()


# Main


def engine_env(scratch: Path, db_dir: Path, redis_url: str) -> dict[str, str]:
    rules = scratch / "rules"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MFA_RULES__DIR": str(rules),
        "MFA_API__KEYS": API_KEY,
        "MFA_ADMIN__TOKEN": ADMIN_TOKEN,
        "MFA_SECRETS__KEY": SECRETS_KEY,
        "MFA_TOKENS__SIGNING_KEY": SIGNING_KEY,
        "MFA_DIRECTORY__URL": f"sqlite:///{db_dir / 'mfa.db'}",
        "MFA_STORE__REDIS_URL": redis_url,
        "MFA_LOGIN__PASSWORD_TIME_COST": "1",
        "MFA_LOGIN__PASSWORD_MEMORY_KIB": "8192",
        "MFA_LOGIN__PASSWORD_PARALLELISM": "1",
        "MFA_SANDBOX__ISOLATION": "inprocess",
        "MFA_LOGGING__LEVEL": "WARNING",
    }


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[min(int(len(sorted_values) * fraction), len(sorted_values) - 1)]


def print_profile(server: Server, limit: int) -> None:
    assert server.profile is not None
    if not server.profile.exists():
        print(f"\n{server.name}: no profile was written")
        return
    print(f"\ncProfile of {server.name}, event-loop thread, timed rounds only (cProfile slows it down):")
    stats = pstats.Stats(str(server.profile))
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verifies", type=int, default=2000, help="timed verifies per store (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=160, help="untimed verifies per store first (default 160)")
    parser.add_argument("--bare-requests", type=int, default=3000, help="bare requests per round (default 3000)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13",
                        help="a database this script may flush, before and after")
    parser.add_argument("--no-redis", action="store_true", help="only the in-process store")
    parser.add_argument("--db-dir", help="folder for the SQLite directory, e.g. on tmpfs (its mfa.db* files "
                        "are replaced; default: the temporary folder)")
    parser.add_argument("--profile", action="store_true",
                        help="run the engines under cProfile during the timed rounds and print the top functions")
    args = parser.parse_args()

    meter = None
    if not args.no_redis:
        try:
            meter = RedisMeter(args.redis_url)
        except (redis.RedisError, OSError) as exc:
            sys.exit(f"Redis at {args.redis_url} is unreachable ({exc}); start it or pass --no-redis")
        meter.flush()

    per_round = [args.verifies // args.rounds + (1 if index < args.verifies % args.rounds else 0)
                 for index in range(args.rounds)]
    setup_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "rules").mkdir()
        (scratch / "rules" / "10-always-mfa.py").write_text(ALWAYS_MFA_RULE, encoding="utf-8")
        db_dir = Path(args.db_dir) if args.db_dir else scratch
        db_dir.mkdir(parents=True, exist_ok=True)
        for leftover in db_dir.glob("mfa.db*"):
            leftover.unlink()
        servers: dict[str, Server] = {}
        try:
            # Issue 11's baseline: the best stack a user could pick, uvicorn on uvloop and httptools.
            servers["bare"] = start_server("bare", [
                sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log", "--host", "127.0.0.1", "bench.bare_app:app"],
                {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, scratch)
            stores = {"verify (memory store)": ""}
            if meter is not None:
                stores["verify (redis store)"] = args.redis_url
            for name, redis_url in stores.items():
                profile = scratch / f"{name.split('(')[1].split()[0]}.prof" if args.profile else None
                entry = ([sys.executable, str(ROOT / "bench" / "profiled_serve.py"), str(profile)] if profile
                         else [sys.executable, "-m", "engine"])
                servers[name] = start_server(name, [*entry, "serve", "--host", "127.0.0.1"],
                                             engine_env(scratch, db_dir, redis_url), scratch, profile)
            engines = [name for name in servers if name != "bare"]

            # Users of their own per engine: the engines share the directory, whose TOTP replay
            # protection is durable, so a user's code passed on one engine is refused on the other.
            per_engine = args.warmup + args.verifies
            users = create_users(servers[engines[0]], per_engine * len(engines), args.connections)
            created_at = time.perf_counter()
            pending = {name: log_in(servers[name], users[index * per_engine:(index + 1) * per_engine],
                                    args.connections) for index, name in enumerate(engines)}
            logged_in_at = time.perf_counter()

            for name in engines:  # warm-up: connections, the Redis pool and its scripts, caches
                warm = asyncio.run(timed_round(servers[name], verify_requests(servers[name].port,
                                                                              pending[name][:args.warmup]),
                                               args.connections, b'"authenticated"'))
                if warm.failures:
                    raise RuntimeError(f"{name}: warm-up verifies failed: {dict(warm.failures)}; see the logs in "
                                       f"{scratch}")
            bare_bodies = verify_requests(servers["bare"].port, pending[engines[0]][:200])
            bare_requests = [bare_bodies[index % len(bare_bodies)] for index in range(args.bare_requests)]
            asyncio.run(timed_round(servers["bare"], bare_requests, args.connections, b'"authenticated"'))
            setup_seconds = time.perf_counter() - setup_started

            results: dict[str, list[Round]] = {name: [] for name in servers}
            batches = {name: list(chunks(pending[name][args.warmup:], per_round)) for name in engines}
            for round_index in range(args.rounds):
                for name, server in servers.items():
                    if name == "bare":
                        results[name].append(asyncio.run(timed_round(server, bare_requests, args.connections,
                                                                     b'"authenticated"')))
                        continue
                    requests = verify_requests(server.port, batches[name][round_index])
                    if server.profile:
                        server.signal(signal.SIGUSR1)
                        time.sleep(0.05)
                    before = meter.snapshot() if meter and "redis" in name else None
                    result = asyncio.run(timed_round(server, requests, args.connections, b'"authenticated"'))
                    if meter and before is not None:
                        meter.measure(before, meter.snapshot(), result.requests, result.seconds)
                    if server.profile:
                        server.signal(signal.SIGUSR2)
                        time.sleep(0.05)
                    results[name].append(result)
            if args.profile:
                time.sleep(0.5)  # the last SIGUSR2 writes the file
        finally:
            for server in servers.values():
                server.stop()
            if meter is not None:
                meter.flush()

        print(f"setup (not timed): {len(users)} users with a TOTP factor via the admin API in "
              f"{created_at - setup_started:.1f} s, {per_engine} logins per store in "
              f"{logged_in_at - created_at:.1f} s; whole setup and warm-up {setup_seconds:.1f} s")
        print(f"SQLite directory in {db_dir} (filesystem of {os.path.realpath(db_dir)}), "
              f"shared by the engines; sandbox inprocess; argon2id t=1 m=8 MiB p=1 (setup only)")
        print(f"{args.rounds} interleaved rounds, {args.connections} keep-alive connections; verify: "
              f"{args.verifies} timed verifies per store ({'/'.join(map(str, per_round))} per round, each a fresh "
              f"challenge of its own user), after {args.warmup} warm-up verifies; bare: {args.bare_requests} "
              f"requests per round")
        print("req/s: median of the rounds; p50/p99: over all timed requests; server CPU: the server process's "
              "user+system time per request\n")
        print(f"{'server':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'vs bare':>9}"
              f"{'CPU us/req':>12}{'CPU %':>8}")
        bare_rps = statistics.median(r.rps for r in results["bare"])
        for name, rounds in results.items():
            rps = statistics.median(r.rps for r in rounds)
            latencies = sorted(latency for r in rounds for latency in r.latencies)
            failures: collections.Counter[int] = sum((r.failures for r in rounds), collections.Counter())
            sent = sum(r.requests for r in rounds)
            seconds = sum(r.seconds for r in rounds)
            cpu = sum(r.cpu_seconds for r in rounds)
            print(f"{name:<24}{rps:>9.0f}{percentile(latencies, 0.5) * 1e3:>9.2f}"
                  f"{percentile(latencies, 0.99) * 1e3:>9.2f}{sum(failures.values()):>9}{rps / bare_rps:>9.2f}"
                  f"{cpu / sent * 1e6:>12.0f}{cpu / seconds * 100:>8.0f}")
            if failures:
                print(f"{'':<24}failures by status (0: a 200 without \"authenticated\"): {dict(failures)}")
        print("rounds (req/s): " + "; ".join(f"{name} " + " ".join(f"{r.rps:.0f}" for r in rounds)
                                             for name, rounds in results.items()))
        if "verify (redis store)" in results:  # issue 11's row, paired by round: each round's bare
            ratio = statistics.median(r.rps / b.rps for r, b in zip(results["verify (redis store)"],
                                                                    results["bare"], strict=True))
            print(f"issue 11: verify (redis store) / bare (median of per-round ratios) {ratio:.2f}   target >= 0.25")

        if meter is not None:
            totals = meter.totals
            n = totals.verifies
            print(f"\nRedis during the {args.rounds} timed rounds of verify (redis store): {n} verifies, "
                  f"{totals.engine_connections} engine connections to db {meter.db}")
            print(f"  round trips per verify (requests Redis read, total_reads_processed): {totals.reads / n:.3f}"
                  f"   target: 1")
            print(f"  commands per verify (total_commands_processed, including those run inside Lua): "
                  f"{totals.commands / n:.3f}")
            print(f"  Redis CPU per verify (used_cpu_user+sys): {totals.cpu_seconds / n * 1e6:.0f} us")
            print("  per command (INFO commandstats; EVALSHA/EVAL/MULTI/EXEC and commands outside scripts are "
                  "round trips, the rest run inside the Lua script):")
            for command, calls in sorted(totals.calls.items(), key=lambda item: -item[1]):
                if calls:
                    print(f"    {command:<16}{calls / n:>8.3f} per verify{totals.usec[command] / calls:>9.1f} "
                          f"us per call")
            if totals.other_active_clients:
                print("  WARNING: other Redis clients were active during the window; the server-wide counters "
                      "above may include their commands:")
                for client in sorted(totals.other_active_clients):
                    print(f"    {client}")
            meter.close()

        if args.profile:
            for name in engines:
                print_profile(servers[name], 25)


if __name__ == "__main__":
    main()
