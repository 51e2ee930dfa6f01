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
    if _declared_length(request.headers.get("content-length")) > max_bytes:
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


def _declared_length(header: str | None) -> int:
    """The Content-Length as a number, 0 when absent or not ASCII digits (the streamed size is
    still capped). str.isdigit() also says yes to "\u00b2", which int() refuses, and int()
    refuses more than 4300 digits: only ASCII digits are read, and past 18 of them the
    body is too large whatever they say."""
    if header is None or not header.isascii() or not header.isdigit():
        return 0
    return int(header) if len(header) <= 18 else 1 << 62
