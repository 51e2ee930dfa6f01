"""Requests/s of POST /v1/evaluate while the rule set is replaced every 100 ms, as a ratio to no changes.

One real uvicorn process per isolation mode (10 rules, bench/rules.py), loaded by the raw-socket
keep-alive client of bench/http_evaluate.py. Phases alternate in one run: quiet, then with a
`PUT /admin/rules/99-bench-reload` every `--interval-ms` (each a new version: compile the whole
set, run the fixtures, write the folder and the history, swap), and so on for `--rounds`. Prints
the median of the rounds, the ratio reloading/quiet and the admin call latencies; asserts nothing.

    .venv/bin/python bench/reload_load.py [--seconds 3] [--rounds 3] [--connections 16] [--interval-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_evaluate import API_KEY, free_port, load, start  # noqa: E402
from bench.rules import PIPELINE  # noqa: E402
from engine.demo_geoip import write_demo_database  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
RULE_ID = "99-bench-reload"
RULE = '"""Changes every time: a new version each call ({index})."""\n\n\ndef rule(user, context):\n    pass\n'

Phase = tuple[float, float, float, int]  # req/s, p50 ms, p99 ms, non-200


async def put_rule(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, index: int) -> int:
    body = orjson.dumps({"source": RULE.format(index=index)})
    writer.write((f"PUT /admin/rules/{RULE_ID} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return int(head[9:12])


async def change_every(port: int, interval_seconds: float, stop_at: float, first_index: int,
                       latencies: list[float], failures: list[int]) -> None:
    """One PUT per interval on its own keep-alive connection; a slow call delays the next, never overlaps."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due = time.perf_counter()
    index = first_index
    while due < stop_at:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        started = time.perf_counter()
        status = await put_rule(reader, writer, port, index)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            failures.append(status)
        index += 1
        due += interval_seconds
    writer.close()


async def reloading(port: int, seconds: float, connections: int, interval_seconds: float, first_index: int,
                    change_latencies: list[float], change_failures: list[int]) -> Phase:
    stop_at = time.perf_counter() + seconds
    changes = asyncio.create_task(change_every(port, interval_seconds, stop_at, first_index, change_latencies,
                                               change_failures))
    result = await load(port, seconds, connections)
    await changes
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--interval-ms", type=int, default=100)
    args = parser.parse_args()
    interval = args.interval_ms / 1000

    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch, "geo.mmdb")
        write_demo_database(database)
        servers, ports = {}, {}
        for isolation in ("process", "inprocess"):
            rules = Path(scratch, f"rules-{isolation}")
            rules.mkdir()
            for rule_id, source in PIPELINE.items():
                (rules / f"{rule_id}.py").write_text(source, encoding="utf-8")
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MFA_RULES__DIR": str(rules),
                   "MFA_GEOIP__DATABASE": str(database), "MFA_API__KEYS": API_KEY,
                   "MFA_ADMIN__TOKEN": ADMIN_TOKEN, "MFA_SANDBOX__ISOLATION": isolation,
                   "MFA_GEOIP__ALLOW_NETWORKS": "203.0.113.0/24,198.51.100.0/24", "MFA_LOGGING__LEVEL": "WARNING",
                   "MFA_DIRECTORY__URL": f"sqlite:///{Path(scratch, f'{isolation}.db')}",
                   # A load generator is one user many times over (see bench/http_evaluate.py).
                   "MFA_SANDBOX__MAX_CONCURRENT_PER_USER": "0"}
            ports[isolation] = free_port()
            servers[isolation] = start([sys.executable, "-m", "engine", "serve", "--port", str(ports[isolation])],
                                       ports[isolation], env)
        quiet: dict[str, list[Phase]] = {name: [] for name in ports}
        busy: dict[str, list[Phase]] = {name: [] for name in ports}
        change_latencies: dict[str, list[float]] = {name: [] for name in ports}
        change_failures: dict[str, list[int]] = {name: [] for name in ports}
        try:
            for port in ports.values():
                asyncio.run(load(port, 0.5, args.connections))
            index = 0
            for _ in range(args.rounds):
                for name, port in ports.items():
                    quiet[name].append(asyncio.run(load(port, args.seconds, args.connections)))
                    busy[name].append(asyncio.run(reloading(port, args.seconds, args.connections, interval, index,
                                                            change_latencies[name], change_failures[name])))
                    index += 1000
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(10)

    print(f"{args.rounds} rounds x {args.seconds:.0f} s per phase, {args.connections} keep-alive connections, "
          f"{len(PIPELINE)} rules, one PUT every {args.interval_ms} ms while reloading; median of rounds")
    print(f"{'isolation':<11}{'phase':<11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'ratio':>8}"
          f"{'changes':>9}{'change p50 ms':>15}{'max ms':>8}{'failed':>8}")
    for name in ports:
        quiet_rps = statistics.median(r[0] for r in quiet[name])
        for phase, rounds in (("quiet", quiet[name]), ("reloading", busy[name])):
            rps = statistics.median(r[0] for r in rounds)
            line = (f"{name:<11}{phase:<11}{rps:>9.0f}{statistics.median(r[1] for r in rounds):>9.2f}"
                    f"{statistics.median(r[2] for r in rounds):>9.2f}{sum(r[3] for r in rounds):>9}"
                    f"{rps / quiet_rps:>8.2f}")
            if phase == "reloading":
                spent = sorted(change_latencies[name])
                line += (f"{len(spent):>9}{statistics.median(spent) * 1e3:>15.1f}{spent[-1] * 1e3:>8.1f}"
                         f"{len(change_failures[name]):>8}")
            print(line)


if __name__ == "__main__":
    main()
