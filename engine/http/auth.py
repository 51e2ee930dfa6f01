"""Bearer-key checks for the application API and the admin API."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.requests import Request

from engine.errors import Unauthorized

# Optional whitespace around a header value (RFC 9110 5.6.3). Not str.strip(): that also drops
# vertical tabs, file separators, NEL and no-break spaces, so "<key>\x0b" was accepted as "<key>".
_OWS = " \t"


def presented_bearer(request: Request) -> bytes | None:
    """The credential of `Authorization: Bearer <credential>`, or None for another scheme."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return presented.strip(_OWS).encode()


def require_bearer(request: Request, keys: Sequence[bytes]) -> None:
    """Accept `Authorization: Bearer <key>` for any configured key, in constant time."""
    presented = presented_bearer(request)
    # Compare against every key without stopping early: timing reveals neither which key
    # matched nor how long a prefix was right.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented or b"", key)
    if presented is None or not matched:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
