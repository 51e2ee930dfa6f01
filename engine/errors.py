"""Errors that end a request, each with its HTTP status, machine-readable code and public message.

EngineError                      rendered by the one handler in engine/http/errors.py
 ├── InvalidRequest       400    invalid_request: a field is missing, mistyped or out of range
 │    └── InvalidJson     400    invalid_json: the body is not a JSON object
 ├── Unauthorized         401    unauthorized: missing or wrong bearer key
 │    ├── InvalidCredentials 401 invalid_credentials: unknown user or wrong password (one answer)
 │    ├── InvalidChallenge  401  invalid_challenge: unknown, expired or used challenge, or a factor it does not offer
 │    ├── InvalidCode       401  invalid_code: wrong, replayed or expired code, or any of InvalidChallenge's reasons
 │    └── InvalidToken      401  invalid_token: a user or enrollment token that does not verify
 ├── AccessDenied         403    access_denied: a rule denied the login (`reason`)
 ├── CountryNotAllowed    403    sms_country_not_allowed: the phone number's country is not in sms.allowed_countries
 ├── NotFound             404    not_found
 ├── MethodNotAllowed     405    method_not_allowed
 ├── Conflict             409    conflict: e.g. the username is taken
 ├── PayloadTooLarge      413    payload_too_large
 ├── UnsupportedMediaType 415    unsupported_media_type
 ├── TooManyAttempts      429    too_many_attempts: locked out or rate-limited (`retry_after` seconds)
 │    └── TooManyEvaluations 429 too_many_evaluations: the user or client has its share of the sandbox in use
 ├── SandboxUnavailable   503    sandbox_unavailable: no rule worker could take the evaluation
 ├── StoreUnavailable     503    store_unavailable: the challenge store (Redis) does not answer
 └── FactorUnavailable    503    factor_unavailable: the SMS gateway failed; another factor may work

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

    def headers(self) -> dict[str, str]:
        return {}


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


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class InvalidChallenge(Unauthorized):
    code = "invalid_challenge"


class InvalidCode(Unauthorized):
    code = "invalid_code"


class InvalidToken(Unauthorized):
    code = "invalid_token"


class AccessDenied(EngineError):
    status, code = 403, "access_denied"

    def __init__(self, reason: str) -> None:
        super().__init__("the login was denied")
        self.reason = reason

    def to_body(self) -> dict[str, Any]:
        return super().to_body() | {"reason": self.reason}


class CountryNotAllowed(EngineError):
    status, code = 403, "sms_country_not_allowed"


class Conflict(EngineError):
    status, code = 409, "conflict"


class TooManyAttempts(EngineError):
    status, code = 429, "too_many_attempts"

    def __init__(self, retry_after: int, message: str = "too many attempts; try again later") -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))

    def to_body(self) -> dict[str, Any]:
        return super().to_body() | {"retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyEvaluations(TooManyAttempts):
    code = "too_many_evaluations"

    def __init__(self, message: str) -> None:
        super().__init__(1, message)


class FactorUnavailable(EngineError):
    status, code = 503, "factor_unavailable"


class StoreUnavailable(EngineError):
    """Raised by stores when their backend does not answer: no login proceeds without it."""

    status, code = 503, "store_unavailable"
