"""What each route answers, declared as data: its success status and body, its own error statuses.

The API document (engine/http/openapi.py) is written from these declarations and from the
request schemas (engine/http/schema.py); tests check real answers against the document
(tests/engine/test_api_document.py), so a handler that drifts from its declaration fails them.

The request blocks serve where they fit (Choice, Boolean, Count, ListOf, Text, schema.json_object).
An answer's object is a Reply, not an Obj: a request's Obj reads null as absent, while an answer
writes every field it declares (null where a value is unknown) and leaves out only its optional ones.

Error bodies are one shape (ERROR, engine/errors.py: EngineError.to_body). Each route lists only
the error statuses of its own work; the document adds what every route of a kind can answer:
400/408/413/415 with a body, 401 behind a bearer, 400 for a query parameter on /admin, 503 anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine import metadata
from engine.http import schema
from engine.http.json_schema import JsonSchema, Write, nullable
from engine.http.schema_checks import Choice


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON object the engine writes: every field but the `optional` ones, and nothing else
    (unless `open`: a JWK's members depend on its key type)."""

    fields: Mapping[str, object]
    optional: frozenset[str] = frozenset()
    open: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        if not self.optional <= self.fields.keys():
            raise ValueError(f"optional fields that are not fields: {sorted(self.optional - self.fields.keys())}")

    def json_schema(self, write: Write) -> JsonSchema:
        schema: JsonSchema = {"type": "object", "properties": {key: write(child) for key, child in self.fields.items()},
                              "additionalProperties": self.open}
        required = [key for key in self.fields if key not in self.optional]
        if required:
            schema["required"] = required
        return schema


@dataclass(frozen=True, slots=True)
class Nullable:
    """`item`, or null where the value is unknown or does not apply."""

    item: object

    def json_schema(self, write: Write) -> JsonSchema:
        return nullable(write(self.item))


@dataclass(frozen=True, slots=True)
class Many:
    """A list of any length (a request's ListOf is bounded; an answer's length is the data's)."""

    item: object

    def json_schema(self, write: Write) -> JsonSchema:
        return {"type": "array", "items": write(self.item)}


@dataclass(frozen=True, slots=True)
class Str:
    """Text the engine writes; `format` as JSON Schema names it, for readers."""

    description: str = ""
    format: str = ""

    def json_schema(self, write: Write) -> JsonSchema:
        schema: JsonSchema = {"type": "string"}
        if self.format:
            schema["format"] = self.format
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True, slots=True)
class Number:
    def json_schema(self, write: Write) -> JsonSchema:
        return {"type": "number"}


@dataclass(frozen=True, slots=True)
class AnyJson:
    """Plain JSON of any kind (a rule setting's value)."""

    def json_schema(self, write: Write) -> JsonSchema:
        return {}


@dataclass(frozen=True, slots=True)
class OneOf:
    """Exactly one of several shapes (a login's three answers, told apart by `status`)."""

    replies: tuple[object, ...]

    def json_schema(self, write: Write) -> JsonSchema:
        return {"oneOf": [write(reply) for reply in self.replies]}


@dataclass(frozen=True, slots=True)
class Answer:
    """A route's success: `status` with `body` (None: no body), in `media_type`; the statuses of
    the errors its own work raises (the document adds those every route of its kind can answer)."""

    summary: str
    status: int
    body: object | None
    errors: frozenset[int] = frozenset()
    media_type: str = "application/json"
    # A body answered with another status too (/healthz: 503 with the same body when degraded).
    also: tuple[int, ...] = ()


def one(*values: str) -> Choice:
    return schema.choice(*values)


def errors(*statuses: int) -> frozenset[int]:
    return frozenset(statuses)


TEXT = Str()
TIME = Str("ISO 8601 date-time, UTC", "date-time")
COUNT = schema.count
FLAG = schema.boolean
FREE_OBJECT = schema.json_object
NAMES = Many(TEXT)

ERROR = Reply({
    "error": Str("the machine-readable code (engine/errors.py)"),
    "message": Str("what went wrong, for people: never a secret or a submitted value"),
    "field": Str("the dotted field or parameter at fault (`user.groups[3]`)"),
    "retry_after": COUNT,
    "reason": Str("why a login was denied (access_denied)"),
    "required_by": NAMES,
    "decision_id": TEXT,
    "errors": Many(Reply({"rule": TEXT, "line": Nullable(COUNT), "message": TEXT})),
    "request_id": Str("the X-Request-Id of an internal error, for the operator's logs"),
}, optional=frozenset({"field", "retry_after", "reason", "required_by", "decision_id", "errors", "request_id"}))

# --- the login: /v1/login, /v1/mfa/*, /v1/step-up, /v1/token (engine/flow.py, engine/sessions.py)

_LOGIN_EXTRAS = frozenset({"required_by", "decision_id"})
AUTHENTICATED = Reply({
    "status": one("authenticated"), "user_id": TEXT, "token": Str("the signed user token (JWT)"),
    "token_type": one("Bearer"), "expires_in": COUNT, "amr": NAMES, "return_to": TEXT, "required_by": NAMES,
    "remembered_browser": FLAG, "remember_token": TEXT, "remember_token_expires_in": COUNT, "decision_id": TEXT,
}, optional=_LOGIN_EXTRAS | {"return_to", "remembered_browser", "remember_token", "remember_token_expires_in"})
OFFER = Reply({"id": TEXT, "type": one("otp", "sms", "recovery"), "default": FLAG,
               "phone": Str("masked: +1 *** *** 1234")}, optional=frozenset({"phone"}))
MFA_REQUIRED = Reply({
    "status": one("mfa_required"), "challenge_id": TEXT, "expires_in": COUNT, "factors": Many(OFFER),
    "default_factor_source": Nullable(one("rule", "user", "config")), "required_by": NAMES, "decision_id": TEXT,
}, optional=_LOGIN_EXTRAS)
ENROLLMENT_REQUIRED = Reply({
    "status": one("mfa_enrollment_required"), "enrollment_token": TEXT, "expires_in": COUNT,
    "factors_allowed": NAMES, "required_by": NAMES, "decision_id": TEXT,
}, optional=_LOGIN_EXTRAS)
LOGIN_ANSWER = OneOf((AUTHENTICATED, MFA_REQUIRED, ENROLLMENT_REQUIRED))
STEP_UP_OK = Reply({"status": one("ok")})
CHALLENGE_STARTED = Reply({"factor_id": TEXT, "type": one("otp", "sms", "recovery"), "sent": FLAG})
# Exchanged for an authorization code: the login's answer, without what only a browser keeps.
TOKEN_ANSWER = Reply({key: value for key, value in AUTHENTICATED.fields.items()
                      if key not in ("remember_token", "remember_token_expires_in")},
                     optional=AUTHENTICATED.optional - {"remember_token", "remember_token_expires_in"})

OTP_ENROLLMENT = Reply({"enrollment_id": TEXT, "factor": one("otp"), "factor_id": TEXT,
                        "secret": Str("base32 TOTP secret"), "otpauth_uri": TEXT, "qr_svg": Str("an SVG image"),
                        "expires_in": COUNT})
SMS_ENROLLMENT = Reply({"enrollment_id": TEXT, "factor": one("sms"), "factor_id": TEXT,
                        "phone": Nullable(Str("masked: +1 *** *** 1234")), "expires_in": COUNT})
_ENROLLED = {"factor": Reply({"id": TEXT, "type": one("otp", "sms")}),
             "recovery_codes": Many(Str("shown once: only their hashes are kept"))}
ENROLLED = Reply({"status": one("enrolled"), **_ENROLLED}, optional=frozenset({"recovery_codes"}))
# An enrollment that finishes a login answers the login's token too.
ENROLLED_AND_AUTHENTICATED = Reply({**AUTHENTICATED.fields, **_ENROLLED},
                                   optional=AUTHENTICATED.optional | {"recovery_codes"})
RECOVERY_CODES = Reply({"recovery_codes": Many(Str("shown once: only their hashes are kept"))})

# --- decisions (engine/policy.py: answer; engine/decisions.py: build_record)

TRACE_ENTRY = Reply({"rule": TEXT, "outcome": TEXT, "duration_us": COUNT, "error": Nullable(TEXT), "logs": NAMES})
_DECISION = {
    "decision": one("allow", "mfa", "deny"), "reason": Nullable(TEXT),
    "factors": Many(Reply({"type": TEXT, "default": FLAG})),
    "default_factor_source": Nullable(one("rule", "user", "config")), "enrollment_required": FLAG,
    "enroll_after": NAMES, "required_by": NAMES, "policy": TEXT, "triggers_fired": NAMES, "notes": NAMES,
}
RULE_SET = Reply({"version": TEXT})
EVALUATION = Reply({
    **_DECISION, "provider": TEXT, "provider_set_by": Nullable(TEXT), "claims": FREE_OBJECT,
    "return_to": Nullable(TEXT), "metadata_updates": Reply({kind: FREE_OBJECT for kind in metadata.KINDS}),
    "rule_set": RULE_SET, "trace": Many(TRACE_ENTRY), "decision_id": TEXT, "dry_run": FLAG,
}, optional=frozenset({"decision_id", "dry_run"}))
_MAYBE = Nullable(FLAG)
SIGNALS = Reply({"ip_country": Nullable(TEXT), "action": TEXT, "first_login": _MAYBE,
                 "first_login_to_client": _MAYBE, "new_device": _MAYBE, "new_country": _MAYBE,
                 "travel_kmh": Nullable(Number()), "impossible_travel": _MAYBE, "triggers": NAMES})
DECISION_RECORD = Reply({
    "decision_id": TEXT, "time": TIME, "endpoint": one("evaluate", "login", "step_up"), "user_id": TEXT,
    "client_id": Nullable(TEXT), "rule_set": RULE_SET, "rules": Many(TRACE_ENTRY), "signals": SIGNALS,
    **_DECISION, "provider": TEXT, "failed_rules": NAMES, "provider_set_by": TEXT,
}, optional=frozenset({"provider_set_by"}))

# --- the admin API: users and factors (engine/http/admin.py)

USER = Reply({
    "user_id": TEXT, "username": TEXT, "email": Nullable(TEXT), "email_verified": FLAG, "name": Nullable(TEXT),
    "phone_number": Nullable(TEXT), "app_metadata": FREE_OBJECT, "user_metadata": FREE_OBJECT,
    "created_at": TIME, "last_login": Nullable(TIME), "logins_count": COUNT,
    "preferred_factor": Nullable(TEXT),
})
FACTOR = Reply({"id": TEXT, "type": one("otp", "sms"), "status": one("pending", "active"),
                "phone": Nullable(TEXT), "created_at": TIME, "confirmed_at": Nullable(TIME),
                "last_used_at": Nullable(TIME)})
REMEMBERED_BROWSER = Reply({"id": TEXT, "device_id": TEXT, "user_agent": Nullable(TEXT), "client_id": Nullable(TEXT),
                            "created_at": TIME, "expires_at": TIME, "last_used_at": Nullable(TIME)})

# --- the admin API: the hosted pages' clients (engine/http/clients_admin.py)

CLIENT = Reply({"client_id": TEXT, "name": Str("empty for a config client without one"),
                "redirect_uris": NAMES, "public": FLAG,
                "source": one("config", "admin")})

# --- the admin API: rules and their settings (engine/http/rules_admin.py, settings_admin.py)

SYNC = Reply({"kind": TEXT, "shared_version": Nullable(TEXT), "in_sync": FLAG},
             optional=frozenset({"shared_version", "in_sync"}))
RULE = Reply({"id": TEXT, "order": COUNT, "enabled": FLAG, "summary": TEXT, "sha256": TEXT,
              "source": Str("the rule's Python source")}, optional=frozenset({"source"}))
ACTIVATION = Reply({"version": TEXT, "previous_version": TEXT})
SETTING = Reply({"key": TEXT, "secret": FLAG, "value": AnyJson(), "updated_at": TIME},
                optional=frozenset({"value"}))

AUDIT_EVENT = Reply({"id": COUNT, "type": TEXT, "at": TIME, "actor": one("user", "admin", "system"),
                     "user_id": Nullable(TEXT), "ip": Nullable(TEXT), "decision_id": Nullable(TEXT),
                     "details": FREE_OBJECT})

HEALTH = Reply({
    "status": one("ok", "degraded"),
    "rule_set": Reply({"version": TEXT, "rules": NAMES, "sync": SYNC}),
    "sandbox": Reply({"isolation": TEXT, "healthy": FLAG}, open=True),
    "store": Reply({"kind": one("redis", "memory"), "healthy": FLAG,
                    "persistent": OneOf((FLAG, one("unknown"))), "persistence": TEXT}),
    "directory": Reply({"backend": TEXT, "healthy": FLAG, "schema_version": Nullable(COUNT)}),
})
JWKS = Reply({"keys": Many(Reply({"kty": TEXT, "kid": TEXT, "alg": TEXT, "use": one("sig")}, open=True))})

_LOGIN = errors(403, 429)  # a rule's denial; lockouts and rate limits
_CHANGES = errors(409, 422)  # another instance changed the rules first; a set that does not compile or pass

# Every documented route, by its name in engine/http/routes.py.
ANSWERS: Mapping[str, Answer] = MappingProxyType({
    "evaluate": Answer("Evaluate the rules for a user and context (no login)", 200, EVALUATION, errors(429)),
    "login": Answer("Check a password and decide: authenticated, a second factor, or enrollment", 200,
                    LOGIN_ANSWER, _LOGIN),
    "mfa_challenge": Answer("Start a challenge's factor (sends the SMS code)", 200, CHALLENGE_STARTED, _LOGIN),
    "mfa_verify": Answer("Verify a challenge's code", 200, LOGIN_ANSWER, _LOGIN),
    "mfa_enroll": Answer("Start enrolling an authenticator app or a phone", 200, OneOf((OTP_ENROLLMENT, SMS_ENROLLMENT)),
                         errors(403, 409, 429)),
    "mfa_enroll_confirm": Answer("Confirm an enrollment with its first code", 200,
                                 OneOf((ENROLLED, ENROLLED_AND_AUTHENTICATED)), errors(409, 429)),
    "mfa_recovery_codes": Answer("Replace a user's recovery codes", 200, RECOVERY_CODES),
    "step_up": Answer("Check a user token against a sensitive action's rules", 200,
                      OneOf((STEP_UP_OK, MFA_REQUIRED, ENROLLMENT_REQUIRED)), _LOGIN),
    "token": Answer("Exchange a hosted login page's authorization code for the login's token", 200, TOKEN_ANSWER),
    "jwks": Answer("The public keys that verify user tokens (404 with HS256: nothing to publish)", 200, JWKS,
                   errors(404)),
    "admin_create_user": Answer("Create a user", 201, USER, errors(409)),
    "admin_list_users": Answer("List users, a page at a time", 200,
                               Reply({"users": Many(USER), "limit": COUNT, "offset": COUNT})),
    "admin_get_user": Answer("Read a user", 200, USER, errors(404)),
    "admin_update_user": Answer("Change a user's profile or password", 200, USER, errors(404, 409)),
    "admin_delete_user": Answer("Delete a user, their factors and history", 204, None, errors(404)),
    "admin_list_factors": Answer("List a user's factors", 200,
                                 Reply({"factors": Many(FACTOR), "recovery_codes_left": COUNT}), errors(404)),
    "admin_add_factor": Answer("Pre-enroll a phone or import a TOTP secret (active at once)", 201, FACTOR,
                               errors(403, 404, 409)),
    "admin_delete_factor": Answer("Remove a factor", 204, None, errors(404)),
    "admin_reset_mfa": Answer("Remove every factor and recovery code of a user", 200,
                              Reply({"status": one("reset"), "user_id": TEXT}), errors(404)),
    "admin_list_remembered_browsers": Answer("List a user's remembered browsers", 200,
                                             Reply({"remembered_browsers": Many(REMEMBERED_BROWSER)}), errors(404)),
    "admin_forget_remembered_browsers": Answer("Forget every remembered browser of a user", 204, None, errors(404)),
    "admin_forget_remembered_browser": Answer("Forget one remembered browser", 204, None, errors(404)),
    "admin_list_clients": Answer("List the hosted login pages' clients: config.yaml's and the admin API's", 200,
                                 Reply({"clients": Many(CLIENT)})),
    "admin_get_client": Answer("Read a client of the hosted login pages", 200, CLIENT, errors(404)),
    "admin_put_client": Answer("Add (201) or replace (200) a client of the hosted login pages (409 for one of "
                               "config.yaml)", 201, CLIENT, errors(409), also=(200,)),
    "admin_delete_client": Answer("Delete a client added through the admin API (409 for one of config.yaml)", 204,
                                  None, errors(404, 409)),
    "admin_list_audit_events": Answer("The audit trail, newest first, a page at a time", 200,
                                      Reply({"events": Many(AUDIT_EVENT), "next_cursor": Nullable(TEXT),
                                             "limit": COUNT})),
    "admin_get_decision": Answer("Read a decision's trace", 200, DECISION_RECORD, errors(404)),
    "admin_list_rules": Answer("List the active rules", 200,
                               Reply({"version": TEXT, "rules": Many(RULE), "sync": SYNC})),
    "admin_apply_rules": Answer("Add or replace several rules in one activation", 200, ACTIVATION, _CHANGES),
    "admin_reload_rules": Answer("Reload the rules folder", 200, ACTIVATION, _CHANGES),
    "admin_rule_versions": Answer("The rule sets activated so far, newest first", 200,
                                  Reply({"versions": Many(Reply({"version": TEXT, "activated_at": TIME, "by": TEXT,
                                                                 "rules": NAMES}))})),
    "admin_rollback_rules": Answer("Activate an earlier rule set again", 200, ACTIVATION, errors(404) | _CHANGES),
    "admin_dry_run_rules": Answer("Evaluate the active rules, or changed ones, without activating anything", 200,
                                  EVALUATION, errors(422, 429)),
    "admin_list_rule_settings": Answer("List rule settings (never a secret's value)", 200,
                                       Reply({"settings": Many(SETTING), "version": TEXT})),
    "admin_get_rule_setting": Answer("Read a rule setting (never a secret's value)", 200, SETTING, errors(404)),
    "admin_put_rule_setting": Answer("Set a rule setting", 200,
                                     Reply({"key": TEXT, "secret": FLAG, "version": TEXT, "previous_version": TEXT}),
                                     _CHANGES),
    "admin_delete_rule_setting": Answer("Delete a rule setting", 200,
                                        Reply({"key": TEXT, "version": TEXT, "previous_version": TEXT}),
                                        errors(404) | _CHANGES),
    "admin_get_rule": Answer("Read a rule and its source", 200, RULE, errors(404)),
    "admin_put_rule": Answer("Add or replace a rule", 200, ACTIVATION, _CHANGES),
    "admin_patch_rule": Answer("Enable or disable a rule", 200, ACTIVATION, errors(404) | _CHANGES),
    "admin_delete_rule": Answer("Delete a rule", 200, ACTIVATION, errors(404) | _CHANGES),
    "healthz": Answer("Health: sandbox, store, directory and rule set (503 with the same body when degraded)", 200,
                      HEALTH, also=(503,)),
    "metrics": Answer("Prometheus metrics (404 while metrics.token is empty)", 200, Str("Prometheus text format"),
                      errors(404), media_type="text/plain"),
})

# Shapes the document names (#/components/schemas/<name>): shared by several answers, or worth a name.
NAMED: Mapping[str, object] = MappingProxyType({
    "Error": ERROR, "Authenticated": AUTHENTICATED, "MfaRequired": MFA_REQUIRED,
    "EnrollmentRequired": ENROLLMENT_REQUIRED, "FactorOffer": OFFER, "Evaluation": EVALUATION,
    "TraceEntry": TRACE_ENTRY, "DecisionRecord": DECISION_RECORD, "User": USER, "Factor": FACTOR,
    "RememberedBrowser": REMEMBERED_BROWSER, "Rule": RULE, "Activation": ACTIVATION, "RuleSetting": SETTING,
    "RuleSync": SYNC, "Health": HEALTH, "AuditEvent": AUDIT_EVENT, "Client": CLIENT,
})

