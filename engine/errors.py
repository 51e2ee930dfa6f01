"""Errors that end a request, each with its HTTP status, machine-readable code and public message.

EngineError                      rendered by the one handler in engine/http/errors.py
 ├── InvalidRequest       400    invalid_request: a field is missing, mistyped or out of range
 │    └── InvalidJson     400    invalid_json: the body is not a JSON object
 ├── Unauthorized         401    unauthorized: missing or wrong bearer key
 │    ├── InvalidCredentials 401 invalid_credentials: unknown user or wrong password (one answer)
 │    ├── InvalidChallenge  401  invalid_challenge: unknown, expired or used challenge, or a factor it does not offer
 │    ├── InvalidCode       401  invalid_code: wrong, replayed or expired code, or any of InvalidChallenge's reasons
 │    ├── InvalidToken      401  invalid_token: a user or enrollment token that does not verify
 │    └── InvalidGrant      401  invalid_grant: an authorization code unknown, expired, used, or not this
 │                               client's, redirect URI's or PKCE verifier's (one answer; POST /v1/token)
 ├── AccessDenied         403    access_denied: a rule denied the login (`reason`)
 ├── CountryNotAllowed    403    sms_country_not_allowed: the phone number's country is not in sms.allowed_countries
 ├── NotFound             404    not_found
 ├── MethodNotAllowed     405    method_not_allowed
 ├── RequestTimeout       408    request_timeout: the body did not arrive within http.body_timeout_ms
 ├── Conflict             409    conflict: e.g. the username is taken
 │    └── ClientInConfig   409    client_in_config: a client of config.yaml, changed only there
 ├── RulesRejected        422    rules_rejected: a rule change that does not compile or fails its tests (`errors`)
 ├── PayloadTooLarge      413    payload_too_large
 ├── UnsupportedMediaType 415    unsupported_media_type
 ├── TooManyAttempts      429    too_many_attempts: locked out or rate-limited (`retry_after` seconds)
 │    └── TooManyEvaluations 429 too_many_evaluations: the user or client has its share of the sandbox in use
 └── ServiceUnavailable   503    service_unavailable: e.g. a request cancelled by the shutdown timeout
      ├── SandboxUnavailable 503 sandbox_unavailable: no rule worker could take the evaluation
      ├── StoreUnavailable   503 store_unavailable: the challenge store (Redis) does not answer
      ├── DirectoryUnavailable 503 directory_unavailable: the user directory (PostgreSQL) does not answer
      └── FactorUnavailable  503 factor_unavailable: the SMS gateway failed; another factor may work

An error with a `retry_after` (every 503 and 429) answers with a `Retry-After` header and the
same number of seconds in the body. Public messages never carry secrets or submitted values:
only field names and limits.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    status = 500
    code = "internal_error"
    retry_after: int | None = None  # seconds after which the same request may succeed

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


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


class RequestTimeout(EngineError):
    status, code = 408, "request_timeout"

    def headers(self) -> dict[str, str]:
        # The rest of the body may still come: the connection cannot carry another request.
        return {"Connection": "close"}


class PayloadTooLarge(EngineError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(EngineError):
    status, code = 415, "unsupported_media_type"


class ServiceUnavailable(EngineError):
    status, code = 503, "service_unavailable"
    retry_after = 5


class SandboxUnavailable(ServiceUnavailable):
    code = "sandbox_unavailable"
    retry_after = 1  # a worker frees up within a queue timeout or two


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class InvalidChallenge(Unauthorized):
    code = "invalid_challenge"


class InvalidCode(Unauthorized):
    code = "invalid_code"


class InvalidToken(Unauthorized):
    code = "invalid_token"


class InvalidGrant(Unauthorized):
    code = "invalid_grant"


class AccessDenied(EngineError):
    status, code = 403, "access_denied"

    def __init__(self, reason: str, *, decision_id: str | None = None,
                 required_by: tuple[str, ...] | None = None) -> None:
        super().__init__("the login was denied")
        self.reason = reason
        self.decision_id = decision_id  # the record an admin reads at /admin/decisions/{id}
        # The layers that required the factor (engine/policy.py): a denial for want of a usable
        # factor names them; a rule's or a country's denial required none ([]).
        self.required_by = required_by

    def to_body(self) -> dict[str, Any]:
        body = super().to_body() | {"reason": self.reason}
        if self.required_by is not None:
            body["required_by"] = list(self.required_by)
        return body if self.decision_id is None else body | {"decision_id": self.decision_id}


class CountryNotAllowed(EngineError):
    status, code = 403, "sms_country_not_allowed"


class Conflict(EngineError):
    status, code = 409, "conflict"


class ClientInConfig(Conflict):
    code = "client_in_config"


class RulesRejected(EngineError):
    status, code = 422, "rules_rejected"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("the rule set was rejected; the active set is unchanged")
        self.errors = errors  # [{"rule", "line", "message"}]: every error of every rule and fixture

    def to_body(self) -> dict[str, Any]:
        return super().to_body() | {"errors": self.errors}


class TooManyAttempts(EngineError):
    status, code = 429, "too_many_attempts"

    def __init__(self, retry_after: int, message: str = "too many attempts; try again later") -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class TooManyEvaluations(TooManyAttempts):
    code = "too_many_evaluations"

    def __init__(self, message: str) -> None:
        super().__init__(1, message)


class FactorUnavailable(ServiceUnavailable):
    code = "factor_unavailable"
    retry_after = 5  # the provider's outage; another factor may work right away


class StoreUnavailable(ServiceUnavailable):
    """Raised by stores when their backend does not answer: no login proceeds without it."""

    code = "store_unavailable"
    retry_after = 2  # a restarted Redis is back within seconds and reconnects at once


class DirectoryUnavailable(ServiceUnavailable):
    """Raised by the PostgreSQL directory when the server does not answer (or no pooled connection
    frees up in time): no login proceeds without users and factors. The message names no secret."""

    code = "directory_unavailable"
