"""The host side of rules: builds `user` and `context` from the plain payload, runs the
fail-closed bookkeeping between rules, and hands back the outcome as plain data.

Loaded inside sandbox workers by its dotted path (HOST_PATH), so, like rule_api.py, it
imports only the standard library and the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from engine.metadata import MetadataChanges
from engine.rule_api import (
    Authentication, Claims, Client, Connection, Context, Geo, Method, Multifactor, Request, Risk, Settings, Stats,
    User, timestamp,
)
from sandbox.guards import AccessPolicy
from sandbox.plain import freeze, thaw
from sandbox.redaction import NO_REDACTION, Redactor


def _build_user(data: Mapping[str, Any]) -> User:
    return User(**{
        **data,
        "created_at": timestamp(data.get("created_at")),
        "last_login": timestamp(data.get("last_login")),
        "logins_count": data.get("logins_count", 0),
        "email_verified": bool(data.get("email_verified", False)),
        "app_metadata": freeze(data.get("app_metadata") or {}),
        "user_metadata": freeze(data.get("user_metadata") or {}),
        "factors": tuple(data.get("factors") or ()),
        "groups": tuple(data.get("groups") or ()),
    })


def _build_context(data: Mapping[str, Any], log: Callable[[str], None], http_localhost: bool,
                   settings: Mapping[str, Any] | None = None, policy: str | None = None,
                   redactor: Redactor = NO_REDACTION) -> Context:
    connection = data.get("connection") or {}
    geo = connection.get("geo")
    authentication = data.get("authentication") or {}
    action = data.get("action", "login")
    # mfa.policy: required asks a factor of every login (engine/policy.py): no rule may drop it.
    policy_required = policy == "required" and action == "login"
    now = timestamp(data["now"])
    return Context(
        connection=Connection(ip=connection.get("ip"), ip_country=connection.get("ip_country"),
                              geo=Geo(**geo) if geo else None),
        request=Request(**(data.get("request") or {})),
        client=Client(**(data.get("client") or {})),
        action=action,
        stats=Stats(**(data.get("stats") or {})),
        risk=_risk(data.get("risk") or {}),
        authentication=Authentication(methods=tuple([
            Method(name=m["name"], timestamp=timestamp(m.get("timestamp")))
            for m in authentication.get("methods") or ()
        ]), _now=now),
        now=now,
        multifactor=Multifactor(http_localhost, policy_required=policy_required, note=log,
                                redactor=redactor),
        claims=Claims(redactor),
        settings=Settings(freeze(settings or {})),
        _denial=None,
        _log=log,
        _redactor=redactor,
    )


def _risk(risk: Mapping[str, Any]) -> Risk:
    """`context.risk`; the fired triggers as a tuple (none listed: none fired)."""
    return Risk(**{**risk, "triggers": tuple(risk.get("triggers") or ())})


def _secrets_of(payload: Mapping[str, Any]) -> Redactor:
    """The values of the settings `payload["secret_keys"]` names (engine/pipeline.run_rules): every
    text the rules hand back is redacted of them where it is made, before it is cut or measured."""
    keys = payload.get("secret_keys")
    if not keys:
        return NO_REDACTION
    settings = payload.get("settings") or {}
    return Redactor(settings.get(key) for key in keys)


class RuleBinding:
    """One evaluation: the objects handed to every rule, and the outcome they add up to."""

    def __init__(self, payload: Mapping[str, Any], log: Callable[[str], None], http_localhost: bool = False) -> None:
        self.redactor = _secrets_of(payload)
        self.user = _build_user(payload["user"])
        self.context = _build_context(payload["context"], log, http_localhost, payload.get("settings"),
                                      payload.get("policy"), self.redactor)
        object.__setattr__(self.context, "_metadata", MetadataChanges(self.user, self.redactor))
        self.args = (self.user, self.context)
        self.failed_rules: list[str] = []

    def checkpoint(self, meta: Mapping[str, Any]) -> object:
        """Called before each rule: the state to return to if it fails. Each rule gets its own
        add_factor budget, so a long pipeline of ordinary rules never runs out, and the rule's
        id, so the outcome can say which rule set the provider.

        One small copy: the multifactor's state (immutable values in a dict); claims and
        metadata are copied on write (engine/rule_api.py, engine/metadata.py), so the objects
        referenced here are never changed after the rule starts."""
        context = self.context
        multifactor = context.multifactor._begin_rule(meta.get("rule"))
        return multifactor, context.claims._values, context._denial, context._metadata.state()

    def restore(self, checkpoint: object) -> None:
        multifactor, claims, denial, metadata = cast(tuple[dict[str, Any], dict[str, Any], "str | None", object],
                                                     checkpoint)
        self.context.multifactor._load(multifactor)
        self.context.claims._values = claims
        self.context._metadata.load(metadata)
        # A denial the failing rule made before it broke stands: rolling it back could only
        # open the login further.
        object.__setattr__(self.context, "_denial", denial or self.context._denial)

    def fail(self, meta: Mapping[str, Any]) -> None:
        """Fail closed: a broken rule denies the login, or (by config) forces a second factor."""
        self.failed_rules.append(meta["rule"])
        if meta.get("on_error") == "require_mfa":
            self.context.multifactor._force(meta["rule"])
        else:
            object.__setattr__(self.context, "_denial", "rule_failed")

    def is_finished(self) -> bool:
        return self.context._denial is not None  # context.denied, without a property call per rule

    def result(self) -> dict[str, Any]:
        multifactor = self.context.multifactor
        result: dict[str, Any] = {
            "denied": self.context.denied,
            "deny_reason": self.context._denial,
            "mfa_required": multifactor.required,
            "provider": multifactor.provider,
            "provider_set_by": multifactor._provider_set_by,
            "allow_remember_browser": multifactor.allow_remember_browser,
            "factors": list(multifactor.factors),
            "return_to": multifactor.return_to,
            "claims": thaw(self.context.claims._values),
            "metadata_updates": self.context._metadata.plain(),
            "failed_rules": list(self.failed_rules),
        }
        # Which rules require the factor (engine/outcome.py), written only when there are any.
        for key, rules in (("required_by_rules", multifactor._required_by_rules),
                           ("disable_ignored_by", multifactor._disable_ignored_by)):
            if rules:
                result[key] = list(rules)
        return result


class RuleHost:
    access = AccessPolicy(
        readable={
            User: frozenset(User.__slots__), Geo: frozenset(Geo.__slots__),
            Connection: frozenset(Connection.__slots__), Request: frozenset(Request.__slots__),
            Client: frozenset(Client.__slots__), Stats: frozenset(Stats.__slots__),
            Risk: frozenset(Risk.__slots__), Method: frozenset(Method.__slots__),
            Authentication: frozenset({"methods", "completed_within"}),
            Context: frozenset({"set_app_metadata", "set_user_metadata", "setAppMetadata", "setUserMetadata",
                                "connection", "request", "client", "action", "stats", "risk", "authentication",
                                "now", "multifactor", "claims", "settings", "deny", "log", "denied"}),
            Multifactor: frozenset({"enable", "add_factor", "addFactor", "disable", "required", "factors",
                                    "provider", "allow_remember_browser", "return_to", "returnTo"}),
            Claims: frozenset({"get", "keys"}),
            Settings: frozenset({"get", "keys", "values", "items"}),
        },
        subscriptable=frozenset({Claims, Settings}),
        iterable=frozenset({Settings}),
        writable=frozenset({Claims, Multifactor}),
    )

    def __init__(self, *, development: bool = False) -> None:
        # Development lets rules send users back to http://localhost; production only to https.
        self.development = development

    def bind(self, payload: Mapping[str, Any], log: Callable[[str], None]) -> RuleBinding:
        return RuleBinding(payload, log, http_localhost=self.development)


# Workers load their host by dotted path (sandbox/worker.py), so each environment has its own.
HOST = RuleHost()
HOST_PATH = "engine.rule_host:HOST"
DEVELOPMENT_HOST = RuleHost(development=True)
DEVELOPMENT_HOST_PATH = "engine.rule_host:DEVELOPMENT_HOST"


def host_for(environment: str) -> tuple[RuleHost, str]:
    """The host and its dotted path for `environment` ("development" or "production")."""
    return (DEVELOPMENT_HOST, DEVELOPMENT_HOST_PATH) if environment == "development" else (HOST, HOST_PATH)
