"""One log line per request (`request method=... path=... status=...`), written off the event loop.

uvicorn's access log stays off (a line formatted on the event loop per request). This line
is the engine's own: ErrorBoundary hands its values over once the response is sent (a
tuple put on a queue, under a microsecond), and a thread of this module turns them into
log records for the configured handlers: building, formatting and writing a record costs
40-55 us of CPU, which the event loop does not spend. The thread still shares the GIL;
it only runs when the loop is waiting or between its steps.

Request ids come from the client's `X-Request-ID` when it is sane (visible ASCII without
quotes or backslashes, at most 128 characters: it is echoed in a header and in log lines),
else are generated.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
from collections.abc import Iterable

log = logging.getLogger("engine.request")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[!#-\[\]-~]{1,128}")
MAX_PATH_CHARS = 256
_TEMPLATE = "request method=%s path=%s route=%s status=%s duration_ms=%.3f request_id=%s user_id=%s"

# method, path, route, status, duration_ms, request_id, user_id, created (time.time())
Entry = tuple[str, str, str, int, float, str, str | None, float]


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when sane, else a fresh one. A correlation id, not a secret:
    the fast generator will do (os.urandom is a system call)."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{random.getrandbits(64):016x}"


def printable_path(path: str) -> str:
    """The path as a log value: as sent when it is printable ASCII without spaces, else its
    escaped form (a decoded %0A must not start a line of its own in a text log); bounded."""
    if not (path.isascii() and path.isprintable() and " " not in path):
        path = ascii(path)
    return path if len(path) <= MAX_PATH_CHARS else path[:MAX_PATH_CHARS] + "..."


_STOP = object()


class RequestLog:
    """The request lines' queue and the thread that writes them (`start`, `close` in the lifespan)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._logger = logger
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def is_enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def put(self, entry: Entry) -> None:
        """From the event loop: a request's values; written by the thread (or, before `start`
        and after `close`, nowhere: lines are dropped rather than written on the loop)."""
        if self._thread is not None:
            self._queue.put(entry)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_all, name="request-log", daemon=True)
            self._thread.start()

    def drain(self, timeout_seconds: float = 5.0) -> None:
        """Wait until every line put so far is written (tests, shutdown)."""
        if self._thread is not None:
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout_seconds)

    def close(self, timeout_seconds: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout_seconds)

    def _write_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._write(item)  # type: ignore[arg-type]
            except Exception:  # a handler that fails must not end the thread; logging reports its own errors
                continue

    def _write(self, entry: Entry) -> None:
        method, path, route, status, duration_ms, request_id, user_id, created = entry
        record = self._logger.makeRecord(self._logger.name, logging.INFO, __file__, 0, _TEMPLATE,
                                         (method, printable_path(path), route, status, duration_ms, request_id,
                                          user_id), None)
        record.created = created
        record.msecs = (created - int(created)) * 1000
        self._logger.handle(record)
