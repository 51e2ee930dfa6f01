"""Validation of request bodies: every field checked for type and bounds, unknown fields refused.

A failure raises InvalidRequest naming the dotted field (`user.logins_count`) and what
was expected, never echoing the submitted value.

Text fields, and the characters each kind may carry (engine/formats.py says why; issue 6, item 9):

  identifier   every id, code, token, username, email, phone number, country, action, device and
               client id, group, hostname, authentication method name, timestamp and IP address:
               printable, no space at either end (formats.is_identifier). Zero-width and format
               characters, no-break spaces, bidi marks and line breaks are refused, so two values
               that look alike are the same value. Patterns are matched whole (fullmatch).
  free text    `name`, `user.name`, `context.user_agent`, `context.client_name`: what people and
               browsers write. Emoji sequences, joiners (ZWNJ in Persian names), no-break spaces
               and LRM/RLM are kept; controls (NUL, CR, LF, TAB, ESC, C1), U+2028/U+2029 and bidi
               embeddings, overrides and isolates are refused (formats.is_free_text).
  secret       `password`: anything a user can type, format characters included, but no controls
               or line separators (formats.is_secret_text). Refused when a password is set and
               at login alike: no password with a control character can exist.
  free data    `app_metadata`, `user_metadata`: JSON objects the application owns, bounded by
               depth and body size (and, stored through the admin API, by the 16 KiB rules are
               held to: engine/metadata.py), handed to rules as data, never used as an identifier.

A refusal is 400 `invalid_request` with `field`, like every other schema error.

The schemas below are data (engine/http/schema_checks.py: Obj, ListOf, Text, Count...), the one
source of each body's shape. Each Obj is compiled once, at import, into one straight-line
function (engine/http/schema_compile.py) that accepts exactly what its declaration accepts;
every refusal is left to the declaration's reference reading, which alone says which field
and why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from engine import formats, metadata
from engine.errors import InvalidRequest
from engine.flow import EvaluateRequest, StepUpRequest
from engine.http.json_schema import described
from engine.http.schema_checks import Boolean, Choice, Count, Degrees, ListOf, Obj, Text, TextKind
from engine.http.schema_compile import Check as Check
from engine.rule_api import FACTOR_ALIASES

MAX_METADATA_DEPTH = 8


def text(max_length: int, pattern: re.Pattern[str] | None = None, kind: TextKind = TextKind.IDENTIFIER) -> Text:
    return Text(max_length, pattern, kind)


def degrees(limit: float) -> Degrees:
    return Degrees(limit)


def choice(*options: str) -> Choice:
    return Choice({option: option for option in options})


def list_of(item: Check, max_items: int) -> ListOf:
    return ListOf(item, max_items)


def obj(fields: Mapping[str, Check], required: frozenset[str] = frozenset()) -> Obj:
    return Obj(fields, required)


boolean = Boolean()
count = Count(10**12)
factor = Choice(FACTOR_ALIASES)


# Dates the engine accepts from clients, in UTC: wide enough for any account's history, and
# far enough from datetime's own limits that rules can add a year or subtract a century.
EARLIEST_TIMESTAMP = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)


@described({"type": "string", "format": "date-time", "maxLength": 64,
            "description": f"ISO 8601 date-time with a time zone, from {EARLIEST_TIMESTAMP.year} to "
                           f"{LATEST_TIMESTAMP.year} (UTC)"})
def timestamp(value: Any, path: str) -> str:
    # fromisoformat accepts "2026-01-01T00:00:00\n+00:00": refuse what an identifier may not hold first.
    if type(value) is not str or len(value) > 64 or not formats.is_identifier(value):
        raise InvalidRequest("must be an ISO 8601 date-time with a time zone", field=path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("must be an ISO 8601 date-time with a time zone", field=path) from None
    if parsed.tzinfo is None:
        raise InvalidRequest("must carry a time zone (e.g. Z or +00:00)", field=path)
    # Year 1 at +01:00 and year 9999 at -01:00 parse, and then overflow when turned into UTC,
    # which the rules' view of the payload does: that crashed workers (issue 7, item 1).
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST_TIMESTAMP <= instant <= LATEST_TIMESTAMP:
        raise InvalidRequest(f"must lie between {EARLIEST_TIMESTAMP.year} and {LATEST_TIMESTAMP.year}", field=path)
    if _CANONICAL_UTC.fullmatch(value) and (instant.microsecond != 0) == (len(value) == _WITH_MICROSECONDS):
        return value
    return instant.isoformat()


# A UTC time as isoformat writes it (microseconds only when there are some) is already its own
# normal form, which isoformat would take about 0.8 us to write again.
_CANONICAL_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?\+00:00")
_WITH_MICROSECONDS = len("2026-01-01T00:00:00.000001+00:00")


# Dotted-quad IPv4 as ipaddress writes it (no leading zeros, each octet 0..255): such text is
# already its own normal form, which ipaddress would take about 5 us to confirm.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


@described({"type": "string", "maxLength": 64, "description": "an IPv4 or IPv6 address, without a zone index"})
def ip_address(value: Any, path: str) -> str:
    # No zone index ("fe80::1%eth0"): it means nothing off the client's host, may hold any
    # character, and would make one address many strings.
    if type(value) is not str or len(value) > 64 or "%" in value:
        raise InvalidRequest("must be an IPv4 or IPv6 address", field=path)
    if _CANONICAL_IPV4.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidRequest("must be an IPv4 or IPv6 address", field=path) from None


@described({"type": "object", "description": f"any JSON object, at most {MAX_METADATA_DEPTH} levels deep"})
def json_object(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise InvalidRequest("must be a JSON object", field=path)
    if not _fits(value, MAX_METADATA_DEPTH):
        raise InvalidRequest(f"nests more than {MAX_METADATA_DEPTH} levels", field=path)
    return value


@described({"type": "object", "description": f"any JSON object, at most {MAX_METADATA_DEPTH} levels deep and "
                                            f"{metadata.MAX_BYTES} bytes as JSON"})
def stored_metadata(value: Any, path: str) -> dict[str, Any]:
    """A user's metadata as the directory keeps it: at most metadata.MAX_BYTES as JSON, the bound
    rules are held to when they change it (docs/rules.md, 'Rules that remember')."""
    checked = json_object(value, path)
    try:
        too_large = metadata.size(checked) > metadata.MAX_BYTES
    except ValueError:  # text JSON cannot carry (a lone surrogate)
        raise InvalidRequest("must be plain JSON data", field=path) from None
    if too_large:
        raise InvalidRequest(f"must be at most {metadata.MAX_BYTES} bytes as JSON", field=path)
    return checked


def _fits(container: dict[str, Any] | list[Any], levels: int) -> bool:
    """Whether everything inside `container` lies within `levels` lists or objects of it. Only
    lists and objects are called on: nearly every metadata value is a scalar."""
    if not container:
        return True
    if levels == 0:
        return False  # it holds something, and no level is left for it
    for child in container.values() if type(container) is dict else container:
        if (type(child) is dict or type(child) is list) and not _fits(child, levels - 1):
            return False
    return True


def field_paths(check: Check, path: str = "") -> Iterator[str]:
    """Every leaf field a schema declares, named as errors name them (`user.groups[0]`)."""
    if isinstance(check, Obj):
        for key, child in check.fields.items():
            yield from field_paths(child, f"{path}.{key}" if path else key)
    elif isinstance(check, ListOf):
        yield from field_paths(check.item, f"{path}[0]")
    else:
        yield path


_FREE, _SECRET = TextKind.FREE, TextKind.SECRET
_PHONE = text(16, formats.PHONE_E164)

_method = obj({"name": text(32), "timestamp": timestamp}, frozenset({"name", "timestamp"}))

USER = obj({
    "user_id": text(256), "username": text(256), "email": text(320), "email_verified": boolean,
    "name": text(256, kind=_FREE), "phone_number": _PHONE, "created_at": timestamp, "last_login": timestamp,
    "logins_count": count, "app_metadata": json_object, "user_metadata": json_object, "factors": list_of(factor, 8),
    "groups": list_of(text(256), 256), "known_device_ids": list_of(text(256), 1000),
    "known_countries": list_of(text(2, formats.COUNTRY), 300), "known_client_ids": list_of(text(256), 1000),
    # Where the previous login was (with `last_login`, its time): impossible travel (engine/triggers.py).
    "last_login_geo": obj({"latitude": degrees(90), "longitude": degrees(180), "accuracy_radius": count},
                          frozenset({"latitude", "longitude"})),
}, frozenset({"user_id"}))

CONTEXT = obj({
    "ip": ip_address, "user_agent": text(1024, kind=_FREE), "device_id": text(256),
    "action": text(64, formats.ACTION), "client_id": text(256), "client_name": text(256, kind=_FREE),
    "hostname": text(253, formats.HOSTNAME), "authentication_methods": list_of(_method, 16),
})


_EVALUATE = obj({"user": USER, "context": CONTEXT}, frozenset({"user"}))


def parse_evaluate(body: Any) -> EvaluateRequest:
    fields = _EVALUATE(body, "")
    return EvaluateRequest(fields["user"], fields.get("context", {}))


def parse_step_up(body: Any) -> StepUpRequest:
    fields = _STEP_UP(body, "")
    if fields["action"] == "login":
        raise InvalidRequest("must name the sensitive action, not login (a login is POST /v1/login)", field="action")
    return StepUpRequest(fields["user_token"], fields["action"], fields.get("context", {}))


_ID = text(128, formats.OPAQUE_ID)
_PASSWORD = text(1024, kind=_SECRET)

# Only a login takes a remember token (engine/remembered.py): evaluate, step-up and the factor
# calls refuse one as an unknown field. A login's methods are its own (the password, as it is
# typed): a caller's authentication_methods would let it claim a factor it never passed.
_LOGIN_CONTEXT = obj({**{name: check for name, check in CONTEXT.fields.items() if name != "authentication_methods"},
                      "remember_token": text(512)})
LOGIN = obj({"username": text(256), "password": _PASSWORD, "client_id": text(256), "context": _LOGIN_CONTEXT},
            frozenset({"username", "password", "client_id"}))
CHALLENGE = obj({"challenge_id": _ID, "factor_id": _ID, "client_id": text(256), "context": CONTEXT},
                frozenset({"challenge_id", "factor_id"}))
VERIFY = obj({"challenge_id": _ID, "factor_id": _ID, "code": text(32), "client_id": text(256), "context": CONTEXT,
              "remember_browser": boolean}, frozenset({"challenge_id", "factor_id", "code"}))
# The phone is parsed and rewritten to E.164 by enrollment (it may be typed "+1 415 555 0123").
ENROLL = obj({"factor": choice("otp", "totp", "sms"), "phone_number": text(32), "enrollment_token": _ID,
              "user_token": text(8192), "context": CONTEXT}, frozenset({"factor"}))
CONFIRM = obj({"enrollment_id": _ID, "code": text(32)}, frozenset({"enrollment_id", "code"}))
# A step-up's action is its own field; the methods come from the token, never from the caller.
_STEP_UP_CONTEXT = obj({name: check for name, check in CONTEXT.fields.items()
                        if name not in ("action", "authentication_methods")})
_STEP_UP = obj({"user_token": text(8192), "action": text(64, formats.ACTION), "context": _STEP_UP_CONTEXT},
               frozenset({"user_token", "action"}))
USER_TOKEN = obj({"user_token": text(8192)}, frozenset({"user_token"}))

_PROFILE: dict[str, Check] = {
    "email": text(320), "email_verified": boolean, "name": text(256, kind=_FREE), "phone_number": _PHONE,
    "app_metadata": stored_metadata, "user_metadata": stored_metadata,
}
NEW_USER = obj({"username": text(128, formats.USERNAME), "password": _PASSWORD, **_PROFILE},
               frozenset({"username", "password"}))
USER_CHANGES = obj({"password": _PASSWORD, **_PROFILE})
NEW_FACTOR = obj({"type": choice("otp", "totp", "sms"), "phone_number": _PHONE,
                  "secret": text(160, formats.BASE32_SECRET)}, frozenset({"type"}))

# Every request body, by the name of its route (engine/http/routes.py).
BODIES: dict[str, Obj] = {
    "evaluate": _EVALUATE, "login": LOGIN, "mfa_challenge": CHALLENGE, "mfa_verify": VERIFY, "mfa_enroll": ENROLL,
    "mfa_enroll_confirm": CONFIRM, "mfa_recovery_codes": USER_TOKEN, "step_up": _STEP_UP,
    "admin_create_user": NEW_USER,
    "admin_update_user": USER_CHANGES, "admin_add_factor": NEW_FACTOR,
    # An authorization code of the hosted pages for its login's token (engine/authcodes.py).
    "token": obj({"code": text(64), "client_id": text(128, formats.CLIENT_ID), "redirect_uri": text(2048),
                  "code_verifier": text(128)}, frozenset({"code", "client_id", "redirect_uri"})),
}


def parse(schema: Check, body: Any) -> dict[str, Any]:
    return schema(body, "")  # type: ignore[no-any-return]
