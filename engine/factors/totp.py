"""Authenticator-app codes (RFC 6238 TOTP): secrets, provisioning URIs, QR codes, and the time step a code matches."""

from __future__ import annotations

import base64
import hmac
import io
import logging
import secrets
from urllib.parse import quote, urlencode

import pyotp
import segno

# The parameters every mainstream app (Google Authenticator, Authy, 1Password, Microsoft
# Authenticator) honours; several ignore algorithm/digits/period and assume these anyway.
DIGITS = 6
PERIOD_SECONDS = 30
ALGORITHM = "SHA1"
SECRET_BYTES = 20  # 160 bits: RFC 4226 section 4 recommends it, and it encodes to 32 base32 characters, no padding
# RFC 6238 section 5.2: allow one step of drift either side of the current one.
DRIFT_STEPS = 1
# pyotp refuses shorter secrets (OTP.byte_secret, NIST SP 800-63B): 23 base32 characters.
MIN_SECRET_BITS = 112

log = logging.getLogger("engine.factors.totp")


def secret_problem(secret: str) -> str | None:
    """Why pyotp cannot compute codes from `secret` (base32, padding optional), or None when it can.

    pyotp is the judge (it decides at every verify); the text says why, without the secret."""
    try:
        pyotp.HOTP(secret, digits=DIGITS)
    except ValueError:  # binascii.Error, a length that leaves a partial byte, is one
        characters = len(secret.rstrip("="))
        if characters % 8 in (1, 3, 6):
            return (f"is not whole base32: {characters} characters leave a partial byte "
                    "(a base32 length is never 1, 3 or 6 more than a multiple of 8)")
        return (f"must hold at least {MIN_SECRET_BITS} bits for authenticator codes: "
                f"at least 23 base32 characters (32 recommended), not {characters}")
    return None


def new_secret() -> str:
    """A fresh 160-bit secret from `secrets`, base32 without padding (what provisioning URIs carry)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    """The otpauth://totp/ URI of Google's Key URI Format, with every parameter spelled out.

    Raises ValueError when the issuer or the account name holds a colon, the label's separator.
    """
    if ":" in issuer or ":" in account_name:
        raise ValueError("issuer and account_name may not contain ':' (the otpauth label separator)")
    label = f"{quote(issuer, safe='')}:{quote(account_name, safe='@')}"
    # quote_via=quote writes spaces as %20: some apps show a literal '+' for the form encoding.
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": ALGORITHM, "digits": DIGITS,
                       "period": PERIOD_SECONDS}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """A standalone SVG document (no XML declaration, so it can be inlined in HTML) of the URI's QR code."""
    # micro=False: phone cameras and authenticator apps do not read Micro QR codes.
    code = segno.make(uri, error="m", micro=False)
    out = io.BytesIO()
    # Explicit light modules and the 4-module quiet zone keep it scannable on dark pages.
    code.save(out, kind="svg", xmldecl=False, svgns=True, nl=False, scale=5, border=4, dark="#000", light="#fff",
              title="Scan with your authenticator app", encoding="utf-8")
    return out.getvalue().decode("utf-8")


def match_step(secret: str, code: str, now: float, drift_steps: int = DRIFT_STEPS, *,
               factor_id: str | None = None) -> int | None:
    """The time step (unix seconds // 30) within `drift_steps` of `now` whose code is `code`, or None.

    A code that is not exactly six ASCII digits matches nothing. The caller keeps the returned
    step to refuse replays (a step at or below the last accepted one). A stored secret pyotp
    refuses (imported before the admin API checked it, or written by another tool) matches
    nothing either, logged as totp_secret_unusable with `factor_id`: fail closed, never a 500.
    """
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    current = int(now // PERIOD_SECONDS)
    try:
        key = _key(secret)
    except ValueError:
        log.warning("totp_secret_unusable factor_id=%s reason=%s (re-import or re-enroll the factor)",
                    factor_id, "not whole base32 or under 112 bits")
        return None
    typed = code.encode("ascii")
    matched: int | None = None
    # Every candidate is computed and compared in constant time, so the time taken does not
    # tell which step (if any) matched.
    for step in range(current - drift_steps, current + drift_steps + 1):
        if step < 0:
            continue
        if hmac.compare_digest(_hotp(key, step), typed) and matched is None:
            matched = step
    return matched


def _key(secret: str) -> bytes:
    """The secret's bytes, decoded and judged as pyotp's OTP.byte_secret does (base32 in either
    case, padding optional, at least MIN_SECRET_BITS; ValueError otherwise), once: pyotp's HOTP
    decodes it in its constructor to check it, again in byte_secret, and again in every `at`
    (base64.b32decode is pure Python)."""
    decoded = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    if len(decoded) * 8 < MIN_SECRET_BITS:
        raise ValueError(f"secrets must hold at least {MIN_SECRET_BITS} bits")
    return decoded


def _hotp(key: bytes, counter: int) -> bytes:
    """RFC 4226 section 5.3 (SHA-1, DIGITS digits); RFC 6238 section 4.2: TOTP is HOTP over the time step."""
    digest = hmac.digest(key, counter.to_bytes(8, "big"), "sha1")
    offset = digest[-1] & 0x0F
    truncated = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF
    return b"%0*d" % (DIGITS, truncated % 10**DIGITS)


def last_matchable_step(at: float) -> int:
    """The latest time step a code accepted at `at` (unix seconds) can have matched."""
    return int(at // PERIOD_SECONDS) + DRIFT_STEPS
