"""Event-loop CPU per POST /v1/evaluate inside the app: raw ASGI calls, no server, no sockets.

    .venv/bin/python bench/inapp_evaluate.py [--isolation inprocess|process] [--no-rules]
                                             [--concurrency 1] [--requests 3000] [--profile]

The real app (create_app, the ten rules of bench/rules.py or none, the users of 64 varied
bodies) driven by calling it as uvicorn would, on uvloop: each request's whole body in one
message, the answer dropped. Prints the event-loop thread's CPU per request (time.thread_time,
best of 5 repetitions: the least disturbed); with process isolation the sandbox workers' CPU is
not in it. `--profile` adds a cProfile of the repetitions on the same clock, so time spent
waiting for the CPU is not charged to whatever was running.

What it is for: the app's own cost, without the HTTP server and the load generator, to set
against bench/http_evaluate.py's live CPU per request (the difference is the server's share and
what running beside the network does to the same code). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # bench/ first on sys.path would shadow the standard library's http

from bench.http_evaluate import API_KEY, BODY  # noqa: E402
from bench.rules import PIPELINE  # noqa: E402
from engine.app import create_app  # noqa: E402
from tests.engine.service import make_settings  # noqa: E402

REPETITIONS = 5
WARMUP_REQUESTS = 500

Call = Callable[[bytes], Coroutine[Any, Any, int]]


def asgi_caller(app: Any) -> Call:
    headers = [(b"host", b"engine.bench"), (b"authorization", f"Bearer {API_KEY}".encode()),
               (b"content-type", b"application/json")]

    async def call(body: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/evaluate", "raw_path": b"/v1/evaluate", "query_string": b"",
                 "root_path": "", "headers": [*headers, (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}
        delivered = False
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # a client that stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        return statuses[0]

    return call


def varied_bodies(count: int = 64) -> list[bytes]:
    body = orjson.loads(BODY)
    return [orjson.dumps(body | {"user": body["user"] | {"user_id": f"u-{index}"}}) for index in range(count)]


async def measure(args: argparse.Namespace, scratch: Path) -> None:
    settings = make_settings(scratch, {} if args.no_rules else PIPELINE, isolation=args.isolation)
    settings = dataclasses.replace(settings, api=dataclasses.replace(settings.api, keys=(API_KEY,)))
    app = create_app(settings)
    call, bodies = asgi_caller(app), varied_bodies()
    async with app.router.lifespan_context(app):
        for index in range(WARMUP_REQUESTS):
            status = await call(bodies[index % len(bodies)])
            if status != 200:
                raise SystemExit(f"warm-up request answered {status}")
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        best = float("inf")
        for _ in range(REPETITIONS):
            if profiler is not None:
                profiler.enable()
            started = time.thread_time()
            for first in range(0, args.requests, args.concurrency):
                await asyncio.gather(*(call(bodies[(first + offset) % len(bodies)])
                                       for offset in range(args.concurrency)))
            best = min(best, (time.thread_time() - started) / args.requests * 1e6)
            if profiler is not None:
                profiler.disable()
    rules = "no rules" if args.no_rules else f"{len(PIPELINE)} rules"
    print(f"{args.isolation}, {rules}, {args.concurrency} at a time: {best:.1f} us of event-loop CPU per "
          f"evaluate (best of {REPETITIONS} x {args.requests})")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isolation", choices=("inprocess", "process"), default="inprocess")
    parser.add_argument("--no-rules", action="store_true", help="an empty rule set: the app without the rules")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    import uvloop

    with tempfile.TemporaryDirectory() as scratch:
        uvloop.run(measure(args, Path(scratch)))


if __name__ == "__main__":
    main()
