"""Recovery codes: generated once per enrolment, shown as 'xxxxx-xxxxx', stored only as keyed hashes."""

from __future__ import annotations

import secrets
from collections.abc import Callable

# No 0/o, 1/i/l: codes are read off paper and typed back by people.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_LENGTH = 10  # 31**10, about 49.5 bits each; guessing is also bounded by the lockout
MAC_PURPOSE = "recovery-code"


def generate(count: int) -> list[str]:
    """`count` distinct fresh codes, formatted for display ('k7m2p-x9qra')."""
    codes: list[str] = []
    while len(codes) < count:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        shown = f"{raw[:5]}-{raw[5:]}"
        if shown not in codes:
            codes.append(shown)
    return codes


def normalize(code: str) -> str | None:
    """The canonical form of a typed code (no dashes or spaces, lower case), or None if it cannot be one."""
    compact = code.strip().replace("-", "").replace(" ", "")
    # ASCII before lower(): lower() maps some non-ASCII letters (the Kelvin sign) onto ASCII ones.
    if not compact.isascii():
        return None
    compact = compact.lower()
    if len(compact) != CODE_LENGTH or any(ch not in ALPHABET for ch in compact):
        return None
    return compact


def code_hash(mac: Callable[..., str], user_id: str, normalized: str) -> str:
    """The stored form of a recovery code: a keyed MAC (Keyring.mac) bound to its user."""
    return mac(MAC_PURPOSE, user_id, normalized)


def code_hashes(macs: Callable[..., tuple[str, ...]], user_id: str, normalized: str) -> tuple[str, ...]:
    """Every stored form the code may have (Keyring.macs): under secrets.key, then under each of
    secrets.previous_keys, for codes issued before a rotation."""
    return macs(MAC_PURPOSE, user_id, normalized)
