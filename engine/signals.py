"""Risk signals: turn a validated evaluation request into the plain payload rules receive.

The GeoIP lookup fills `connection.ip_country` and `connection.geo`; history the caller
supplies (known devices and countries) gives `risk.new_device` and `risk.new_country`,
which stay None, not False, when there is no history to judge by: rules decide what
unknown means.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import phonenumbers

from engine.geo import GeoLocator

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


def collect(user: Mapping[str, Any], context: Mapping[str, Any], geo: GeoLocator, now: datetime) -> dict[str, Any]:
    """Build the rule payload from a validated `user` and `context` (see engine/http/schema.py)."""
    ip = context.get("ip")
    facts = geo.lookup(ip) if ip else None
    country = facts.country if facts else None
    logins_count = user.get("logins_count", 0)
    device_id = context.get("device_id")
    known_devices = user.get("known_device_ids")
    known_countries = user.get("known_countries")
    profile = {name: user[name] for name in _PROFILE_FIELDS if name in user}
    profile["phone_number_masked"] = mask_phone(user.get("phone_number"))
    return {
        "user": profile,
        "context": {
            "connection": {"ip": ip, "ip_country": country, "geo": facts.to_plain() if facts else None},
            "request": {"user_agent": context.get("user_agent"), "device_id": device_id,
                        "hostname": context.get("hostname")},
            "client": {"client_id": context.get("client_id"), "name": context.get("client_name")},
            "action": context.get("action", "login"),
            "stats": {"logins_count": logins_count},
            "risk": {
                "first_login": logins_count == 0,
                "new_device": None if device_id is None or known_devices is None else device_id not in known_devices,
                "new_country": None if country is None or known_countries is None else country not in known_countries,
            },
            "authentication": {"methods": list(context.get("authentication_methods", ()))},
            "now": now.isoformat(),
        },
    }
