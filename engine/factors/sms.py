"""SMS one-time codes: generated from `secrets`, worded for the message, stored only as a keyed hash."""

from __future__ import annotations

import secrets
from collections.abc import Callable

CODE_DIGITS = 6
MAC_PURPOSE = "sms-code"


def new_code() -> str:
    """Six digits drawn uniformly from `secrets` (leading zeros kept: '004217')."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def message_body(code: str, issuer: str, ttl_seconds: int = 300, origin: str | None = None) -> str:
    """The text sent to the phone; with `origin` (a host name) it ends in the WebOTP line '@host #code'."""
    minutes = ttl_seconds // 60  # rounded down: never promise more time than the store grants
    expiry = f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"{ttl_seconds} seconds"
    body = f"{code} is your {issuer} sign-in code. It expires in {expiry}."
    if origin:
        # WebOTP (origin-bound one-time codes): browsers offer the code only on this host.
        body += f"\n\n@{origin} #{code}"
    return body


def code_hash(mac: Callable[..., str], challenge_id: str, factor_id: str, code: str) -> str:
    """The stored form of a sent code: a keyed MAC (Keyring.mac) bound to its challenge and phone factor.

    Binding both ids means a hash copied to another challenge or factor never verifies.
    """
    return mac(MAC_PURPOSE, challenge_id, factor_id, code)
