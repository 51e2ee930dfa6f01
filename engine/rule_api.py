"""What a rule sees: `user`, `context` and the objects under them, each validating what rules ask of it.

This module runs inside sandbox workers, so it imports only the standard library and the
sandbox. Everything a rule receives is read-only or validates what it is given; every
request a rule makes (factors, claims, denial) is checked here, not trusted later.
The rule-author documentation is docs/rules.md: keep both in step.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, cast
from urllib.parse import urlsplit

from engine.metadata import MetadataChanges
from sandbox.plain import freeze
from sandbox.redaction import NO_REDACTION, Redactor, redact_plain
from sandbox.text import describe, join_display, valid_unicode

FACTORS = ("otp", "sms", "recovery")
FACTOR_ALIASES = {"otp": "otp", "totp": "otp", "sms": "sms", "recovery": "recovery"}
# Options each factor accepts in add_factor(); none yet, and unknown ones are refused
# rather than ignored, so a typo in a rule fails loudly.
FACTOR_OPTIONS: dict[str, frozenset[str]] = {name: frozenset() for name in FACTORS}

MAX_FACTOR_CALLS = 16
MAX_CLAIMS = 20
MAX_CLAIM_SIZE = 4096
MAX_CLAIM_DEPTH = 4
MAX_REASON_LENGTH = 200
MAX_URL_LENGTH = 2048
MAX_CLAIM_INTEGER = 2**53 - 1
# completed_within(minutes=...): up to a leap year; a session's methods are never older than its token.
MAX_FRESHNESS_MINUTES = 366 * 24 * 60
# What one log() argument or one value named in an error message may take: the trace keeps
# at most the sandbox's max_output_bytes (16 KiB by default) of an evaluation's lines anyway.
MAX_TEXT_OF_A_VALUE = 16_384
# Registered JWT and OIDC claims, and the engine's own (engine/tokens.py), which the engine sets; rules may not forge them.
RESERVED_CLAIMS = frozenset("iss sub aud exp nbf iat jti amr acr auth_time azp sid nonce at_hash auth_methods "
                            "mfa_epoch".split())


def timestamp(value: str | None) -> datetime | None:
    """An aware UTC datetime; ValueError for text that is not one (the HTTP schema refuses such
    input first; the sandbox turns a binding that fails into a failed evaluation)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    # A naive time is UTC, never the host's local zone: workers run with an empty
    # environment, and both runners must read the same instant.
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range in UTC") from None


class _Record:
    """Read-only attribute bag: slots set once at construction, by keyword (absent: None;
    names that are not slots are ignored)."""

    __slots__: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:  # a record that writes its own keeps it
            setattr(cls, "__init__", _slot_init(cls))

    def __init__(self, **values: Any) -> None:  # each subclass's own, made by _slot_init
        raise TypeError("_Record is abstract")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__.lower()} is read-only")

    def __repr__(self) -> str:
        return f"<{type(self).__name__.lower()}>"


def _slot_init(cls: type[_Record]) -> Callable[..., None]:
    """`__init__` for the slots of `cls`, one keyword parameter each, as dataclasses writes
    them: a login builds ten records, and a loop over the slots reading a **kwargs dict cost
    twice as much. Slots are set through their descriptors, found once here, since the
    record's own __setattr__ refuses every write."""
    names = cls.__slots__
    setters = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    source = (f"def __init__(self, *, {''.join(f'{name}=None, ' for name in names)}**_ignored):\n"
              + "".join(f"    _set_{name}(self, {name})\n" for name in names) + "    pass\n")
    exec(source, setters)  # the source holds the class's own slot names and nothing else
    init: Callable[..., None] = setters["__init__"]
    init.__qualname__, init.__module__ = f"{cls.__qualname__}.__init__", cls.__module__  # for tracebacks
    return init


class User(_Record):
    __slots__ = ("user_id", "username", "email", "email_verified", "name", "phone_number_masked",
                 "created_at", "last_login", "logins_count", "app_metadata", "user_metadata", "factors", "groups")


class Geo(_Record):
    __slots__ = ("country", "city", "latitude", "longitude", "accuracy_radius", "country_name", "continent",
                 "subdivision", "time_zone")


class Connection(_Record):
    __slots__ = ("ip", "ip_country", "geo")


class Request(_Record):
    __slots__ = ("user_agent", "device_id", "hostname")


class Client(_Record):
    __slots__ = ("client_id", "name")


class Stats(_Record):
    __slots__ = ("logins_count",)


class Risk(_Record):
    # triggers: the built-in triggers that fired (tuple of names, engine/triggers.TRIGGER_NAMES
    # order); impossible_travel: travel_kmh above mfa.triggers.impossible_travel.max_kmh (None
    # when unknown), a fact whether or not that trigger is enabled.
    __slots__ = ("first_login", "first_login_to_client", "new_device", "new_country", "travel_kmh", "triggers",
                 "impossible_travel")


class Method(_Record):
    __slots__ = ("name", "timestamp")
    name: str
    timestamp: datetime | None


class Authentication(_Record):
    __slots__ = ("methods", "_now")
    methods: tuple[Method, ...]
    _now: datetime

    def completed_within(self, minutes: object, factors: object = None) -> bool:
        """Whether one of `factors` (default: any; never the password, which is no factor) was
        completed in the last `minutes` before `context.now`, the boundary included. Freshness
        is by time: a factor passed at 10:00 is not within 5 minutes at 10:06. A completion time
        after `context.now` (a skewed clock, a forged entry) is never fresh."""
        if isinstance(minutes, bool) or not isinstance(minutes, int | float):
            raise TypeError("completed_within(minutes=...) takes a number")
        if not 0 <= minutes <= MAX_FRESHNESS_MINUTES:  # NaN fails this too
            raise ValueError(f"completed_within(minutes=...) must be 0 to {MAX_FRESHNESS_MINUTES}")
        wanted = frozenset(FACTORS) if factors is None else _factor_names(factors)
        cutoff = self._now - timedelta(minutes=minutes)
        return any(FACTOR_ALIASES.get(method.name, "") in wanted and method.timestamp is not None
                   and cutoff <= method.timestamp <= self._now for method in self.methods)


def _factor_names(factors: object) -> frozenset[str]:
    if type(factors) not in (list, tuple):
        raise TypeError("completed_within(factors=...) takes a list of factor names")
    names = cast("list[object] | tuple[object, ...]", factors)
    if not 0 < len(names) <= MAX_FACTOR_CALLS:
        raise ValueError(f"completed_within(factors=...) must name 1 to {MAX_FACTOR_CALLS} factors")
    return frozenset(_factor_name(name) for name in names)


# Hosts a development return_to may name over plain http: the developer's own machine.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Text browsers read differently from urlsplit: "https://good\\@evil" goes to evil in a browser.
_URL_TRAPS = frozenset("\\ \t\r\n\x00<>\"`{}|^")


def return_url_allowed(url: str, http_localhost: bool) -> bool:
    """An absolute https URL with a host, or (development) http to this machine; never one with
    a user name or password (`https://good.example@evil.example` leads to evil.example)."""
    # ASCII only (other characters percent-encoded, as browsers send them): urlsplit's check of a
    # non-ASCII host imports unicodedata, which a worker cannot, and IDNA hosts have an ASCII form.
    if not url.isascii() or any(char in _URL_TRAPS or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not _plain_host(parts.hostname):
        return False
    if parts.scheme == "https":
        return True
    return http_localhost and parts.scheme == "http" and parts.hostname in LOCAL_HOSTS


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _plain_host(host: str | None) -> bool:
    """A host every browser and every application reads the same way: ASCII DNS labels (IDNA
    names in their xn-- form) or an IP address literal. Refused: non-ASCII and percent-escaped
    hosts, which browsers normalise ("evil.example\u3002com"), IPv6 zone ids, and numbers that
    are not a dotted-quad IPv4 address ("2130706433", "0x7f.1": other spellings of 127.0.0.1)."""
    if not host or "%" in host:
        return False
    if ":" in host:  # urlsplit keeps an IPv6 literal's text without its brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    labels = host.removesuffix(".").split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return False
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return True


def _factor_name(value: object) -> str:
    if type(value) is not str or value not in FACTOR_ALIASES:
        raise ValueError(f"unknown factor {_shown(value)}; known factors: {', '.join(FACTOR_ALIASES)}")
    return FACTOR_ALIASES[value]


MAX_SHOWN = 100


def _shown(value: object) -> str:
    """A value named in an error message: whole, or not at all. A cut inside a secret setting would
    keep all but its last characters, which the redaction (made later, of the whole message) no
    longer recognises."""
    shown = describe(value, MAX_SHOWN)
    return shown if len(shown) <= MAX_SHOWN else f"(a {type(value).__name__} too long to show)"


class Multifactor:
    """`context.multifactor`: whether a second factor is required, and which ones first.

    Requirements only get stricter as rules run: a later `enable()` keeps an earlier rule's
    provider restriction (only an explicit provider replaces it) and cannot allow a remembered
    browser an earlier `enable()` refused. `disable()` drops the requirement whole, restriction
    and browser setting included, except under `mfa.policy: required`, where it is ignored (and
    the rule's trace says so). The rule that set the provider, and the rules whose `enable()` (or
    failure, with `on_error: require_mfa`) require the factor, are recorded for the trace.

    The state below lives in the instance dict rather than slots: the host checkpoints it before
    every rule (engine/rule_host.py), and one dict copy is a tenth of reading sixteen slots.
    Rules reach none of it: names starting with "_" do not compile, and the guards allow only
    the public names (RuleHost.access).
    """

    WRITABLE = frozenset({"return_to", "returnTo"})
    _required: bool
    _forced: bool
    _provider: str
    _provider_set_by: str | None  # the id of the rule whose enable() set `_provider`
    _allow_remember_browser: bool
    _factors: tuple[str, ...]
    _calls: int
    _return_to: str | None
    _rule: str | None  # the id of the rule now running (the host says, RuleBinding.checkpoint)
    _http_localhost: bool  # whether return_to may be http://localhost (development)
    _required_by: tuple[str, ...]  # ids of the rules whose enable() holds, in pipeline order
    _forced_by: tuple[str, ...]  # ids of the failed rules whose on_error is require_mfa
    _policy_required: bool  # mfa.policy is required for this login: disable() is ignored
    _disable_ignored_by: tuple[str, ...]  # ids of the rules whose disable() was ignored
    _note: Callable[[str], None] | None  # the running rule's trace
    _redactor: Redactor  # secret settings, taken out of return_to before it is checked

    def __init__(self, http_localhost: bool = False, *, policy_required: bool = False,
                 note: Callable[[str], None] | None = None, redactor: Redactor = NO_REDACTION) -> None:
        self.__dict__.update(_http_localhost=http_localhost, _redactor=redactor, _forced=False, _rule=None,
                             _factors=(), _calls=0, _return_to=None, _forced_by=(),
                             _policy_required=policy_required, _disable_ignored_by=(), _note=note)
        self._drop_requirement()

    def _drop_requirement(self) -> None:
        self.__dict__.update(_required=False, _provider="any", _provider_set_by=None, _allow_remember_browser=False,
                             _required_by=())

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.WRITABLE:
            raise AttributeError(f"multifactor.{name} cannot be assigned")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return "<multifactor>"

    def enable(self, provider: str = "any", allow_remember_browser: bool = False, *,
               allowRememberBrowser: bool | None = None) -> None:
        """Require a second factor. `provider` names the one factor allowed; "any" (the default)
        keeps whatever an earlier rule named, so a rule asking for "a" factor (a new device)
        cannot widen one that asked for the authenticator (a transaction)."""
        if allowRememberBrowser is not None:
            allow_remember_browser = allowRememberBrowser
        if provider != "any":
            provider = _factor_name(provider)
        if type(allow_remember_browser) is not bool:
            raise TypeError("allow_remember_browser must be True or False")
        if self._required:
            allow_remember_browser = allow_remember_browser and self._allow_remember_browser
        if provider != "any":
            object.__setattr__(self, "_provider", provider)
            object.__setattr__(self, "_provider_set_by", self._rule)
        if self._rule is not None and self._rule not in self._required_by:
            object.__setattr__(self, "_required_by", (*self._required_by, self._rule))
        object.__setattr__(self, "_required", True)
        object.__setattr__(self, "_allow_remember_browser", allow_remember_browser)

    def add_factor(self, name_or_dict: object, **options: object) -> None:
        """Prioritise a factor; the first one added becomes the default the user is offered."""
        object.__setattr__(self, "_calls", self._calls + 1)
        if self._calls > MAX_FACTOR_CALLS:
            raise ValueError(f"add_factor called more than {MAX_FACTOR_CALLS} times")
        if isinstance(name_or_dict, Mapping):
            options = {**{k: v for k, v in name_or_dict.items() if k != "name"}, **options}
            name_or_dict = name_or_dict.get("name")
        name = _factor_name(name_or_dict)
        unknown = set(options) - FACTOR_OPTIONS[name]
        if unknown:
            raise ValueError(f"unknown option(s) for factor {name}: {', '.join(sorted(map(str, unknown)))}")
        if name not in self._factors:
            object.__setattr__(self, "_factors", (*self._factors, name))

    addFactor = add_factor

    def disable(self) -> None:
        """Drop an earlier rule's requirement, with its provider and remembered-browser settings.
        A failed rule's fail-closed requirement stays; under `mfa.policy: required` nothing is dropped."""
        if self._policy_required:
            if self._rule is not None and self._rule not in self._disable_ignored_by:
                object.__setattr__(self, "_disable_ignored_by", (*self._disable_ignored_by, self._rule))
            if self._note is not None:
                self._note("multifactor.disable() ignored: mfa.policy is required")
            return
        self._drop_requirement()

    @property
    def required(self) -> bool:
        return self._required or self._forced

    @property
    def factors(self) -> tuple[str, ...]:
        return self._factors

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def allow_remember_browser(self) -> bool:
        # A fail-closed requirement must be met by a factor now, not by a remembered browser.
        return self._allow_remember_browser and not self._forced

    @property
    def return_to(self) -> str | None:
        return self._return_to

    @return_to.setter
    def return_to(self, url: object) -> None:
        if type(url) is str:
            url = self._redactor(url)  # before the checks: the URL that is checked is the one handed back
        if url is not None and (type(url) is not str or len(url) > MAX_URL_LENGTH or not valid_unicode(url)):
            raise ValueError(f"return_to must be a string of at most {MAX_URL_LENGTH} characters")
        if url is not None and not return_url_allowed(url, self._http_localhost):
            raise ValueError("return_to must be an https:// URL with a host and no user name or password"
                             + (" (or http://localhost)" if self._http_localhost else
                                "; http://localhost is accepted in development only"))
        object.__setattr__(self, "_return_to", url)

    returnTo = return_to

    def _force(self, rule_id: str | None = None) -> None:
        object.__setattr__(self, "_forced", True)
        if rule_id is not None and rule_id not in self._forced_by:
            object.__setattr__(self, "_forced_by", (*self._forced_by, rule_id))

    @property
    def _required_by_rules(self) -> tuple[str, ...]:
        """The rules that require the factor: their enable() holds, or they failed closed."""
        held = self._required_by if self._required else ()
        return (*held, *(rule for rule in self._forced_by if rule not in held))

    def _begin_rule(self, rule_id: str | None) -> dict[str, Any]:
        """The host says which rule runs next: each gets its own add_factor budget, and a
        provider it sets is recorded under its id. Returns the state to come back to if the
        rule fails: a copy, whose values are immutable."""
        state = self.__dict__
        state["_rule"] = rule_id
        state["_calls"] = 0
        return state.copy()

    def _load(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class Claims:
    """`context.claims`: namespaced claims for the issued token, plain data only.

    `_values` is copied on write, never changed in place: the host's checkpoint before each
    rule keeps the dict as it is (engine/rule_host.py), and a rule that fails is rolled back
    to it. Rules set a few claims per login and the pipeline checkpoints before every rule."""

    __slots__ = ("_values", "_redactor")

    def __init__(self, redactor: Redactor = NO_REDACTION) -> None:
        self._values: dict[str, Any] = {}
        self._redactor = redactor  # secret settings, taken out of names and values before their bounds

    def __setitem__(self, key: object, value: object) -> None:
        if type(key) is str:
            key = self._redactor(key)
        if type(key) is not str or not 0 < len(key) <= 200 or not valid_unicode(key):
            raise ValueError("claim names are strings of 1 to 200 characters")
        if key in RESERVED_CLAIMS:
            raise ValueError(f"claim {key!r} is set by the engine")
        if "/" not in key and ":" not in key:
            raise ValueError(f"claim {key!r} must be namespaced, e.g. 'https://example.com/{key}'")
        if key not in self._values and len(self._values) >= MAX_CLAIMS:
            raise ValueError(f"at most {MAX_CLAIMS} claims")
        if self._redactor:
            _plain_size(value, MAX_CLAIM_DEPTH)  # plain data, within the depth: then it can be walked
            value = redact_plain(value, self._redactor)
        if _plain_size(value, MAX_CLAIM_DEPTH) > MAX_CLAIM_SIZE:
            raise ValueError(f"claim {key!r} is larger than {MAX_CLAIM_SIZE} bytes")
        self._values = {**self._values, key: freeze(value)}

    # A rule names a claim as it set it; the name kept is the redacted one.
    def __getitem__(self, key: str) -> Any:
        return self._values[self._name(key)]

    def __delitem__(self, key: str) -> None:
        values = dict(self._values)
        del values[self._name(key)]
        self._values = values

    def __contains__(self, key: object) -> bool:
        return self._name(key) in self._values

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(self._name(key), default)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._values)

    def __repr__(self) -> str:
        return "<claims>"

    def _name(self, key: Any) -> Any:
        return self._redactor(key) if type(key) is str else key


class Settings:
    """`context.settings`: the rule settings set through the admin API, read-only like a frozen
    dict (a missing key raises KeyError; `get` takes a default). Values are frozen plain data."""

    __slots__ = ("_values",)
    _values: Mapping[str, Any]

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("context.settings is read-only")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._values))

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._values)

    def values(self) -> tuple[Any, ...]:
        return tuple(self._values.values())

    def items(self) -> tuple[tuple[str, Any], ...]:
        return tuple(self._values.items())

    def __repr__(self) -> str:
        return "<settings>"


def _plain_size(value: object, depth: int) -> int:
    """Approximate JSON size of plain data; raises for anything that is not plain data."""
    kind = type(value)
    if depth <= 0 and kind in (list, tuple, dict, MappingProxyType):
        raise ValueError("claim values nest at most 4 levels")
    if value is None or kind is bool:
        return 5
    if kind is int:
        # Exact in every JSON reader (JavaScript's too), and within what the encoder can write:
        # 2 ** 70 passed and then failed to encode (a 500 in-process).
        if not -MAX_CLAIM_INTEGER <= value <= MAX_CLAIM_INTEGER:  # type: ignore[operator]
            raise ValueError("claim integers must lie within +-(2**53 - 1)")
        return len(str(value))
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise ValueError("claim values must be finite numbers")
        return 24
    if kind is str:
        if not valid_unicode(value):  # type: ignore[arg-type]
            raise ValueError("claim text must be valid Unicode (it has a lone surrogate)")
        return len(value) + 2  # type: ignore[arg-type]
    if kind in (list, tuple):
        total = 2
        for item in value:  # type: ignore[attr-defined]
            total += _plain_size(item, depth - 1) + 1
        return total
    if kind in (dict, MappingProxyType):
        items = value.items()  # type: ignore[attr-defined]
        if any(type(key) is not str for key, _ in items):
            raise ValueError("claim objects need string keys")
        return 2 + sum(_plain_size(key, depth) + 2 + _plain_size(item, depth - 1) for key, item in items)
    raise ValueError(f"claim values must be plain data, not {kind.__name__}")


class _Remembering(_Record):
    """Rules that remember: the part of `context` that changes the user's metadata (engine/metadata.py).

    What a rule sets is saved only when the login completes; the engine's binding supplies
    `_metadata` and rolls it back with the rest of a failed rule's changes."""

    __slots__ = ("_metadata",)
    _metadata: MetadataChanges

    def set_app_metadata(self, key: object, value: object) -> None:
        """Set (None: delete) `key` in the user's app_metadata once the login completes."""
        self._metadata.set("app_metadata", key, value)

    def set_user_metadata(self, key: object, value: object) -> None:
        """Set (None: delete) `key` in the user's user_metadata once the login completes."""
        self._metadata.set("user_metadata", key, value)

    setAppMetadata = set_app_metadata
    setUserMetadata = set_user_metadata


class Context(_Remembering):
    __slots__ = ("connection", "request", "client", "action", "stats", "risk", "authentication", "now",
                 "multifactor", "claims", "settings", "_denial", "_log", "_redactor")
    connection: Connection
    request: Request
    client: Client
    action: str
    stats: Stats
    risk: Risk
    authentication: Authentication
    now: datetime
    multifactor: Multifactor
    claims: Claims
    settings: Settings
    _denial: str | None
    _log: Callable[[str], None]
    _redactor: Redactor  # secret settings: taken out of reasons and log lines before they are cut

    def deny(self, reason: object = "access denied") -> None:
        """End the pipeline: the login is refused with `reason` (shown to the application)."""
        if type(reason) is not str:
            raise TypeError("deny(reason) takes a string")
        if not valid_unicode(reason):
            raise ValueError("deny(reason) must be valid Unicode (it has a lone surrogate)")
        if self._denial is None:
            object.__setattr__(self, "_denial", self._redactor.bounded(lambda count: reason[:count],
                                                                       MAX_REASON_LENGTH))

    def log(self, *parts: object) -> None:
        def render(count: int) -> str:
            return join_display(parts, " ", count, _NEUTRAL_REPRS)

        self._log(self._redactor.bounded(render, MAX_TEXT_OF_A_VALUE))

    @property
    def denied(self) -> bool:
        return self._denial is not None


# The rule API's own types print as "<user>", "<claims>"...: no addresses, nothing nested.
_NEUTRAL_REPRS = frozenset({User, Geo, Connection, Request, Client, Stats, Risk, Method, Authentication,
                            Multifactor, Claims, Settings, Context})
