"""Endpoints of the application API: /v1/evaluate and /healthz."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from engine import policy
from engine.http.auth import require_bearer
from engine.http.bodies import read_json
from engine.http.render import json_response
from engine.http.schema import parse_evaluate
from engine.services import Services


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def evaluate(request: Request) -> Response:
    services = _services(request)
    require_bearer(request, services.api_keys)
    body = await read_json(request, services.settings.http.max_body_bytes)
    result = await services.flow.evaluate(parse_evaluate(body))
    decision, evaluation = result.decision, result.evaluation
    return json_response({"decision_id": result.decision_id,
                          **policy.answer(decision, evaluation.outcome, evaluation.version, evaluation.trace)})


async def healthz(request: Request) -> Response:
    services = _services(request)
    sandbox = services.executor.state()
    rule_set = services.pipeline.rule_set
    store = await _store_health(services)
    directory = await _directory_health(services)
    healthy = sandbox["healthy"] and store["healthy"] and directory["healthy"]
    body = {
        "status": "ok" if healthy else "degraded",
        "rule_set": {"version": rule_set.version, "rules": [rule.id for rule in rule_set.rules],
                     "sync": services.rules.sync_status()},
        "sandbox": sandbox,
        "store": {"kind": "redis" if services.settings.store.redis_url else "memory", **store},
        "directory": {"backend": services.directory.backend, **directory},
    }
    return json_response(body, 200 if healthy else 503)


async def _store_health(services: Services) -> dict[str, object]:
    """`healthy`, and whether the store outlives its own restart: lockout streaks, password and
    SMS counters and challenges are in it (TOTP steps are durable in the directory too), so
    operators must be able to see that a restart would forget them. `persistent` is true, false
    or "unknown"; `persistence` names the mode (aof, rdb, none, unknown)."""
    try:
        healthy = await services.store.ping()
        persistence = await services.store.persistence() if healthy else "unknown"
    except Exception:  # an unreachable store is what this endpoint exists to report
        healthy, persistence = False, "unknown"
    persistent: bool | str = "unknown" if persistence == "unknown" else persistence != "none"
    return {"healthy": healthy, "persistent": persistent, "persistence": persistence}


async def _directory_health(services: Services) -> dict[str, object]:
    """`healthy`, and the schema version the directory's database is migrated to (read from it,
    within directory.timeout_ms: a frozen server must not hang the health check)."""
    try:
        async with asyncio.timeout(services.settings.directory.timeout_ms / 1000):
            version = await services.directory.schema_version()
    except Exception:  # an unreachable directory is what this endpoint exists to report
        return {"healthy": False, "schema_version": None}
    return {"healthy": True, "schema_version": version}
