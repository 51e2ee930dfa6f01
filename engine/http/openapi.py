"""The OpenAPI 3.1 document of the service, written from the route table and the declarations.

Nothing in it is kept by hand beside the code it describes: operations come from the routes
(engine/http/routes.py, as mounted by the app), request bodies from the schemas that validate
them (schema.BODIES, rules_admin.BODIES, settings_admin.BODIES, clients_admin.BODIES, through
engine/http/json_schema.py),
query parameters from admin.QUERIES, answers and each route's own error statuses from
engine/http/responses.py, and the error codes of each status from the error tree (engine/errors.py).
A documented route without a declared answer stops the document (UndocumentedRoute), so a new
route cannot be served undescribed.

Documented: /v1, /admin and /.well-known, /healthz and /metrics. The hosted pages (/login...)
are HTML for browsers, and the two catch-alls for malformed rule paths answer only the 400
their rule routes document.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from starlette.routing import BaseRoute, Route

from engine import audit, errors, formats
from engine.decisions import DECISION_ID
from engine.http import admin, clients_admin, rules_admin, schema, settings_admin
from engine.http.json_schema import JsonSchema, SchemaWriter, description_of, ecma_pattern
from engine.http.responses import ANSWERS, ERROR, NAMED, Answer
from engine.rule_settings import KEY

DOCUMENTED_PREFIXES = ("/v1/", "/admin/", "/.well-known/")
DOCUMENTED_PATHS = ("/healthz", "/metrics")
# Routes under a documented prefix that are no operation of their own, and why.
NOT_OPERATIONS: Mapping[str, str] = MappingProxyType({
    "admin_bad_rule_setting_path": "answers 400 naming `key` for a path that is no setting key",
    "admin_bad_rule_path": "answers 400 naming `id` for a path that is no rule id",
})

BODIES: Mapping[str, object] = MappingProxyType({**schema.BODIES, **rules_admin.BODIES, **settings_admin.BODIES,
                                                **clients_admin.BODIES})

# Path parameters: what the engine hands out. Anything else is 404 (ids) or 400 (rule ids, keys).
PATH_PARAMETERS: Mapping[str, tuple[re.Pattern[str], str]] = MappingProxyType({
    "user_id": (formats.OPAQUE_ID, "a user's id (usr_...)"),
    "factor_id": (formats.OPAQUE_ID, "a factor's id"),
    "browser_id": (formats.OPAQUE_ID, "a remembered browser's id"),
    "decision_id": (DECISION_ID, "a decision's id, as /v1/evaluate, /v1/login and /v1/step-up answer it"),
    "rule_id": (formats.RULE_ID, "a rule id: NN-name, as its file in rules/ is named"),
    "key": (KEY, "a rule setting's key"),
    "client_id": (formats.CLIENT_ID, "a hosted login pages' client id, as config.yaml's `clients:` keys"),
})

SECURITY_SCHEMES: Mapping[str, JsonSchema] = MappingProxyType({
    "apiKey": {"type": "http", "scheme": "bearer", "description": "An application's API key (`api.keys`)."},
    "adminToken": {"type": "http", "scheme": "bearer", "description": "The admin token (`admin.token`)."},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "The metrics token (`metrics.token`)."},
})

_BODY_ERRORS = frozenset({400, 408, 413, 415})
_EVERY_ROUTE = frozenset({503})  # a request cut by the shutdown timeout, or a store that does not answer
_STATUS_NAMES = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 409: "Conflict",
                 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
                 429: "Too Many Requests", 503: "Service Unavailable"}
_RETRY_AFTER = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
_REQUEST_ID = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}


class UndocumentedRoute(LookupError):
    """A route under a documented prefix with no declared answer (engine/http/responses.py)."""


def build(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The document for these routes (an app's route table, engine/http/routes.py)."""
    operations = list(_operations(routes))
    names = {**NAMED, **{_body_name(route.name): BODIES[route.name] for route, _ in operations
                         if route.name in BODIES},
             "EvaluateUser": schema.USER, "Context": schema.CONTEXT}
    writer = SchemaWriter(names)
    paths: dict[str, dict[str, Any]] = {}
    for route, method in operations:
        paths.setdefault(route.path, {})[method.lower()] = _operation(route, method, writer)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mfa-engine", "version": _version(),
                 "description": "The adaptive-MFA policy engine's HTTP API: the application API (/v1), the admin "
                                "API (/admin) and the token keys (/.well-known). Errors share one body: `error` "
                                "(a code), `message`, and `field` (the dotted field or parameter at fault) where "
                                "there is one. GET /docs shows this document as a page.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "tags": [{"name": "application", "description": "For applications, behind an API key"},
                 {"name": "admin", "description": "For operators, behind the admin token"},
                 {"name": "keys", "description": "Public keys for relying parties"},
                 {"name": "operations", "description": "Health and metrics"}],
        "paths": paths,
        "components": {"schemas": writer.components(), "responses": _error_responses(paths, writer),
                       "securitySchemes": dict(SECURITY_SCHEMES), "headers": _headers()},
    }


def _operations(routes: Iterable[BaseRoute]) -> Iterator[tuple[Route, str]]:
    for route in routes:
        if not isinstance(route, Route) or not _is_documented(route.path) or route.name in NOT_OPERATIONS:
            continue
        if route.name not in ANSWERS:
            raise UndocumentedRoute(f"{route.name} ({route.path}) has no answer in engine/http/responses.py: ANSWERS")
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield route, method


def _is_documented(path: str) -> bool:
    return path.startswith(DOCUMENTED_PREFIXES) or path in DOCUMENTED_PATHS


def _operation(route: Route, method: str, writer: SchemaWriter) -> dict[str, Any]:
    answer = ANSWERS[route.name]
    security = _security(route.path)
    operation: dict[str, Any] = {"operationId": route.name, "summary": answer.summary, "tags": [_tag(route.path)],
                                 "security": [{security: []}] if security else []}
    parameters = [*_path_parameters(route), *_query_parameters(route.name)]
    if parameters:
        operation["parameters"] = parameters
    body = BODIES.get(route.name)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": writer.write(body)}}}
    operation["responses"] = _responses(route, answer, writer, has_body=body is not None, security=security)
    return operation


def _security(path: str) -> str | None:
    if path.startswith("/v1/"):
        return "apiKey"
    if path.startswith("/admin/"):
        return "adminToken"
    return "metricsToken" if path == "/metrics" else None


def _tag(path: str) -> str:
    if path.startswith("/v1/"):
        return "application"
    if path.startswith("/admin/"):
        return "admin"
    return "keys" if path.startswith("/.well-known/") else "operations"


def _path_parameters(route: Route) -> Iterator[dict[str, Any]]:
    for name in route.param_convertors:
        pattern, description = PATH_PARAMETERS[name]
        yield {"name": name, "in": "path", "required": True, "description": description,
               "schema": {"type": "string", "pattern": ecma_pattern(pattern)}}


def _query_parameters(route_name: str) -> Iterator[dict[str, Any]]:
    for parameter in admin.QUERIES.get(route_name, ()):
        yield {"name": parameter.name, "in": "query", "required": False,
               "schema": _integer(parameter)}
    for name, schema_of in _AUDIT_QUERY.items() if route_name == "admin_list_audit_events" else ():
        yield {"name": name, "in": "query", "required": False, "schema": schema_of}


def _integer(parameter: admin.QueryInteger) -> JsonSchema:
    return {"type": "integer", "minimum": parameter.low, "maximum": parameter.high, "default": parameter.default}


# GET /admin/audit's parameters (engine/http/audit_admin.py reads them one by one, with these checks).
_AUDIT_QUERY: Mapping[str, JsonSchema] = MappingProxyType({
    "user_id": {"type": "string", "pattern": ecma_pattern(formats.OPAQUE_ID)},
    "type": {"type": "string", "enum": list(audit.VOCABULARY)},
    "since": {**(description_of(schema.timestamp) or {}),
              "description": "inclusive; a `+` is sent as %2B (sent unencoded, it arrives as a space: read as `+`)"},
    "until": {**(description_of(schema.timestamp) or {}), "description": "exclusive, later than since"},
    "limit": _integer(admin.LIMIT),
    "cursor": {"type": "string", "description": "the next_cursor of the page before, as it was given"},
})


def _responses(route: Route, answer: Answer, writer: SchemaWriter, *, has_body: bool,
               security: str | None) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in (answer.status, *answer.also):
        success: dict[str, Any] = {"description": _STATUS_NAMES[status], "headers": _headers_for(status)}
        if answer.body is not None:
            success["content"] = {answer.media_type: {"schema": writer.write(answer.body)}}
        responses[str(status)] = success
    statuses = set(answer.errors | _EVERY_ROUTE)
    if has_body:
        statuses |= _BODY_ERRORS
    if security is not None:
        statuses.add(401)
    if route.path.startswith("/admin/"):
        statuses.add(400)  # admin_services: an unknown or repeated query parameter
    for status in sorted(statuses - {answer.status, *answer.also}):
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    return responses


def _error_responses(paths: Mapping[str, Mapping[str, Any]], writer: SchemaWriter) -> dict[str, Any]:
    """One response per error status the operations refer to: the shared error body, with the
    codes of that status."""
    used = sorted({int(reference["$ref"].removeprefix("#/components/responses/Error"))
                   for operations in paths.values() for operation in operations.values()
                   for reference in operation["responses"].values() if "$ref" in reference})
    return {f"Error{status}": {
        "description": f"{_STATUS_NAMES[status]}: {', '.join(error_codes(status))}", "headers": _headers_for(status),
        "content": {"application/json": {"schema": {"allOf": [writer.write(ERROR), {
            "properties": {"error": {"enum": error_codes(status)}}}]}}}} for status in used}


def error_codes(status: int) -> list[str]:
    """The codes of the error tree (engine/errors.py) answered with `status`, in tree order."""
    return list(dict.fromkeys(error.code for error in _error_tree(errors.EngineError) if error.status == status))


def _error_tree(root: type[errors.EngineError]) -> Iterator[type[errors.EngineError]]:
    yield root
    for child in root.__subclasses__():
        yield from _error_tree(child)


def _headers_for(status: int) -> dict[str, Any]:
    return {**_REQUEST_ID, **(_RETRY_AFTER if status in (429, 503) else {})}


def _headers() -> dict[str, Any]:
    return {
        "X-Request-Id": {"description": "The request's id: the client's X-Request-Id when it is sane, else a new "
                                        "one; log lines name it", "required": True, "schema": {"type": "string"}},
        "Retry-After": {"description": "Seconds after which the same request may succeed", "required": True,
                        "schema": {"type": "integer", "minimum": 1}},
    }


def _body_name(route_name: str) -> str:
    return "".join(part.capitalize() for part in route_name.split("_")) + "Request"


def _version() -> str:
    try:
        return importlib.metadata.version("mfa-engine")
    except importlib.metadata.PackageNotFoundError:  # a checkout run without installing
        return "0.0.0"
