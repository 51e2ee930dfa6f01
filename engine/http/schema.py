"""Validation of request bodies: every field checked for type and bounds, unknown fields refused.

A failure raises InvalidRequest naming the dotted field (`user.logins_count`) and what
was expected, never echoing the submitted value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from engine.errors import InvalidRequest
from engine.flow import EvaluateRequest
from engine.rule_api import FACTOR_ALIASES

Check = Callable[[Any, str], Any]

_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_METADATA_DEPTH = 8


def text(max_length: int, pattern: re.Pattern[str] | None = None) -> Check:
    def check(value: Any, path: str) -> str:
        if type(value) is not str or not 0 < len(value) <= max_length:
            raise InvalidRequest(f"must be a string of 1 to {max_length} characters", field=path)
        if pattern is not None and not pattern.match(value):
            raise InvalidRequest("has the wrong format", field=path)
        return value
    return check


def boolean(value: Any, path: str) -> bool:
    if type(value) is not bool:
        raise InvalidRequest("must be true or false", field=path)
    return value


def count(value: Any, path: str) -> int:
    if type(value) is not int or not 0 <= value <= 10**12:
        raise InvalidRequest("must be a non-negative integer", field=path)
    return value


def timestamp(value: Any, path: str) -> str:
    if type(value) is not str or len(value) > 64:
        raise InvalidRequest("must be an ISO 8601 date-time with a time zone", field=path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("must be an ISO 8601 date-time with a time zone", field=path) from None
    if parsed.tzinfo is None:
        raise InvalidRequest("must carry a time zone (e.g. Z or +00:00)", field=path)
    return parsed.isoformat()


def ip_address(value: Any, path: str) -> str:
    if type(value) is not str or len(value) > 64:
        raise InvalidRequest("must be an IPv4 or IPv6 address", field=path)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidRequest("must be an IPv4 or IPv6 address", field=path) from None


def json_object(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise InvalidRequest("must be a JSON object", field=path)
    _check_depth(value, path, MAX_METADATA_DEPTH)
    return value


def _check_depth(value: Any, path: str, depth: int) -> None:
    if depth < 0:
        raise InvalidRequest(f"nests more than {MAX_METADATA_DEPTH} levels", field=path)
    children = value.values() if type(value) is dict else value if type(value) is list else ()
    for child in children:
        _check_depth(child, path, depth - 1)


def list_of(item: Check, max_items: int) -> Check:
    def check(value: Any, path: str) -> list[Any]:
        if type(value) is not list or len(value) > max_items:
            raise InvalidRequest(f"must be a list of at most {max_items} items", field=path)
        return [item(element, f"{path}[{index}]") for index, element in enumerate(value)]
    return check


def factor(value: Any, path: str) -> str:
    if type(value) is not str or value not in FACTOR_ALIASES:
        raise InvalidRequest(f"must be one of {', '.join(FACTOR_ALIASES)}", field=path)
    return FACTOR_ALIASES[value]


def obj(fields: Mapping[str, Check], required: frozenset[str] = frozenset()) -> Check:
    def check(value: Any, path: str) -> dict[str, Any]:
        prefix = f"{path}." if path else ""
        if type(value) is not dict:
            raise InvalidRequest("must be a JSON object", field=path or None)
        for key in value:
            if key not in fields:
                raise InvalidRequest("is not a known field", field=f"{prefix}{key}")
        present = {key: element for key, element in value.items() if element is not None}
        for key in sorted(required - present.keys()):
            raise InvalidRequest("is required", field=f"{prefix}{key}")
        return {key: fields[key](element, f"{prefix}{key}") for key, element in present.items()}
    return check


_method = obj({"name": text(32), "timestamp": timestamp}, frozenset({"name", "timestamp"}))

USER = obj({
    "user_id": text(256), "username": text(256), "email": text(320), "email_verified": boolean, "name": text(256),
    "phone_number": text(16, _PHONE), "created_at": timestamp, "last_login": timestamp, "logins_count": count,
    "app_metadata": json_object, "user_metadata": json_object, "factors": list_of(factor, 8),
    "groups": list_of(text(256), 256), "known_device_ids": list_of(text(256), 1000),
    "known_countries": list_of(text(2, _COUNTRY), 300),
}, frozenset({"user_id"}))

CONTEXT = obj({
    "ip": ip_address, "user_agent": text(1024), "device_id": text(256), "action": text(64, _ACTION),
    "client_id": text(256), "client_name": text(256), "hostname": text(253),
    "authentication_methods": list_of(_method, 16),
})


_EVALUATE = obj({"user": USER, "context": CONTEXT}, frozenset({"user"}))


def parse_evaluate(body: Any) -> EvaluateRequest:
    fields = _EVALUATE(body, "")
    return EvaluateRequest(fields["user"], fields.get("context", {}))


def choice(*options: str) -> Check:
    def check(value: Any, path: str) -> str:
        if type(value) is not str or value not in options:
            raise InvalidRequest(f"must be one of {', '.join(options)}", field=path)
        return value
    return check


_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_ID = text(128, re.compile(r"^[A-Za-z0-9_-]+$"))
_BASE32 = re.compile(r"^[A-Z2-7]{16,128}=*$")

LOGIN = obj({"username": text(256), "password": text(1024), "client_id": text(256), "context": CONTEXT},
            frozenset({"username", "password", "client_id"}))
CHALLENGE = obj({"challenge_id": _ID, "factor_id": _ID, "client_id": text(256), "context": CONTEXT},
                frozenset({"challenge_id", "factor_id"}))
VERIFY = obj({"challenge_id": _ID, "factor_id": _ID, "code": text(32), "client_id": text(256), "context": CONTEXT},
             frozenset({"challenge_id", "factor_id", "code"}))
ENROLL = obj({"factor": choice("otp", "totp", "sms"), "phone_number": text(32), "enrollment_token": _ID,
              "user_token": text(8192), "context": CONTEXT}, frozenset({"factor"}))
CONFIRM = obj({"enrollment_id": _ID, "code": text(32)}, frozenset({"enrollment_id", "code"}))
USER_TOKEN = obj({"user_token": text(8192)}, frozenset({"user_token"}))

_PROFILE: dict[str, Check] = {
    "email": text(320), "email_verified": boolean, "name": text(256), "phone_number": text(16, _PHONE),
    "app_metadata": json_object, "user_metadata": json_object,
}
NEW_USER = obj({"username": text(128, _USERNAME), "password": text(1024), **_PROFILE},
               frozenset({"username", "password"}))
USER_CHANGES = obj({"password": text(1024), **_PROFILE})
NEW_FACTOR = obj({"type": choice("otp", "totp", "sms"), "phone_number": text(16, _PHONE),
                  "secret": text(160, _BASE32)}, frozenset({"type"}))


def parse(schema: Check, body: Any) -> dict[str, Any]:
    return schema(body, "")  # type: ignore[no-any-return]
