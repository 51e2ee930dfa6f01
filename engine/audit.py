"""The audit trail's vocabulary and redaction rules: which events exist, who causes each, which
details each may carry, and how a detail is made safe to keep before it is built into an event.

Types are dotted, `subject.verb` (`lockout` stands alone). Actors: `user` (the person logging in,
through the application or the hosted pages), `admin` (the admin API or the `mfa-engine users`
CLI), `system` (the engine on its own: a lock, the rules folder watcher).

    type                        actor          details
    login.succeeded             user           client_id, amr: a token was issued
    login.failed                user           reason (unknown_user | wrong_password | denied |
                                               factor_locked), client_id, deny_reason (denied),
                                               retry_after_seconds (factor_locked)
    factor.challenged           user           factor_id, factor_type, sent (an SMS went out)
    factor.verified             user           factor_id, factor_type
    factor.failed               user           factor_id, factor_type, reason (invalid_code: a wrong,
                                               replayed or expired code or an unknown challenge, one
                                               answer as to the client)
    lockout                     system         scope (factor | password), retry_after_seconds:
                                               further attempts are refused (written once per lock)
    factor.enrolled             user           factor_id, factor_type, phone (masked)
    recovery_codes.generated    user           count: new codes replace the old ones
    step_up.succeeded           user           action, amr: a step-up passed its factor
    step_up.failed              user           action, reason (denied | factor_locked), deny_reason,
                                               retry_after_seconds
    factor.added                admin          factor_id, factor_type, phone (masked)
    factor.removed              admin, user    factor_id (a user: from the account pages)
    mfa.reset                   admin          (every factor, code and remembered browser removed)
    user.created                admin          username
    user.updated                admin          fields: the names of the changed fields, never values
    user.deleted                admin          username
    remembered_browser.revoked  admin          browser_id, or count (all of the user's)
    client.created              admin          client_id, name, redirect_uris, public: a hosted pages'
    client.updated              admin          application added or replaced (PUT /admin/clients/{id})
    client.deleted              admin          client_id
    rules.changed               admin, system  change (put | patch | delete | apply | reload | rollback
                                               | settings), version, previous_version, rules (ids
                                               added, changed, removed, enabled or disabled),
                                               settings (keys set or removed; never a value)

Every event also has its time, its user_id (None when no user is known: an unknown username, a
password throttle, a rule change), the address it came from (the end user's `context.ip`, or the
admin request's peer address) and, where a decision was taken, its decision_id
(GET /admin/decisions/{id}).

Redaction, before anything is stored:
- a type takes only the detail keys listed for it: a key not listed is a programming error
  (ValueError), so no call can slip a `code` or `password` in; `_NEVER` lists the names no type
  may ever list (checked when this module loads);
- values are None, booleans, integers, short text (at most 200 characters, control characters
  removed) or lists of at most 20 of those; anything else is a ValueError;
- `phone` is masked as users see it (`+1 *** *** 0123`), never kept whole.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from engine.signals import mask_phone
from engine.stores.audit_events import AuditEvent


class Actor(StrEnum):
    USER = "user"
    ADMIN = "admin"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class EventType:
    actors: tuple[Actor, ...]  # who may cause it; the first is the default
    details: frozenset[str]


def _type(actors: Actor | tuple[Actor, ...], *details: str) -> EventType:
    return EventType(actors if isinstance(actors, tuple) else (actors,), frozenset(details))


USER, ADMIN, SYSTEM = Actor.USER, Actor.ADMIN, Actor.SYSTEM
VOCABULARY: Mapping[str, EventType] = {
    "login.succeeded": _type(USER, "client_id", "amr"),
    "login.failed": _type(USER, "reason", "client_id", "deny_reason", "retry_after_seconds"),
    "factor.challenged": _type(USER, "factor_id", "factor_type", "sent"),
    "factor.verified": _type(USER, "factor_id", "factor_type"),
    "factor.failed": _type(USER, "factor_id", "factor_type", "reason"),
    "lockout": _type(SYSTEM, "scope", "retry_after_seconds"),
    "factor.enrolled": _type(USER, "factor_id", "factor_type", "phone"),
    "recovery_codes.generated": _type(USER, "count"),
    "step_up.succeeded": _type(USER, "action", "amr"),
    "step_up.failed": _type(USER, "action", "reason", "deny_reason", "retry_after_seconds"),
    "factor.added": _type(ADMIN, "factor_id", "factor_type", "phone"),
    "factor.removed": _type((ADMIN, USER), "factor_id"),
    "mfa.reset": _type(ADMIN),
    "user.created": _type(ADMIN, "username"),
    "user.updated": _type(ADMIN, "fields"),
    "user.deleted": _type(ADMIN, "username"),
    "remembered_browser.revoked": _type(ADMIN, "browser_id", "count"),
    "client.created": _type(ADMIN, "client_id", "name", "redirect_uris", "public"),
    "client.updated": _type(ADMIN, "client_id", "name", "redirect_uris", "public"),
    "client.deleted": _type(ADMIN, "client_id"),
    "rules.changed": _type((ADMIN, SYSTEM), "change", "version", "previous_version", "rules", "settings"),
}

# Names of what must never be kept. No type lists one (checked below), whatever a later change adds.
_NEVER = frozenset({"password", "password_hash", "code", "codes", "recovery_code", "recovery_codes", "secret",
                    "token", "user_token", "enrollment_token", "remember_token", "api_key", "phone_number",
                    "value"})
for _name, _kind in VOCABULARY.items():
    if _kind.details & _NEVER:  # pragma: no cover - a vocabulary mistake stops the engine at import
        raise RuntimeError(f"audit type {_name} lists a secret detail: {sorted(_kind.details & _NEVER)}")

MAX_TEXT = 200
MAX_ITEMS = 20
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
Detail = None | bool | int | str | list[None | bool | int | str]

# The admin request being served (set by engine/http/admin.admin_only around every /admin call):
# its peer address, so that the use cases behind it (engine/user_admin.py, engine/rule_ops.py)
# need not carry it. A ContextVar: each request is a task with its own copy.
_ADMIN_ADDRESS: ContextVar[str | None] = ContextVar("mfa_admin_address", default=None)


@contextlib.contextmanager
def admin_request(ip: str | None) -> Iterator[None]:
    """Events an admin causes inside this block come from `ip`."""
    token = _ADMIN_ADDRESS.set(ip)
    try:
        yield
    finally:
        _ADMIN_ADDRESS.reset(token)


def event(type_: str, at: datetime, *, actor: Actor | None = None, user_id: str | None = None,
          ip: str | None = None, decision_id: str | None = None, **details: object) -> AuditEvent:
    """An event of `type_`, its details redacted; ValueError for an unknown type, an actor the
    type does not allow, a detail key it does not list, or a value that is not plain."""
    kind = VOCABULARY.get(type_)
    if kind is None:
        raise ValueError(f"unknown audit event type {type_!r}")
    who = kind.actors[0] if actor is None else actor
    if who not in kind.actors:
        raise ValueError(f"{type_} is not caused by {who}")
    unknown = sorted(set(details) - kind.details)
    if unknown:
        raise ValueError(f"{type_} takes no detail {', '.join(unknown)}")
    if who is Actor.ADMIN and ip is None:
        ip = _ADMIN_ADDRESS.get()
    kept = {key: _redacted(key, value) for key, value in sorted(details.items()) if value is not None}
    return AuditEvent(at, type_, who.value, user_id, _text(ip, 64), decision_id, kept)


def _redacted(key: str, value: object) -> Detail:
    if key == "phone":
        return mask_phone(value) if isinstance(value, str) else None
    if isinstance(value, list | tuple):
        return [_plain(key, item) for item in value[:MAX_ITEMS]]
    return _plain(key, value)


def _plain(key: str, value: object) -> None | bool | int | str:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _text(value, MAX_TEXT)
    raise ValueError(f"audit detail {key} must be plain, not {type(value).__name__}")


def _text(value: str | None, limit: int) -> str | None:
    return None if value is None else _CONTROLS.sub("", value)[:limit]
