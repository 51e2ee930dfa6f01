"""The admin API of rule settings (/admin/rules/settings...): parse, call engine/rule_ops.py, render.

A secret's value is never rendered: not by PUT, not by GET, not in an error (the body checks
name the field, never the value).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine.errors import InvalidRequest
from engine.http.admin import admin_services
from engine.http.bodies import read_json
from engine.http.json_schema import described
from engine.http.render import json_response
from engine.rule_settings import MAX_VALUE_BYTES, Setting, check_key

_FIELDS = frozenset({"value", "secret"})
_MAX_BODY_BYTES = 4 * MAX_VALUE_BYTES + 1024  # the value's JSON, escaped, and the envelope


# Not a schema.obj: an Obj reads null as absent, and null is a value a setting may hold.
@described({"type": "object", "properties": {"value": {"description": "plain JSON, null included"},
                                             "secret": {"type": "boolean", "default": False}},
            "required": ["value"], "additionalProperties": False})
def setting_body(body: Any, path: str) -> dict[str, Any]:
    """{"value": plain JSON (null included), "secret": bool (default false)}; unknown fields are a 400."""
    if type(body) is not dict:
        raise InvalidRequest("must be a JSON object")
    for name in body:
        if name not in _FIELDS:
            raise InvalidRequest("is not a known field", field=str(name)[:64])
    if "value" not in body:
        raise InvalidRequest("is required", field="value")
    if type(body.get("secret", False)) is not bool:
        raise InvalidRequest("must be true or false", field="secret")
    return body


# This route's body by route name (engine/http/routes.py), as schema.BODIES: the API document reads it.
BODIES = {"admin_put_rule_setting": setting_body}


def _setting_plain(setting: Setting) -> dict[str, Any]:
    plain: dict[str, Any] = {"key": setting.key, "secret": setting.secret}
    if not setting.secret:
        plain["value"] = setting.value
    return plain | {"updated_at": setting.updated_at}


def _key(request: Request) -> str:
    return check_key(request.path_params["key"])


async def list_settings(request: Request) -> Response:
    rules = admin_services(request).rules
    active = rules.active
    return json_response({"settings": [_setting_plain(setting) for setting in active.rule_set.settings.entries],
                          "version": active.version})


async def get_setting(request: Request) -> Response:
    return json_response(_setting_plain(admin_services(request).rules.setting(_key(request))))


async def put_setting(request: Request) -> Response:
    services = admin_services(request)
    key = _key(request)
    body = setting_body(await read_json(request, max(services.settings.http.max_body_bytes, _MAX_BODY_BYTES)), "")
    secret = body.get("secret", False)
    activation = await services.rules.put_setting(key, body["value"], secret)
    return json_response({"key": key, "secret": secret, "version": activation.version,
                          "previous_version": activation.previous_version})


async def delete_setting(request: Request) -> Response:
    services = admin_services(request)
    key = _key(request)
    activation = await services.rules.delete_setting(key)
    return json_response({"key": key, "version": activation.version,
                          "previous_version": activation.previous_version})


async def bad_setting_path(request: Request) -> Response:
    """/admin/rules/settings/a/b, .../../x: never a key."""
    admin_services(request)
    check_key(request.path_params["key_path"])  # always raises: a path with a slash is no key
    raise InvalidRequest("must be a setting key", field="key")
