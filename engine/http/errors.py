"""The one place errors become responses: EngineError by its status and code, anything else a 500."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import EngineError, MethodNotAllowed, NotFound, Unauthorized
from engine.http.render import json_response

log = logging.getLogger("engine.http")


async def handle_engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    headers = exc.headers()
    if exc.status == 401 and type(exc) is Unauthorized:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response(exc.to_body(), exc.status, headers)


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
    return await handle_engine_error(request, error)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # The type only: exception messages may quote request data.
    log.error("unhandled_error path=%s type=%s", request.url.path, type(exc).__name__)
    return json_response({"error": "internal_error", "message": "internal error"}, 500)
