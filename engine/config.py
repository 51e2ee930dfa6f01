"""Settings: config.yaml read once, strictly, into frozen dataclasses; MFA_* variables override it.

An unknown key, a wrong type or an out-of-range value stops startup with its dotted path
(`sandbox.rule_timeout_ms: must be 1..10000`). Every string is one line of printable text with
no space at either end (engine.formats.is_identifier; a PEM signing key may span lines): a CR
from an env file saved on Windows or the final newline of a YAML block scalar would otherwise
make a token nobody can present, or put a line break into SMS texts (`mfa.issuer_name`).
`MFA_` + the dotted path upper-cased, with `__` for each dot, overrides any key (`rules.dir` ->
`MFA_RULES__DIR`). Values are never echoed in errors: some of them are secrets. A trigger
(mfa.triggers.*) also takes short forms, from the file and the environment (see _trigger).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from engine import formats
from sandbox.limits import Limits

ENV_PREFIX = "MFA_"
CONFIG_PATH_VARIABLE = "MFA_CONFIG"
DEMO_API_KEY = "demo-api-key-change-me-0123456789"
DEMO_ADMIN_TOKEN = "demo-admin-token-change-me-0123456789"


class ConfigError(Exception):
    """The configuration cannot be used; the message starts with the dotted path."""


def _range(low: int, high: int) -> dict[str, Any]:
    return {"range": (low, high)}


def _choices(*options: str) -> dict[str, Any]:
    return {"choices": options}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = field(default=8000, metadata=_range(1, 65535))
    # Server processes on the port (`serve --workers`); more than one needs store.redis_url (engine/cli.py).
    workers: int = field(default=1, metadata=_range(1, 64))


@dataclass(frozen=True, slots=True)
class RulesSettings:
    dir: str = "rules"
    on_error: str = field(default="deny", metadata=_choices("deny", "require_mfa"))
    on_error_by_rule: Mapping[str, str] = field(default_factory=dict, metadata={
        **_choices("deny", "require_mfa"), "key_pattern": (formats.RULE_ID, "keys must be rule ids like 20-geo")})
    watch: bool = False  # development only: reload when the folder is edited (engine/rule_watch.py)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    isolation: str = field(default="process", metadata=_choices("process", "inprocess"))
    workers: int = field(default=2, metadata=_range(1, 64))
    queue_timeout_ms: int = field(default=1000, metadata=_range(1, 60_000))
    # loop: the event-loop thread and its workers share one CPU (sandbox/affinity.py): less
    # latency per evaluation, but one serving process's evaluations then use one CPU; for
    # `serve --workers` = CPUs, each process claiming its own. off: the kernel places them.
    cpu_affinity: str = field(default="off", metadata=_choices("off", "loop"))
    rule_timeout_ms: int = field(default=50, metadata=_range(1, 10_000))
    pipeline_timeout_ms: int = field(default=250, metadata=_range(1, 30_000))
    kill_grace_ms: int = field(default=100, metadata=_range(10, 10_000))
    max_steps: int = field(default=1_000_000, metadata=_range(1_000, 1_000_000_000))
    memory_mb: int = field(default=512, metadata=_range(128, 16_384))
    max_log_lines: int = field(default=50, metadata=_range(0, 10_000))
    max_output_bytes: int = field(default=16_384, metadata=_range(0, 1_048_576))
    max_source_bytes: int = field(default=65_536, metadata=_range(1_024, 1_048_576))
    # Evaluations queued or running at once per user / client / address (engine/fairness.py); 0: no bound.
    max_concurrent_per_user: int = field(default=1, metadata=_range(0, 10_000))
    max_concurrent_per_client: int = field(default=0, metadata=_range(0, 100_000))
    max_concurrent_per_address: int = field(default=0, metadata=_range(0, 100_000))

    def limits(self) -> Limits:
        return Limits(
            rule_timeout_ms=self.rule_timeout_ms, pipeline_timeout_ms=self.pipeline_timeout_ms,
            kill_grace_ms=self.kill_grace_ms, max_steps=self.max_steps, memory_mb=self.memory_mb,
            max_log_lines=self.max_log_lines, max_output_bytes=self.max_output_bytes,
            max_source_bytes=self.max_source_bytes,
        )


@dataclass(frozen=True, slots=True)
class GeoipSettings:
    database: str = ""
    # Reserved ranges are never looked up, except these: the demo and tests place
    # countries on the documentation ranges (RFC 5737, RFC 3849).
    allow_networks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiSettings:
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HttpSettings:
    max_body_bytes: int = field(default=65_536, metadata=_range(1_024, 10_485_760))
    # The request line and headers: past it 431 headers_too_large and the connection closed
    # (engine/http/head_limit.py; httptools alone would buffer any amount).
    max_header_bytes: int = field(default=32_768, metadata=_range(4_096, 1_048_576))
    # From the request's headers to the body's last byte: a client that stalls mid-body gets
    # 408 request_timeout and a closed connection instead of holding a task (and shutdown).
    body_timeout_ms: int = field(default=10_000, metadata=_range(100, 600_000))
    # After SIGTERM, in-flight requests get this long to finish; then they are cancelled,
    # the sandbox workers stopped and the process ends.
    shutdown_timeout_seconds: int = field(default=10, metadata=_range(1, 600))
    # Proxies (CIDRs) whose X-Forwarded-For the hosted pages believe; from any other peer the
    # client's address is the socket's (engine/pages/client_ip.py).
    trusted_proxies: tuple[str, ...] = ()


# Built-in triggers (issue 10; engine/triggers.py). Every one is off by default: the shipped
# rules already decide on first logins, new devices and countries (40), home countries (20) and
# step-up (30), and a trigger turned on by default would require a factor where they do not (an
# unknown location counts as new unless unknown_location: ignore). Off, a login needs exactly
# what the rules ask for, as before the triggers existed.
#
# Short forms (TriggersSettings' fields, marked with _trigger): `true` / `false` switch a trigger
# with an `enabled` key on or off with its defaults; a block without `enabled` is on (it was tuned
# because it is wanted; `enabled: false` keeps it off); sensitive_actions takes its list of actions
# (`[transfer]` = `{actions: [transfer]}`). countries and sensitive_actions have no switch: their
# lists turn them on, so `false` is their defaults and `true` is refused.
_COUNTRIES = {"pattern": (formats.COUNTRY, "items must be ISO 3166 alpha-2 codes in upper case like US")}


def _trigger(forms: str, *, short_list: str | None = None, nothing: str | None = None) -> dict[str, Any]:
    """`forms`: the accepted shapes, for errors; `short_list`: the key a bare list sets; `nothing`:
    what `true` would lack, for a trigger without a switch."""
    return {"trigger": {"forms": forms, "short_list": short_list, "nothing": nothing}}


_SWITCH = _trigger("true, false or a mapping")


@dataclass(frozen=True, slots=True)
class FirstLoginTrigger:
    enabled: bool = False
    per_client: bool = False  # also the user's first successful login to each client_id


@dataclass(frozen=True, slots=True)
class RecentTrigger:
    """new_device / new_country: not seen in a complete login of this user within `days`."""

    enabled: bool = False
    days: int = field(default=90, metadata=_range(1, 3650))


@dataclass(frozen=True, slots=True)
class ImpossibleTravelTrigger:
    enabled: bool = False
    # Faster than this from the previous complete login, after both accuracy radii: a jet
    # cruises at 900 km/h, so 1000 leaves room for the databases' error.
    max_kmh: int = field(default=1000, metadata=_range(1, 100_000))


@dataclass(frozen=True, slots=True)
class CountriesTrigger:
    # Empty lists: off. A login from outside require_mfa_outside (or from an unknown country)
    # needs a factor; one from deny is refused (403).
    require_mfa_outside: tuple[str, ...] = field(default=(), metadata=_COUNTRIES)
    deny: tuple[str, ...] = field(default=(), metadata=_COUNTRIES)


@dataclass(frozen=True, slots=True)
class SensitiveActionsTrigger:
    # context.action names that need a factor completed within `within_minutes`; empty: off.
    actions: tuple[str, ...] = field(default=(), metadata={
        "pattern": (formats.ACTION, "items must be action names like transaction")})
    within_minutes: int = field(default=5, metadata=_range(1, 1440))


@dataclass(frozen=True, slots=True)
class TriggersSettings:
    first_login: FirstLoginTrigger = field(default_factory=FirstLoginTrigger, metadata=_SWITCH)
    new_device: RecentTrigger = field(default_factory=RecentTrigger, metadata=_SWITCH)
    new_country: RecentTrigger = field(default_factory=RecentTrigger, metadata=_SWITCH)
    impossible_travel: ImpossibleTravelTrigger = field(default_factory=ImpossibleTravelTrigger, metadata=_SWITCH)
    countries: CountriesTrigger = field(default_factory=CountriesTrigger, metadata=_trigger(
        "a mapping (require_mfa_outside, deny) or false", nothing="country"))
    sensitive_actions: SensitiveActionsTrigger = field(default_factory=SensitiveActionsTrigger, metadata=_trigger(
        "a list of action names, a mapping (actions, within_minutes) or false", short_list="actions",
        nothing="action"))
    # No database, a private or unknown address: "new" counts it as a new country (and
    # outside require_mfa_outside); "ignore" lets those triggers pass it.
    unknown_location: str = field(default="new", metadata=_choices("new", "ignore"))


@dataclass(frozen=True, slots=True)
class RememberBrowserSettings:
    days: int = field(default=30, metadata=_range(0, 365))  # 0: never remember a browser
    allowed_in_required: bool = False  # may a remembered browser skip the factor under policy: required


@dataclass(frozen=True, slots=True)
class MfaSettings:
    # required: every login; optional: users with a factor; adaptive: rules and triggers decide;
    # never: only when a rule asks.
    policy: str = field(default="adaptive", metadata=_choices("required", "optional", "adaptive", "never"))
    triggers: TriggersSettings = field(default_factory=TriggersSettings)
    remember_browser: RememberBrowserSettings = field(default_factory=RememberBrowserSettings)
    factors: tuple[str, ...] = field(default=("otp", "sms", "recovery"), metadata=_choices("otp", "sms", "recovery"))
    when_no_factor: str = field(default="enroll", metadata=_choices("enroll", "deny"))
    challenge_ttl_seconds: int = field(default=300, metadata=_range(30, 600))
    max_attempts: int = field(default=5, metadata=_range(1, 20))
    # Consecutive second-factor failures of one user, across challenges and factors, that
    # lock the second factor (NIST SP 800-63B: never more than 100).
    lockout_threshold: int = field(default=10, metadata=_range(1, 100))
    lockout_seconds: int = field(default=900, metadata=_range(1, 86_400))
    recovery_codes: int = field(default=10, metadata=_range(5, 20))
    issuer_name: str = "mfa-engine"  # shown by authenticator apps and in SMS texts


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    # sqlite:///relative/or/absolute/path.db (relative to the config file), or sqlite:///:memory:;
    # or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (also postgres://, libpq's query
    # parameters such as ?sslmode=require) for several instances on one directory. A password is
    # a secret: give it through MFA_DIRECTORY__URL, never in the file. It is never logged.
    url: str = "sqlite:///var/mfa.db"
    # PostgreSQL: the connections each process keeps (every --workers process has a pool of its own).
    max_connections: int = field(default=10, metadata=_range(1, 100))
    # PostgreSQL: connecting, or waiting for a free pooled connection; past it, 503 directory_unavailable.
    timeout_ms: int = field(default=5_000, metadata=_range(100, 60_000))


@dataclass(frozen=True, slots=True)
class StoreSettings:
    # redis://host:port/db for challenges, counters and replay state shared by instances;
    # empty: an in-process store (one instance only; state is lost on restart).
    redis_url: str = ""
    # Connecting to Redis and each of its replies: past this, 503 store_unavailable. A frozen
    # Redis (hung, swapping, paused) must fail requests as fast as a stopped one.
    timeout_ms: int = field(default=500, metadata=_range(10, 60_000))


@dataclass(frozen=True, slots=True)
class DecisionsSettings:
    # How long GET /admin/decisions/{id} finds a decision's record (in Redis with store.redis_url).
    ttl_seconds: int = field(default=86_400, metadata=_range(60, 2_592_000))
    # Without Redis: records kept in process at most; past it the oldest is dropped.
    max_in_memory: int = field(default=10_000, metadata=_range(1, 1_000_000))


@dataclass(frozen=True, slots=True)
class AuditSettings:
    # Audit events (GET /admin/audit) older than this many days are deleted in the background, a
    # batch at a time (engine/audit_trail.py); 0 keeps them forever.
    retention_days: int = field(default=365, metadata=_range(0, 36_500))


@dataclass(frozen=True, slots=True)
class AdminSettings:
    token: str = ""  # bearer token of /admin/*; empty: the admin API answers 401 to everyone


@dataclass(frozen=True, slots=True)
class SecretsSettings:
    # 32 random bytes, base64: encrypts TOTP secrets at rest and keys the code hashes.
    # Empty in development: a key is generated into var/dev-secret.key (with a warning).
    key: str = ""
    # Rotation: the keys secrets.key had before, in the same form. They only open and match what
    # they sealed and MACed; `mfa-engine keys reseal` moves sealed secrets to the current key
    # (docs/deployment.md says when an old key can go).
    previous_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str = field(default="", metadata={"url": True})
    secret: str = ""  # HMAC-SHA256 key of the X-MFA-Signature header


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""
    base_url: str = field(default="https://api.twilio.com", metadata={"url": True})
    timeout_ms: int = field(default=5000, metadata=_range(100, 60_000))


@dataclass(frozen=True, slots=True)
class SmsSettings:
    gateway: str = field(default="console", metadata=_choices("console", "twilio", "webhook"))
    allow_console_outside_development: bool = False
    code_ttl_seconds: int = field(default=300, metadata=_range(30, 900))
    resend_cooldown_seconds: int = field(default=30, metadata=_range(0, 600))
    # ISO 3166 alpha-2 codes phone numbers may belong to; empty: every country (SMS pumping!)
    allowed_countries: tuple[str, ...] = field(default=(), metadata={
        "pattern": (formats.COUNTRY, "items must be ISO 3166 alpha-2 codes like US")})
    sends_per_user_per_hour: int = field(default=10, metadata=_range(1, 10_000))
    sends_per_phone_per_hour: int = field(default=10, metadata=_range(1, 10_000))
    sends_per_ip_per_hour: int = field(default=30, metadata=_range(1, 100_000))
    sends_per_country_per_hour: int = field(default=1000, metadata=_range(1, 10_000_000))
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)


@dataclass(frozen=True, slots=True)
class TokensSettings:
    issuer: str = "mfa-engine"
    audience: str = "mfa-engine-clients"
    ttl_seconds: int = field(default=3600, metadata=_range(60, 86_400))
    algorithm: str = field(default="HS256", metadata=_choices("HS256", "RS256", "ES256", "EdDSA"))
    # HS256: the shared secret (at least 32 characters). Others: a PEM private key, or
    # "file:PATH". Empty in development: a random secret per process (tokens die on restart).
    signing_key: str = field(default="", metadata={"multiline": True})
    # Rotation: keys that signed earlier tokens (same algorithm; "file:PATH" or the key itself;
    # for RS256/ES256/EdDSA the public half is enough). They verify, never sign, and stay in the
    # JWKS; drop one once ttl_seconds have passed since it last signed (docs/deployment.md).
    previous_signing_keys: tuple[str, ...] = field(default=(), metadata={"multiline": True})


@dataclass(frozen=True, slots=True)
class LoginSettings:
    # Failed password attempts before 429 too_many_attempts, per username and per IP.
    failures_per_username: int = field(default=10, metadata=_range(1, 100))
    failures_per_ip: int = field(default=50, metadata=_range(1, 100_000))
    failure_window_seconds: int = field(default=900, metadata=_range(10, 86_400))
    password_time_cost: int = field(default=3, metadata=_range(1, 20))
    password_memory_kib: int = field(default=65_536, metadata=_range(8_192, 4_194_304))
    password_parallelism: int = field(default=4, metadata=_range(1, 64))


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """An application that sends users to the hosted login pages (engine/pages/)."""

    name: str = ""
    # Where the pages may send the browser back, matched exactly (https, or http to a loopback host).
    redirect_uris: tuple[str, ...] = field(default=(), metadata={"url": True})
    public: bool = False  # cannot keep a secret: PKCE (S256) is then required


_COLOUR = {"pattern": (formats.COLOUR, "must be a colour like #1d4ed8")}


@dataclass(frozen=True, slots=True)
class BrandingSettings:
    """How the hosted login pages look and read (engine/pages/branding.py)."""

    product_name: str = "mfa-engine"
    logo_url: str = field(default="", metadata={"url": True})
    logo_file: str = ""  # an image file (relative to the config file), served by the pages
    primary_color: str = field(default="#1d4ed8", metadata=_COLOUR)
    background_color: str = field(default="#f3f4f6", metadata=_COLOUR)
    custom_css: str = ""  # a CSS file (relative to the config file), loaded after the built-in one
    support_url: str = field(default="", metadata={"url": True})
    # Per-locale replacements of the pages' texts: {de: {title_password: "Anmelden"}}.
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    templates_dir: str = ""  # templates here replace the built-in ones of the same name


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = field(default="INFO", metadata=_choices("DEBUG", "INFO", "WARNING", "ERROR"))
    # json: every line one JSON object (engine/log_format.py), for collectors; text: for people.
    format: str = field(default="text", metadata=_choices("text", "json"))


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token: str = ""  # bearer token of GET /metrics (Prometheus); empty: the endpoint answers 404


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str = field(default="development", metadata=_choices("development", "production"))
    server: ServerSettings = field(default_factory=ServerSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    geoip: GeoipSettings = field(default_factory=GeoipSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    mfa: MfaSettings = field(default_factory=MfaSettings)
    login: LoginSettings = field(default_factory=LoginSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    decisions: DecisionsSettings = field(default_factory=DecisionsSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    tokens: TokensSettings = field(default_factory=TokensSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    # Applications of the hosted login pages, by client_id.
    clients: Mapping[str, ClientSettings] = field(default_factory=dict, metadata={
        "key_pattern": (formats.CLIENT_ID, "keys must be client ids like demo")})
    branding: BrandingSettings = field(default_factory=BrandingSettings)
    base_dir: str = field(default=".", metadata={"internal": True})

    def path(self, relative: str) -> Path:
        """A configured path, relative to the config file's directory."""
        return Path(self.base_dir, relative)


def load_settings(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or $MFA_CONFIG, or defaults when neither is given) and apply MFA_* overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_PATH_VARIABLE) or None
    data: dict[str, Any] = {}
    base_dir = "."
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        base_dir = str(Path(path).resolve().parent)
    for dotted, raw in _overrides(environ).items():
        _set_override(data, dotted, raw)
    settings: Settings = dataclasses.replace(_build(Settings, data, ""), base_dir=base_dir)
    _check_coherence(settings)
    return settings


def _overrides(environ: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and name != CONFIG_PATH_VARIABLE:
            found[name[len(ENV_PREFIX):].lower().replace("__", ".")] = value
    return found


def _set_override(data: dict[str, Any], dotted: str, raw: str) -> None:
    """A trigger's short form from the environment sets only its key (`true`: `enabled`, a list:
    `actions`), so the file's tuning stays; a file's short form is widened before a nested key
    is set into it (`new_device: true` + MFA_MFA__TRIGGERS__NEW_DEVICE__DAYS)."""
    kind: Any = Settings
    parts = dotted.split(".")
    target = data
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(kind) if dataclasses.is_dataclass(kind) else {}
        if part not in hints or part == "base_dir":
            env_name = ENV_PREFIX + "__".join(parts).upper()
            raise ConfigError(f"{dotted}: unknown key (from the environment variable {env_name})")
        trigger = _trigger_of(kind, part)
        kind = hints[part]
        path = ".".join(parts[:depth + 1])
        if trigger is not None and part in target:
            target[part] = _widen(kind, target[part], path, trigger)
        if depth == len(parts) - 1:
            value = _parse_env_value(kind, raw, trigger)
            if trigger is not None and not isinstance(value, dict) and isinstance(target.get(part), dict):
                value = {**target[part], **_widen(kind, value, path, trigger)}
            target[part] = value
        else:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[:depth + 1])}: must be a mapping")
            target = child


def _parse_env_value(kind: Any, raw: str, trigger: Mapping[str, Any] | None = None) -> Any:
    if kind is str:
        return raw
    if trigger is not None and trigger["short_list"]:
        value = _parse_env_value(Any, raw)
        if value is None or isinstance(value, str):  # sensitive_actions=transfer,change_profile
            return _parse_env_value(tuple[str, ...], raw)
        return value
    if typing.get_origin(kind) is tuple:
        stripped = raw.strip()
        if stripped.startswith("["):
            return yaml.safe_load(stripped)
        return [item.strip() for item in stripped.split(",") if item.strip()]
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _build(kind: type[Any], data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(kind)
    known = {f.name: f for f in dataclasses.fields(kind) if not f.metadata.get("internal")}
    for key in data:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key")
    values = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _coerce(hints[name], data[name], f"{prefix}{name}", spec.metadata)
    return kind(**values)


def _trigger_of(kind: Any, name: str) -> Mapping[str, Any] | None:
    """The short forms of `kind`'s field `name` when it is a trigger, else None."""
    if not dataclasses.is_dataclass(kind):
        return None
    spec = next((f for f in dataclasses.fields(kind) if f.name == name), None)
    found: Mapping[str, Any] | None = spec.metadata.get("trigger") if spec is not None else None
    return found


def _has_switch(kind: Any) -> bool:
    return any(f.name == "enabled" for f in dataclasses.fields(kind))


def _widen(kind: Any, value: Any, path: str, trigger: Mapping[str, Any]) -> Any:
    """A trigger's short form as the mapping it stands for; a mapping as given."""
    if type(value) is bool:
        if _has_switch(kind):
            return {"enabled": value}
        if not value:
            return {}
        raise ConfigError(f"{path}: true names no {trigger['nothing']} (must be {trigger['forms']})")
    if isinstance(value, list) and trigger["short_list"]:
        return {trigger["short_list"]: value}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: must be {trigger['forms']}")
    return value


def _coerce(kind: Any, value: Any, path: str, metadata: Mapping[str, Any]) -> Any:
    choices = metadata.get("choices")
    trigger = metadata.get("trigger")
    if trigger is not None:
        value = _widen(kind, value, path, trigger)
        if _has_switch(kind) and "enabled" not in value:
            value = {**value, "enabled": True}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: must be a mapping")
        return _build(kind, value, path + ".")
    if kind is bool:
        if type(value) is not bool:
            raise ConfigError(f"{path}: must be true or false")
        return value
    if kind is int:
        if type(value) is not int:
            raise ConfigError(f"{path}: must be an integer")
        low, high = metadata.get("range", (None, None))
        if low is not None and not low <= value <= high:
            raise ConfigError(f"{path}: must be {low}..{high}")
        return value
    if kind is str:
        if value is False and choices and "off" in choices:
            value = "off"  # YAML 1.1 reads a bare `off` as false: `cpu_affinity: off` means the choice
        if type(value) is not str:
            raise ConfigError(f"{path}: must be a string")
        _check_text(value, path, metadata)
        if choices and value not in choices:
            raise ConfigError(f"{path}: must be one of {', '.join(choices)}")
        return value
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, list) or any(type(item) is not str for item in value):
            raise ConfigError(f"{path}: must be a list of strings")
        for item in value:
            _check_text(item, path, metadata)
        if choices and any(item not in choices for item in value):
            raise ConfigError(f"{path}: items must be among {', '.join(choices)}")
        if len(set(value)) != len(value):
            raise ConfigError(f"{path}: items must not repeat")
        return tuple(value)
    if typing.get_origin(kind) is Mapping and typing.get_args(kind)[1] is not str:
        return _mapping_of(typing.get_args(kind)[1], value, path, metadata)
    if typing.get_origin(kind) is Mapping:
        if not isinstance(value, dict) or any(type(k) is not str or type(v) is not str for k, v in value.items()):
            raise ConfigError(f"{path}: must be a mapping of strings to strings")
        for key, item in value.items():
            _check_text(key, path, {"pattern": metadata["key_pattern"]} if "key_pattern" in metadata else {})
            _check_text(item, path, {})
        if choices and any(v not in choices for v in value.values()):
            raise ConfigError(f"{path}: values must be among {', '.join(choices)}")
        return dict(value)
    raise ConfigError(f"{path}: unsupported setting type")  # pragma: no cover - schema bug


def _mapping_of(kind: Any, value: Any, path: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping whose values are settings of their own (clients, per-locale texts), each
    checked under its key's dotted path (`clients.demo.redirect_uris`)."""
    if not isinstance(value, dict) or any(type(key) is not str for key in value):
        raise ConfigError(f"{path}: must be a mapping")
    pattern = {"pattern": metadata["key_pattern"]} if "key_pattern" in metadata else {}
    built = {}
    for key, item in value.items():
        _check_text(key, path, pattern)
        built[key] = _coerce(kind, item, f"{path}.{key}", {})
    return built


def _check_text(value: str, path: str, metadata: Mapping[str, Any]) -> None:
    lines = value.replace("\r\n", "\n").split("\n") if metadata.get("multiline") else [value]
    if not all(formats.is_identifier(line) for line in lines):
        raise ConfigError(f"{path}: must be printable text on one line, without control or invisible characters "
                          "or spaces at either end")
    pattern = metadata.get("pattern")
    if pattern is not None and pattern[0].fullmatch(value) is None:
        raise ConfigError(f"{path}: {pattern[1]}")
    if metadata.get("url") and value:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"{path}: must be an http:// or https:// URL")


def _check_client(path: str, client: ClientSettings) -> None:
    """Redirect URIs are matched exactly: formats.is_redirect_uri says which may be registered
    (the admin API's clients are held to the same rule)."""
    if not client.redirect_uris:
        raise ConfigError(f"{path}.redirect_uris: at least one is required")
    for uri in client.redirect_uris:
        if not formats.is_redirect_uri(uri):
            raise ConfigError(f"{path}.redirect_uris: {formats.REDIRECT_URI_RULE}")


DIRECTORY_URL_FORMS = "sqlite:///PATH or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"


def _check_directory_url(url: str) -> None:
    """The URL's parts are never echoed: it may carry a password."""
    if url.startswith("sqlite:///"):
        return
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"directory.url: must be {DIRECTORY_URL_FORMS}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ConfigError("directory.url: the port must be a number from 1 to 65535") from None
    if not parts.path.strip("/"):
        raise ConfigError(f"directory.url: a PostgreSQL URL names its database: {DIRECTORY_URL_FORMS}")


def _check_coherence(settings: Settings) -> None:
    countries = settings.mfa.triggers.countries
    for country in countries.deny:
        if country in countries.require_mfa_outside:
            raise ConfigError(f"mfa.triggers.countries: {country} is both a home country (require_mfa_outside) "
                              "and denied")
    if "login" in settings.mfa.triggers.sensitive_actions.actions:
        raise ConfigError("mfa.triggers.sensitive_actions.actions: login is not a sensitive action "
                          "(mfa.policy: required asks for a factor on every login)")
    if settings.sandbox.rule_timeout_ms > settings.sandbox.pipeline_timeout_ms:
        raise ConfigError("sandbox.rule_timeout_ms: must not exceed sandbox.pipeline_timeout_ms")
    for network in settings.geoip.allow_networks:
        try:
            ipaddress.ip_network(network)
        except ValueError:
            raise ConfigError("geoip.allow_networks: items must be networks in CIDR notation") from None
    for network in settings.http.trusted_proxies:
        try:
            ipaddress.ip_network(network)
        except ValueError:
            raise ConfigError("http.trusted_proxies: items must be networks in CIDR notation") from None
    for client_id, client in settings.clients.items():
        _check_client(f"clients.{client_id}", client)
    for key in settings.api.keys:
        if len(key) < 16:
            raise ConfigError("api.keys: every key must be at least 16 characters")
    _check_directory_url(settings.directory.url)
    if settings.store.redis_url and not settings.store.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("store.redis_url: must be redis://, rediss:// or unix://")
    if settings.admin.token and len(settings.admin.token) < 16:
        raise ConfigError("admin.token: must be at least 16 characters")
    if settings.metrics.token and len(settings.metrics.token) < 16:
        raise ConfigError("metrics.token: must be at least 16 characters")
    if settings.sms.gateway == "webhook" and not (settings.sms.webhook.url and settings.sms.webhook.secret):
        raise ConfigError("sms.webhook: url and secret are required with sms.gateway: webhook")
    if settings.sms.gateway == "twilio" and not (settings.sms.twilio.account_sid and settings.sms.twilio.auth_token
                                                and settings.sms.twilio.from_number):
        raise ConfigError("sms.twilio: account_sid, auth_token and from_number are required with sms.gateway: twilio")
    if settings.tokens.algorithm == "HS256" and settings.tokens.signing_key and len(settings.tokens.signing_key) < 32:
        raise ConfigError("tokens.signing_key: an HS256 secret must be at least 32 characters")
    if settings.secrets.previous_keys and not settings.secrets.key:
        raise ConfigError("secrets.previous_keys: needs secrets.key (the key that seals now)")
    if settings.tokens.previous_signing_keys and not settings.tokens.signing_key:
        raise ConfigError("tokens.previous_signing_keys: needs tokens.signing_key (the key that signs now)")
    if settings.environment == "production":
        if not settings.api.keys:
            raise ConfigError("api.keys: production needs at least one API key")
        if DEMO_API_KEY in settings.api.keys:
            raise ConfigError("api.keys: the demo key from config.yaml must be replaced in production")
        if settings.admin.token == DEMO_ADMIN_TOKEN:
            raise ConfigError("admin.token: the demo token from config.yaml must be replaced in production")
        if settings.sms.gateway == "console" and not settings.sms.allow_console_outside_development:
            raise ConfigError("sms.gateway: the console gateway only prints codes; refused in production "
                              "(set sms.allow_console_outside_development: true to force it)")
        if not settings.secrets.key:
            raise ConfigError("secrets.key: production needs a key (32 random bytes, base64)")
        if not settings.tokens.signing_key:
            raise ConfigError("tokens.signing_key: production needs a signing key")
