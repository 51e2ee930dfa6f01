"""Bearer-key checks for the application API."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.requests import Request

from engine.errors import Unauthorized


def require_bearer(request: Request, keys: Sequence[bytes]) -> None:
    """Accept `Authorization: Bearer <key>` for any configured key, in constant time."""
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    presented_bytes = presented.strip().encode()
    # Compare against every key without stopping early: timing reveals neither which key
    # matched nor how long a prefix was right.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented_bytes, key)
    if scheme.lower() != "bearer" or not matched:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
