"""The admin API of rules: parse, call engine/rule_ops.py, render (the token is checked by admin_only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine import formats, policy
from engine.clock import NOW_FORMAT, parse_now
from engine.errors import InvalidRequest
from engine.http import schema
from engine.http.admin import admin_services
from engine.http.bodies import read_json
from engine.http.json_schema import described, ecma_pattern
from engine.http.render import json_response
from engine.rule_ops import Activation, RuleEntry, check_rule_id
from engine.services import Services

MAX_SOURCE_CHARS = 1_048_576  # the compiler's byte limit (sandbox.max_source_bytes) is the real bound
MAX_RULES_PER_CALL = 1000


_SOURCE_SCHEMA = {"type": "string", "maxLength": MAX_SOURCE_CHARS,
                  "description": "a rule's Python source (rules/NN-name.py; sandbox.max_source_bytes bounds it)"}


@described(_SOURCE_SCHEMA)
def _source(value: Any, path: str) -> str:
    if type(value) is not str or len(value) > MAX_SOURCE_CHARS:
        raise InvalidRequest(f"must be a string of at most {MAX_SOURCE_CHARS} characters", field=path)
    return value


@described({"type": "object", "maxProperties": MAX_RULES_PER_CALL, "additionalProperties": _SOURCE_SCHEMA,
            "propertyNames": {"pattern": ecma_pattern(formats.RULE_ID)},
            "description": "{rule id: source}, rule ids like 20-geo"})
def _sources(value: Any, path: str) -> dict[str, str]:
    """{rule id: source}; a bad id is named by the field `rules` alone (ids are not echoed back)."""
    if type(value) is not dict or len(value) > MAX_RULES_PER_CALL:
        raise InvalidRequest(f"must be an object of at most {MAX_RULES_PER_CALL} rule ids", field=path)
    for key in value:
        check_rule_id(key, path)
    return {key: _source(source, f"{path}.{key}") for key, source in value.items()}


PUT_RULE = schema.obj({"source": _source, "enabled": schema.boolean}, frozenset({"source"}))
PATCH_RULE = schema.obj({"enabled": schema.boolean}, frozenset({"enabled"}))
APPLY = schema.obj({"rules": _sources, "replace": schema.boolean}, frozenset({"rules"}))
ROLLBACK = schema.obj({"version": schema.text(64)}, frozenset({"version"}))


@described({"type": "string", "maxLength": 64, "description": f"the dry run's clock: {NOW_FORMAT.removeprefix('must be ')}"})
def _now(value: Any, path: str) -> datetime:
    # Text an identifier may hold first: fromisoformat takes "2026-01-01T00:00:00\n+00:00" (schema.timestamp).
    if type(value) is not str or len(value) > 64 or not formats.is_identifier(value):
        raise InvalidRequest(NOW_FORMAT, field=path)
    try:
        return parse_now(value)
    except ValueError:
        raise InvalidRequest(NOW_FORMAT, field=path) from None


# `now` sets the dry run's clock (time-of-day and weekday rules); /v1/evaluate refuses it (unknown field).
DRY_RUN = schema.obj({"rules": _sources, "user": schema.USER, "context": schema.CONTEXT, "now": _now},
                     frozenset({"user"}))

# These routes' bodies by route name (engine/http/routes.py), as schema.BODIES: the API document reads both.
BODIES: dict[str, schema.Check] = {"admin_put_rule": PUT_RULE, "admin_patch_rule": PATCH_RULE,
                                   "admin_apply_rules": APPLY, "admin_rollback_rules": ROLLBACK,
                                   "admin_dry_run_rules": DRY_RUN}


async def _body(services: Services, request: Request, check: schema.Check) -> dict[str, Any]:
    # Room for one rule of the largest size the compiler takes, JSON-escaped (admin callers only).
    limit = max(services.settings.http.max_body_bytes, 4 * services.settings.sandbox.max_source_bytes)
    return schema.parse(check, await read_json(request, limit))


def _rule_id(request: Request) -> str:
    return check_rule_id(request.path_params["rule_id"])


def _entry_plain(entry: RuleEntry, with_source: bool = False) -> dict[str, Any]:
    plain: dict[str, Any] = {"id": entry.id, "order": entry.order, "enabled": entry.enabled,
                             "summary": entry.summary, "sha256": entry.sha256}
    return plain | {"source": entry.source} if with_source else plain


def _activation(activation: Activation) -> Response:
    return json_response({"version": activation.version, "previous_version": activation.previous_version})


async def list_rules(request: Request) -> Response:
    rules = admin_services(request).rules
    active = rules.active
    return json_response({"version": active.version, "rules": [_entry_plain(entry) for entry in active.entries],
                          "sync": rules.sync_status()})


async def get_rule(request: Request) -> Response:
    services = admin_services(request)
    return json_response(_entry_plain(services.rules.get(_rule_id(request)), with_source=True))


async def put_rule(request: Request) -> Response:
    services = admin_services(request)
    rule_id = _rule_id(request)
    body = await _body(services, request, PUT_RULE)
    return _activation(await services.rules.put(rule_id, body["source"], body.get("enabled")))


async def patch_rule(request: Request) -> Response:
    services = admin_services(request)
    rule_id = _rule_id(request)
    body = await _body(services, request, PATCH_RULE)
    return _activation(await services.rules.set_enabled(rule_id, body["enabled"]))


async def delete_rule(request: Request) -> Response:
    services = admin_services(request)
    return _activation(await services.rules.delete(_rule_id(request)))


async def bad_rule_path(request: Request) -> Response:
    """/admin/rules/a/b, /admin/rules/../x: never a rule id."""
    admin_services(request)
    raise InvalidRequest("must be a rule id like 20-geo (digits, a dash, lower-case letters, digits, dashes)",
                         field="id")


async def apply_rules(request: Request) -> Response:
    services = admin_services(request)
    body = await _body(services, request, APPLY)
    return _activation(await services.rules.apply(body["rules"], body.get("replace", False)))


async def reload_rules(request: Request) -> Response:
    return _activation(await admin_services(request).rules.reload())


async def list_versions(request: Request) -> Response:
    return json_response({"versions": admin_services(request).rules.versions()})


async def rollback(request: Request) -> Response:
    services = admin_services(request)
    body = await _body(services, request, ROLLBACK)
    return _activation(await services.rules.rollback(body["version"]))


async def dry_run(request: Request) -> Response:
    services = admin_services(request)
    body = await _body(services, request, DRY_RUN)
    result = await services.rules.dry_run(body.get("rules"), body["user"], body.get("context", {}), body.get("now"))
    # As /v1/evaluate answers; the trace carries each rule's outcome, duration_us and logs.
    return json_response({**policy.answer(result.decision, result.outcome, result.version, result.trace),
                          "dry_run": True})
