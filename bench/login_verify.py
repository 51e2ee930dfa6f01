"""Logins completed per second (POST /v1/login then POST /v1/mfa/verify) on a SQLite and on a
PostgreSQL directory, and on one and on two instances sharing PostgreSQL and Redis, in one run.

    .venv/bin/python bench/login_verify.py [--logins 600] [--rounds 3] [--connections 16]
        [--redis-url redis://127.0.0.1:6379/12] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

Real `python -m engine serve` processes on this machine, all on store.redis_url (the challenge
store several instances need) and a rule that always asks for a factor:

- sqlite: one instance, the directory a SQLite file (its writes on the directory's writer thread);
- postgresql: one instance, the directory a PostgreSQL database made for the run (dropped after);
- postgresql x2: two instances on that same database and Redis, each client connection talking
  to one of them, alternately (a load balancer's round robin).

Setup, not timed: users created through the admin API with an imported TOTP secret (one user
per login, as TOTP replay protection accepts one code per factor per 30 s step). Timed: each
connection takes the next user, logs in (mfa_required), verifies the code: one completed login
is those two requests. argon2 runs with its cheapest settings (t=1, 8 MiB): at the defaults
(t=3, 64 MiB) the password hash alone is tens of ms of CPU and hides the directory.

Prints completed logins/s (median of the rounds), p50/p99 of a whole login, and the CPU of the
engine processes per login (server plus its threads; PostgreSQL's own CPU is not in it). Compare
lines of one run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_evaluate import forget_redis_keys  # noqa: E402
from bench.verify import (  # noqa: E402
    ALWAYS_MFA_RULE, API_KEY, CLIENT_ID, IP, PASSWORD, BenchUser, Connection, Server, create_users, engine_env,
    http_request, percentile, start_server, totp,
)


@dataclass
class Setup:
    name: str
    servers: list[Server]
    users: list[BenchUser]


@dataclass
class Round:
    logins: int
    seconds: float
    latencies: list[float]
    failures: Counter[str]
    cpu_seconds: float


async def login_and_verify(connection: Connection, port: int, user: BenchUser) -> str | None:
    """None when the login completed, else what went wrong."""
    status, body = await connection.send(http_request(port, "POST", "/v1/login", {
        "username": user.username, "password": PASSWORD, "client_id": CLIENT_ID,
        "context": {"ip": IP, "device_id": f"device-{user.username}"}}, API_KEY))
    reply = orjson.loads(body) if body else {}
    if status != 200 or reply.get("status") != "mfa_required":
        return f"login {status}"
    factor = next(f for f in reply["factors"] if f["type"] == "otp")
    status, body = await connection.send(http_request(port, "POST", "/v1/mfa/verify", {
        "challenge_id": reply["challenge_id"], "factor_id": factor["id"], "code": totp(user.secret, time.time()),
        "client_id": CLIENT_ID}, API_KEY))
    return None if status == 200 and b'"authenticated"' in body else f"verify {status}"


async def timed_round(setup: Setup, users: Sequence[BenchUser], connections: int) -> Round:
    ports = [server.port for server in setup.servers]
    pool = [(await Connection.open(ports[index % len(ports)]), ports[index % len(ports)])
            for index in range(connections)]
    queue = iter(users)
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def worker(connection: Connection, port: int) -> None:
        for user in queue:
            started = time.perf_counter()
            failure = await login_and_verify(connection, port, user)
            latencies.append(time.perf_counter() - started)
            if failure:
                failures[failure] += 1

    cpu_before = sum(server.cpu_seconds() for server in setup.servers)
    started = time.perf_counter()
    await asyncio.gather(*(worker(connection, port) for connection, port in pool))
    elapsed = time.perf_counter() - started
    cpu = sum(server.cpu_seconds() for server in setup.servers) - cpu_before
    for connection, _ in pool:
        await connection.close()
    return Round(len(users), elapsed, latencies, failures, cpu)


def make_database(admin_url: str) -> str:
    name = f"mfa_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=600, help="completed logins per round and setup")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                        help="the engines' mfa:* keys there are deleted before and after")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a server and database to create the run's own database from")
    args = parser.parse_args()

    forget_redis_keys(args.redis_url)
    database = make_database(args.postgres_url)
    setups: list[Setup] = []
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        (scratch / "rules").mkdir()
        (scratch / "rules" / "10-always-mfa.py").write_text(ALWAYS_MFA_RULE)
        base = engine_env(scratch, scratch, args.redis_url) | {"MFA_GEOIP__DATABASE": ""}  # no lookup needed
        command = [sys.executable, "-m", "engine", "serve"]
        try:
            sqlite = start_server("sqlite", command, base, scratch)
            postgres = start_server("postgresql", command, base | {"MFA_DIRECTORY__URL": database}, scratch)
            second = start_server("postgresql-b", command, base | {"MFA_DIRECTORY__URL": database}, scratch)
            setups = [Setup("sqlite", [sqlite], []), Setup("postgresql", [postgres], []),
                      Setup("postgresql x2", [postgres, second], [])]
            total = args.logins * args.rounds
            for index, setup in enumerate(setups):
                # Each setup its own users (the two PostgreSQL setups share a database: distinct names).
                setup.users = create_users(setup.servers[0], total, args.connections, prefix=f"bench{index}")
            results: dict[str, list[Round]] = {setup.name: [] for setup in setups}
            for round_index in range(args.rounds):
                for setup in setups:
                    users = setup.users[round_index * args.logins:(round_index + 1) * args.logins]
                    results[setup.name].append(asyncio.run(timed_round(setup, users, args.connections)))
        finally:
            for server in {id(server): server for setup in setups for server in setup.servers}.values():
                server.stop()
            drop_database(args.postgres_url, database)
            forget_redis_keys(args.redis_url)
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[Round]]) -> None:
    print(f"{args.rounds} rounds x {args.logins} logins (login + verify), {args.connections} keep-alive connections, "
          f"{os.cpu_count()} CPUs; argon2 t=1 m=8 MiB; CPU: the engine processes, not PostgreSQL or Redis")
    print(f"{'setup':<16}{'logins/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}{'CPU us/login':>14}")
    for name, rounds in results.items():
        latencies = sorted(latency for r in rounds for latency in r.latencies)
        logins = sum(r.logins for r in rounds)
        print(f"{name:<16}{statistics.median(r.logins / r.seconds for r in rounds):>10.0f}"
              f"{percentile(latencies, 0.5) * 1e3:>9.2f}{percentile(latencies, 0.99) * 1e3:>9.2f}"
              f"{sum(sum(r.failures.values()) for r in rounds):>8}"
              f"{sum(r.cpu_seconds for r in rounds) / logins * 1e6:>14.0f}")
        failures = sum((r.failures for r in rounds), Counter())
        if failures:
            print(f"{'':<16}failures: {dict(failures)}")


if __name__ == "__main__":
    main()
