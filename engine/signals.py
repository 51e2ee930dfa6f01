"""Risk signals: turn a validated evaluation request into the plain payload rules receive, and
what the built-in triggers (engine/triggers.py) make of it.

The GeoIP lookup fills `connection.ip_country` and `connection.geo`; the user's history (the
directory's login events for /v1/login, the caller's `known_*` and `last_login*` fields for
/v1/evaluate: `request_history`) gives `context.risk`, whose figures stay None, not False, when
there is nothing to judge by: rules decide what unknown means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from engine import triggers
from engine.config import MfaSettings
from engine.geo import GeoLocator
from engine.triggers import CompletedMethod, History, LoginFacts, PastLogin, Place, Triggered

# Profile fields copied to the rule's `user` as they are.
_PROFILE_FIELDS = ("user_id", "username", "email", "email_verified", "name", "created_at", "last_login",
                   "logins_count", "app_metadata", "user_metadata", "factors", "groups")


def mask_phone(number: str | None) -> str | None:
    """'+15555551234' -> '+1 *** *** 1234': enough for a user to recognise, not to dial."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    national = str(parsed.national_number)
    return f"+{parsed.country_code} *** *** {national[-4:]}"


@dataclass(frozen=True, slots=True)
class Signals:
    """The rules' payload and the triggers' findings for one evaluation."""

    payload: dict[str, Any]
    triggered: Triggered


def _time(value: str | datetime) -> datetime:
    """An aware time; naive text is UTC, as rules read it (engine/rule_api.timestamp)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def request_history(user: Mapping[str, Any], now: datetime) -> History:
    """The history a /v1/evaluate caller supplies: `logins_count` (default 0), `known_device_ids`,
    `known_countries`, `known_client_ids` (each omitted: unknown; listed: seen within any window),
    and the previous login's time (`last_login`) and place (`last_login_geo`: latitude, longitude,
    accuracy_radius) for impossible travel."""
    def seen(field: str) -> dict[str, datetime] | None:
        return None if user.get(field) is None else dict.fromkeys(user[field], now)

    last = None
    if user.get("last_login"):
        geo = user.get("last_login_geo")
        place = Place(geo["latitude"], geo["longitude"], geo.get("accuracy_radius") or 0) if geo else None
        last = PastLogin(_time(user["last_login"]), None, None, place, None)
    clients = user.get("known_client_ids")
    return History(user.get("logins_count", 0), last, seen("known_device_ids"), seen("known_countries"),
                   None if clients is None else frozenset(clients))


def collect(user: Mapping[str, Any], context: Mapping[str, Any], geo: GeoLocator, now: datetime,
            mfa: MfaSettings, history: History | None) -> Signals:
    """Build the rule payload from a validated `user` and `context` (see engine/http/schema.py),
    and run the built-in triggers on it (`history` None: unknown)."""
    ip = context.get("ip")
    facts = geo.lookup(ip) if ip else None
    country = facts.country if facts else None
    logins_count = user.get("logins_count", 0)
    device_id = context.get("device_id")
    action = context.get("action", "login")
    methods = list(context.get("authentication_methods", ()))
    login = LoginFacts(str(user.get("user_id")), context.get("client_id"), device_id, country,
                       triggers.place_of(facts), now, action,
                       tuple(CompletedMethod(m["name"], _time(m["timestamp"])) for m in methods if m.get("timestamp")))
    triggered = triggers.evaluate(mfa.triggers, login, history)
    profile = {name: user[name] for name in _PROFILE_FIELDS if name in user}
    profile["phone_number_masked"] = mask_phone(user.get("phone_number"))
    return Signals({
        # mfa.policy: under "required" the rule host ignores disable() (engine/rule_api.py).
        "policy": mfa.policy,
        "user": profile,
        "context": {
            "connection": {"ip": ip, "ip_country": country, "geo": facts.to_plain() if facts else None},
            "request": {"user_agent": context.get("user_agent"), "device_id": device_id,
                        "hostname": context.get("hostname")},
            "client": {"client_id": context.get("client_id"), "name": context.get("client_name")},
            "action": action,
            "stats": {"logins_count": logins_count},
            "risk": triggered.risk.to_plain() | {"triggers": list(triggered.fired)},
            "authentication": {"methods": methods},
            "now": now.isoformat(),
        },
    }, triggered)
