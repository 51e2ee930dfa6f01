"""Reading request bodies: size-capped while streaming, JSON objects only."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from engine.errors import InvalidJson, PayloadTooLarge, UnsupportedMediaType


async def read_json(request: Request, max_bytes: int) -> Any:
    """The parsed JSON body; 413 past `max_bytes` (checked before and while reading), 400 if not JSON."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise InvalidJson("the body is not valid JSON") from None
