"""The floor for bench/http_evaluate.py: bare's endpoint plus the ten bench rules as plain Python.

The least an evaluation can cost on this stack: the body parsed with orjson, the rules' objects
built by the engine's own RuleBinding from the body (the signals stage's fixed parts filled in,
no lookup), the ten rules called as ordinary functions, the result answered. No validation,
sandbox, GeoIP, signals, policy, decision log or trace. Issue 11 put "the physical limit near
0.5x" by arithmetic; this measures it in the same run as bare and the engine.
"""

from __future__ import annotations

import builtins
import datetime
import ipaddress
import re
import sys
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rules import PIPELINE  # noqa: E402
from engine.rule_host import RuleBinding  # noqa: E402

_GLOBALS: dict[str, object] = {"__builtins__": builtins, "re": re, "ipaddress": ipaddress, "datetime": datetime}


def _rules() -> list[Any]:
    functions = []
    for name, source in PIPELINE.items():
        namespace = dict(_GLOBALS)
        exec(compile(source, name, "exec"), namespace)  # our own bench sources, never request data
        functions.append(namespace["rule"])
    return functions


RULES = _rules()
GEO = {"country": "US", "city": "Springfield", "latitude": 39.8, "longitude": -89.6, "accuracy_radius": 50}


async def evaluate(request: Request) -> Response:
    body = orjson.loads(await request.body())
    context = body.get("context", {})
    payload = {"user": body["user"], "context": {
        "connection": {"ip": context.get("ip", "127.0.0.1"), "ip_country": "US", "geo": GEO},
        "request": {"user_agent": context.get("user_agent"), "device_id": context.get("device_id"),
                    "hostname": context.get("hostname")},
        "client": {"client_id": context.get("client_id"), "name": context.get("client_name")},
        "action": context.get("action", "login"), "stats": {"logins_count": body["user"].get("logins_count", 0)},
        "risk": {"first_login": False, "new_device": False, "new_country": False},
        "authentication": {"methods": [{"name": "pwd", "timestamp": datetime.datetime.now(datetime.UTC).isoformat()}]},
        "now": datetime.datetime.now(datetime.UTC).isoformat()}}
    lines: list[str] = []
    binding = RuleBinding(payload, lines.append)
    for function in RULES:
        if binding.is_finished():
            break
        function(*binding.args)
    return Response(orjson.dumps(binding.result()), media_type="application/json")


app = Starlette(routes=[Route("/v1/evaluate", evaluate, methods=["POST"])])
