"""Reading request bodies: size-capped while streaming, time-bounded, JSON objects only."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import InvalidJson, PayloadTooLarge, RequestTimeout, UnsupportedMediaType


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


class BodyDeadline:
    """ASGI middleware: a request's whole body must arrive within `timeout_ms` of its headers.

    A read past the deadline raises RequestTimeout (408, connection closed). Without it a
    client that sends half a body and stalls holds its request for ever, and uvicorn's
    graceful shutdown waits for that request. The deadline covers the whole body, not each
    read, so a client trickling a byte at a time cannot stretch it; once the body is in,
    later reads (waiting for a disconnect) are not bounded.

    Waiting reads are checked by one sweep every `tick` (a quarter of the timeout, at most a
    second), not by a timer each: nearly every body is already in when it is read, and a
    timer per read (asyncio.timeout) made this middleware cost about 5.5 us a request instead
    of about 2 us. A late body is answered between its deadline and one tick after it.
    """

    def __init__(self, app: ASGIApp, timeout_ms: int) -> None:
        self.app = app
        self.timeout_ms = timeout_ms
        self._tick = min(timeout_ms / 4000, 1.0)
        self._reading: dict[asyncio.Task[Any], float] = {}  # tasks awaiting body bytes -> deadline
        self._timed_out: set[asyncio.Task[Any]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_loop: asyncio.AbstractEventLoop | None = None  # an app may outlive its loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_ms / 1000
        await self.app(scope, self._receive_before(deadline, receive), send)

    def _receive_before(self, deadline: float, receive: Receive) -> Receive:
        body_complete = False

        async def receive_in_time() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            task = asyncio.current_task()
            assert task is not None
            cancelled_before = task.cancelling()
            self._reading[task] = deadline
            loop = asyncio.get_running_loop()
            if self._sweep is None or self._sweep_loop is not loop:
                self._sweep, self._sweep_loop = loop.call_later(self._tick, self._cancel_late_reads), loop
            try:
                message = await receive()
            except asyncio.CancelledError:
                # The sweep's cancellation and no one else's (the shutdown's): a late body.
                if task in self._timed_out and task.uncancel() <= cancelled_before:
                    raise RequestTimeout(f"the body did not arrive within {self.timeout_ms} ms") from None
                raise
            finally:
                del self._reading[task]
                if self._timed_out:
                    self._timed_out.discard(task)
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return receive_in_time

    def _cancel_late_reads(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in self._reading.items():
            if deadline <= now and task not in self._timed_out:
                self._timed_out.add(task)
                task.cancel()
        self._sweep = loop.call_later(self._tick, self._cancel_late_reads) if self._reading else None
