"""Fault figures of a live service: poisoned inputs, idle worker deaths, one user flooding the sandbox.

    .venv/bin/python bench/faults.py [--tree PATH] [--seconds 5]

Starts `python -m engine serve` of a checkout (this one, or `--tree` with its own .venv, to
measure a change before and after) with process isolation, two workers, the shipped rules
plus one that is slow for the user "slow", and then, in turn:

1. poison: four clients send /v1/evaluate with `created_at` in year 1 at +01:00 (it overflows
   in UTC) while one client sends valid evaluations; prints the answers to the poison, the
   worker kills and the valid client's throughput and latency, against a run without poison;
2. idle deaths: kills an idle worker with SIGKILL, then at once sends one valid evaluation,
   twenty times; prints how many were denied and how often /healthz said "ok" right after;
3. flood: eight clients send evaluations for "slow" (about 150 ms of rules each) while one
   client sends other users' evaluations; prints the other users' latency and their 503s.

Only figures of one run, printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

API_KEY = "bench-api-key-0123456789abcdef"
SLOW_RULE = '''"""Slow rules for one user: about 150 ms of steps."""


def rule(user, context):
    if user.user_id == "slow":
        spin = 0
        for outer in range(20):
            for inner in range(100000):
                spin = spin + inner
'''
CONFIG = """
directory: {{url: "sqlite:///{db}"}}
store: {{redis_url: ""}}
admin: {{token: bench-admin-token-0123456789abcdef}}
secrets: {{key: "{secret_key}"}}
tokens: {{signing_key: bench-signing-key-0123456789abcdef0123456789}}
api: {{keys: [{api_key}]}}
rules: {{dir: "{rules}"}}
sandbox: {{isolation: process, workers: 2, queue_timeout_ms: 1000, rule_timeout_ms: 1000,
          pipeline_timeout_ms: 1500, max_steps: 20000000}}
geoip: {{database: "{geoip}", allow_networks: [192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24]}}
logging: {{level: WARNING}}
"""


def body(user_id: str = "u-1", **user: Any) -> dict[str, Any]:
    return {"user": {"user_id": user_id, "username": "alice", "logins_count": 3, "factors": ["otp"],
                     "known_device_ids": ["dev-1"], "known_countries": ["US"], **user},
            "context": {"ip": "203.0.113.7", "device_id": "dev-1", "client_id": "app-1"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    def __init__(self, tree: Path, workdir: Path) -> None:
        self.tree = tree
        rules = workdir / "rules"
        shutil.copytree(tree / "rules", rules)
        (rules / "05-slow-user.py").write_text(SLOW_RULE)
        python = tree / ".venv" / "bin" / "python"
        geoip = workdir / "geo.mmdb"
        subprocess.run([str(python), "-m", "engine", "geoip", "write-demo", str(geoip)], cwd=tree, check=True)
        config = workdir / "config.yaml"
        text = CONFIG.format(db=workdir / "mfa.db", api_key=API_KEY, rules=rules, geoip=geoip,
                             secret_key=base64.b64encode(os.urandom(32)).decode())
        config.write_text(text)
        self.port = free_port()
        self.process = subprocess.Popen([str(python), "-m", "engine", "serve", "--config", str(config),
                                         "--host", "127.0.0.1", "--port", str(self.port)], cwd=tree,
                                        stdout=subprocess.DEVNULL, stderr=open(workdir / "server.log", "w"))
        self.url = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, client: httpx.AsyncClient) -> None:
        for _ in range(200):
            try:
                if (await client.get(f"{self.url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("the service did not start")

    def worker_pids(self) -> list[int]:
        found = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(self.process.pid)], capture_output=True,
                               text=True).stdout
        return [int(line.split()[0]) for line in found.splitlines() if "sandbox.worker" in line]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def evaluate(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> tuple[int, float, Any]:
    started = time.perf_counter()
    response = await client.post(f"{url}/v1/evaluate", json=payload, headers={"Authorization": f"Bearer {API_KEY}"})
    elapsed = time.perf_counter() - started
    decision = response.json().get("decision") if response.status_code == 200 else None
    return response.status_code, elapsed, decision


async def loop_for(seconds: float, client: httpx.AsyncClient, url: str, payload: dict[str, Any],
                   answers: list[tuple[int, float, Any]]) -> None:
    ends = time.perf_counter() + seconds
    while time.perf_counter() < ends:
        answers.append(await evaluate(client, url, payload))


def latency_line(label: str, answers: list[tuple[int, float, Any]], seconds: float) -> str:
    times = sorted(elapsed for _, elapsed, _ in answers) or [0.0]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (f"  {label:<34} {len(answers) / seconds:8.0f} req/s   p50 {statistics.median(times) * 1000:7.1f} ms   "
            f"p99 {p99 * 1000:7.1f} ms   statuses {dict(Counter(status for status, _, _ in answers))}")


async def sandbox_state(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    health = (await client.get(f"{url}/healthz")).json()
    return health["sandbox"] | {"status": health["status"]}  # type: ignore[no-any-return]


async def poison(service: Service, client: httpx.AsyncClient, seconds: float) -> None:
    print("1. poison: created_at 0001-01-01T00:00:00+01:00 from 4 clients, valid evaluations from 1")
    calm: list[tuple[int, float, Any]] = []
    await loop_for(seconds, client, service.url, body(), calm)
    kills_before = (await sandbox_state(client, service.url))["kills"]
    valid: list[tuple[int, float, Any]] = []
    poisoned: list[tuple[int, float, Any]] = []
    bad = body(created_at="0001-01-01T00:00:00+01:00")
    await asyncio.gather(loop_for(seconds, client, service.url, body(), valid),
                         *(loop_for(seconds, client, service.url, bad, poisoned) for _ in range(4)))
    kills = (await sandbox_state(client, service.url))["kills"] - kills_before
    print(latency_line("valid client, no poison", calm, seconds))
    print(latency_line("valid client, under poison", valid, seconds))
    print(f"  poison answers {dict(Counter(status for status, _, _ in poisoned))}, worker kills {kills}")


async def idle_deaths(service: Service, client: httpx.AsyncClient, trials: int = 20) -> None:
    print(f"2. idle deaths: SIGKILL an idle worker, then at once one valid evaluation; {trials} trials")
    denied = health_ok = 0
    for _ in range(trials):
        await evaluate(client, service.url, body())
        pids = service.worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
        status, _, decision = await evaluate(client, service.url, body())
        denied += status != 200 or decision != "allow"
        health_ok += (await sandbox_state(client, service.url))["status"] == "ok"
        await asyncio.sleep(0.3)  # let a replacement start before the next trial
    print(f"  valid evaluations denied or failed: {denied}/{trials}; /healthz ok right after: {health_ok}/{trials}")


async def flood(service: Service, client: httpx.AsyncClient, seconds: float) -> None:
    print("3. flood: 8 clients evaluate the slow user, 1 client other users")
    calm: list[tuple[int, float, Any]] = []
    await loop_for(seconds, client, service.url, body("u-2"), calm)
    others: list[tuple[int, float, Any]] = []
    slow: list[tuple[int, float, Any]] = []
    await asyncio.gather(loop_for(seconds, client, service.url, body("u-2"), others),
                         *(loop_for(seconds, client, service.url, body("slow"), slow) for _ in range(8)))
    print(latency_line("other users, no flood", calm, seconds))
    print(latency_line("other users, under flood", others, seconds))
    print(latency_line("the flooding user", slow, seconds))


async def main_async(tree: Path, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        service = Service(tree, Path(workdir))
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        try:
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                await service.wait_ready(client)
                print(f"tree {tree}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
                await poison(service, client, seconds)
                await idle_deaths(service, client)
                await flood(service, client, seconds)
        finally:
            service.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.tree.resolve(), args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
