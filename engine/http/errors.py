"""The one place errors become responses: EngineError by its status and code, anything else a 500.

Starlette's exception handlers render EngineError and the router's HTTPException. Everything
they do not handle reaches ErrorBoundary, the outermost layer of every request, which also
names each request (`X-Request-Id` on every response: the client's when sane, else a new one;
engine/http/request_log.py) and hands its log line to the request log once it is answered:

- a client that went away (ClientDisconnect, a reset connection) or a request cancelled by
  the shutdown timeout is routine: one DEBUG line, and a 503 for a cancelled request whose
  client still listens;
- any other exception is one ERROR line with its type, where it was raised, the route and
  the request id, and a JSON 500 naming the request id. Never its message, arguments or a
  traceback with source lines: they may quote request data. The exception is not re-raised,
  so uvicorn neither logs it again with a traceback nor drops the keep-alive connection;
- a 503 rendered outside the error tree (/healthz) still gets a Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import EngineError, MethodNotAllowed, NotFound, ServiceUnavailable, StoreUnavailable, Unauthorized
from engine.http.render import json_response
from engine.http.request_log import REQUEST_ID_HEADER, RequestLog, request_id_from
from engine.metrics import Metrics
from engine.request_context import CURRENT, RequestInfo

log = logging.getLogger("engine.http")

CLIENT_GONE_STATUS = 499  # in the request line only: the client hung up before an answer (nginx's convention)


def error_response(error: EngineError) -> Response:
    headers = error.headers()
    if error.status == 401 and type(error) is Unauthorized:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response(error.to_body(), error.status, headers)


async def handle_engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    if isinstance(exc, StoreUnavailable):
        metrics: Metrics = request.app.state.metrics
        metrics.store_error()
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: EngineError
    if exc.status_code == 405:
        error = MethodNotAllowed("this method is not allowed here")
    elif exc.status_code == 404:
        error = NotFound("no such endpoint")
    else:
        error = EngineError(str(exc.detail))
        error.status = exc.status_code
    return error_response(error)


class ErrorBoundary:
    """ASGI middleware around every request: request ids, quiet hang-ups, safe 500s, Retry-After on
    503, the request's log line."""

    def __init__(self, app: ASGIApp, request_log: RequestLog | None = None) -> None:
        self.app = app
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        info = RequestInfo(request_id)
        context = CURRENT.set(info)
        status = CLIENT_GONE_STATUS

        async def send_named(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": _edge_headers(message, request_id)}
            try:
                await send(message)
            except OSError as exc:
                # A reset or broken client connection (uvicorn drops such writes; other servers
                # raise). Only errors of this connection: a ConnectionError from a call to Redis
                # or an SMS gateway is a fault of ours and must not pass for a hang-up.
                raise ClientDisconnect() from exc

        try:
            await self.app(scope, receive, send_named)
        except ClientDisconnect:
            log.debug("client_disconnected request_id=%s route=%s", request_id, _route(scope))
        except asyncio.CancelledError:
            # Only the shutdown timeout cancels requests (uvicorn cancels its own task, nothing
            # awaits the outcome): answer if the client still listens, and end quietly.
            log.debug("request_cancelled request_id=%s route=%s", request_id, _route(scope))
            if status == CLIENT_GONE_STATUS:
                response = error_response(ServiceUnavailable("the service is shutting down; retry shortly"))
                response.headers["Connection"] = "close"
                await response(scope, receive, send_named)
        except Exception as exc:
            log.error("unhandled_error request_id=%s route=%s type=%s at=%s", request_id, _route(scope),
                      type(exc).__name__, _raised_at(exc))
            if status == CLIENT_GONE_STATUS:
                body = {"error": "internal_error", "message": "internal error", "request_id": request_id}
                await json_response(body, 500)(scope, receive, send_named)
        finally:
            CURRENT.reset(context)
            # After the answer went out: the line costs the client nothing.
            if self.request_log is not None and self.request_log.is_enabled():
                self.request_log.put((scope["method"], scope["path"], _route(scope), status,
                                      round((time.perf_counter() - began) * 1000, 3), request_id, info.user_id,
                                      time.time()))


def _edge_headers(start: Message, request_id: str) -> list[tuple[bytes, bytes]]:
    headers = list(start.get("headers", ()))
    headers.append((REQUEST_ID_HEADER, request_id.encode()))
    if start["status"] == 503 and not any(name.lower() == b"retry-after" for name, _ in headers):
        headers.append((b"retry-after", str(ServiceUnavailable.retry_after).encode()))
    return headers


def _route(scope: Scope) -> str:
    """The matched route's name from the route table: never the raw path, which the client wrote."""
    return getattr(scope.get("route"), "name", None) or "-"


def _raised_at(exc: BaseException) -> str:
    """file:line:function of the innermost frame: where to look, without any value."""
    innermost = None
    for innermost in traceback.walk_tb(exc.__traceback__):
        pass
    if innermost is None:
        return "-"
    frame, line = innermost
    return f"{Path(frame.f_code.co_filename).name}:{line}:{frame.f_code.co_name}"
