"""Errors that end a request, each with its HTTP status, machine-readable code and public message.

EngineError                      rendered by the one handler in engine/http/errors.py
 ├── InvalidRequest       400    invalid_request: a field is missing, mistyped or out of range
 │    └── InvalidJson     400    invalid_json: the body is not a JSON object
 ├── Unauthorized         401    unauthorized: missing or wrong bearer key
 ├── NotFound             404    not_found
 ├── MethodNotAllowed     405    method_not_allowed
 ├── PayloadTooLarge      413    payload_too_large
 ├── UnsupportedMediaType 415    unsupported_media_type
 └── SandboxUnavailable   503    sandbox_unavailable: no rule worker could take the evaluation

Public messages never carry secrets or submitted values: only field names and limits.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidRequest(EngineError):
    status, code = 400, "invalid_request"


class InvalidJson(InvalidRequest):
    code = "invalid_json"


class Unauthorized(EngineError):
    status, code = 401, "unauthorized"


class NotFound(EngineError):
    status, code = 404, "not_found"


class MethodNotAllowed(EngineError):
    status, code = 405, "method_not_allowed"


class PayloadTooLarge(EngineError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(EngineError):
    status, code = 415, "unsupported_media_type"


class SandboxUnavailable(EngineError):
    status, code = 503, "sandbox_unavailable"
