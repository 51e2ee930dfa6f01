"""Requests/s and latency of POST /v1/evaluate (10 rules) against a bare Starlette JSON endpoint.

Both servers run as real uvicorn processes on this machine, in the same run, loaded by the
same raw-socket client (keep-alive, fixed concurrency), in interleaved rounds. Prints the
median of the rounds and the ratio engine/bare; the target (DESIGN.md section 9) is >= 0.5.

    .venv/bin/python bench/http_evaluate.py [--seconds 3] [--rounds 3] [--connections 16]
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
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rules import PIPELINE  # noqa: E402
from engine.demo_geoip import write_demo_database  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdef"
BODY = orjson.dumps({
    "user": {"user_id": "u-1042", "username": "alice", "email": "alice@example.com", "email_verified": True,
             "name": "Alice Example", "logins_count": 42, "created_at": "2024-03-01T09:00:00+00:00",
             "last_login": "2026-11-20T08:00:00+00:00", "app_metadata": {"roles": ["staff"], "plan": "pro"},
             "user_metadata": {"locale": "en-GB"}, "factors": ["otp", "sms"], "groups": ["staff", "eu"],
             "known_device_ids": ["d-77", "d-78"], "known_countries": ["US", "DE"]},
    "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                "device_id": "d-77", "client_id": "web-app", "client_name": "Example Web",
                "hostname": "login.example.com", "action": "login"},
})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "server died")
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def request_bytes(port: int) -> bytes:
    head = (f"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n")
    return head.encode() + BODY


async def connection(port: int, stop_at: float, latencies: list[float], failures: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = request_bytes(port)
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            failures.append(status)
    writer.close()


async def load(port: int, seconds: float, connections: int) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    failures: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(connection(port, stop_at, latencies, failures) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e3
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3
    return len(latencies) / elapsed, p50, p99, len(failures)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        rules = Path(scratch, "rules")
        rules.mkdir()
        for rule_id, source in PIPELINE.items():
            (rules / f"{rule_id}.py").write_text(source, encoding="utf-8")
        database = Path(scratch, "geo.mmdb")
        write_demo_database(database)
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MFA_RULES__DIR": str(rules),
                    "MFA_GEOIP__DATABASE": str(database), "MFA_API__KEYS": API_KEY,
                    "MFA_GEOIP__ALLOW_NETWORKS": "203.0.113.0/24,198.51.100.0/24",
                    "MFA_LOGGING__LEVEL": "WARNING",
                    # One body from 16 connections is one user sixteen times over, which the
                    # fair-share bound refuses; real traffic is many users, each once at a time.
                    "MFA_SANDBOX__MAX_CONCURRENT_PER_USER": "0"}
        servers = {}
        ports = {}
        uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--host",
                   "127.0.0.1"]
        ports["bare"] = free_port()
        servers["bare"] = start(uvicorn + ["--port", str(ports["bare"]), "bench.bare_app:app"], ports["bare"],
                                base_env)
        for isolation in ("process", "inprocess"):
            name = f"evaluate ({isolation})"
            ports[name] = free_port()
            env = base_env | {"MFA_SANDBOX__ISOLATION": isolation}
            servers[name] = start([sys.executable, "-m", "engine", "serve", "--port", str(ports[name])],
                                  ports[name], env)
        try:
            for name, port in ports.items():  # warm up: worker pools load the rule set, caches fill
                asyncio.run(load(port, 0.5, args.connections))
            results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in ports}
            for _ in range(args.rounds):
                for name, port in ports.items():
                    results[name].append(asyncio.run(load(port, args.seconds, args.connections)))
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(10)

    print(f"{args.rounds} rounds x {args.seconds:.0f} s, {args.connections} keep-alive connections, "
          f"body {len(BODY)} bytes, {len(PIPELINE)} rules; median of rounds")
    print(f"{'server':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-200':>10}{'vs bare':>10}")
    bare_rps = statistics.median(r[0] for r in results["bare"])
    for name, rounds in results.items():
        rps = statistics.median(r[0] for r in rounds)
        p50 = statistics.median(r[1] for r in rounds)
        p99 = statistics.median(r[2] for r in rounds)
        failures = sum(r[3] for r in rounds)
        print(f"{name:<24}{rps:>10.0f}{p50:>10.2f}{p99:>10.2f}{failures:>10}{rps / bare_rps:>10.2f}")
    print("target: evaluate (process) >= 0.50 x bare")


if __name__ == "__main__":
    main()
