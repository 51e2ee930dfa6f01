"""Built-in MFA triggers (issue 10) as pure functions: a login's facts, the user's history of complete
logins and `mfa.triggers` in; which triggers fired, a country deny, the risk figures rules see and
notes for the decision trace out.

Risk figures are facts and are computed whether or not their trigger is enabled (rules read them in
`context.risk`); they are None when unknown, never guessed: an unknown country is `new_country=None`.
How the *triggers* treat an unknown location is `mfa.triggers.unknown_location` (`new`: fire; `ignore`:
pass, with a note). No I/O, no clock: the login's time is an argument.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.config import TriggersSettings
from engine.geo import GeoFacts

# Mean Earth radius (IUGG), km: the great-circle distance on a sphere is within 0.5 % of the
# ellipsoid's, far below the databases' accuracy radii.
EARTH_RADIUS_KM = 6371.0088
# The method name of the password in `amr`: it never satisfies a sensitive action.
PASSWORD_METHOD = "pwd"
DENY_COUNTRY = "country_denied"
# Actions sensitive whatever `mfa.triggers.sensitive_actions` lists (with its `within_minutes`):
# the hosted self-service page's changes to a user's own factors and recovery codes
# (engine/pages/account_changes.py) must always follow a fresh second factor.
ACCOUNT_SECURITY = "account_security"
ALWAYS_SENSITIVE = frozenset({ACCOUNT_SECURITY})
# Fixed order of `fired`, so traces and `required_by` read the same for the same login.
TRIGGER_NAMES = ("first_login", "new_device", "new_country", "impossible_travel", "countries", "sensitive_actions")


@dataclass(frozen=True, slots=True)
class Place:
    """Coordinates in degrees and the database's accuracy radius (km; 0 when it gives none)."""

    latitude: float
    longitude: float
    accuracy_radius_km: float = 0


@dataclass(frozen=True, slots=True)
class CompletedMethod:
    """One authentication method of the session (`amr` entry) and when it was completed."""

    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LoginFacts:
    """The login (or step-up) being decided. `at` is an aware datetime."""

    user_id: str
    client_id: str | None
    device_id: str | None
    country: str | None
    place: Place | None
    at: datetime
    action: str = "login"
    methods: tuple[CompletedMethod, ...] = ()


@dataclass(frozen=True, slots=True)
class PastLogin:
    """A previous complete login (password and, when asked, the second factor)."""

    at: datetime
    device_id: str | None
    country: str | None
    place: Place | None
    client_id: str | None


@dataclass(frozen=True, slots=True)
class History:
    """What complete logins of the user taught: `logins_count` from the user record; the rest from
    login events (engine/stores/login_events.py), or from the caller of /v1/evaluate, who may not
    know some of it: None is unknown (the figure is None; the trigger fires, with a note: leaving a
    list out must not avoid it). Times are aware."""

    logins_count: int
    last_login: PastLogin | None
    device_last_seen: Mapping[str, datetime] | None
    country_last_seen: Mapping[str, datetime] | None
    clients: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class Risk:
    """`context.risk` as rules see it; None where it cannot be known."""

    first_login: bool | None
    first_login_to_client: bool | None
    new_device: bool | None
    new_country: bool | None
    travel_kmh: float | None
    # travel_kmh above impossible_travel.max_kmh, whether or not that trigger is enabled.
    impossible_travel: bool | None = None

    def to_plain(self) -> dict[str, bool | float | None]:
        # JSON (and orjson on the worker pipe) has no infinity: the same instant at a distance
        # is given as the largest float, which still compares above any max_kmh.
        kmh = self.travel_kmh
        return {"first_login": self.first_login, "first_login_to_client": self.first_login_to_client,
                "new_device": self.new_device, "new_country": self.new_country,
                "travel_kmh": sys.float_info.max if kmh == math.inf else kmh,
                "impossible_travel": self.impossible_travel}


@dataclass(frozen=True, slots=True)
class Triggered:
    """`fired`: names from TRIGGER_NAMES, in that order; `deny_reason`: set when the login must be
    refused (countries.deny); `notes`: why an enabled trigger was skipped or how unknowns were read."""

    fired: tuple[str, ...]
    deny_reason: str | None
    risk: Risk
    notes: tuple[str, ...] = field(default=())


def place_of(facts: GeoFacts | None) -> Place | None:
    """The coordinates of GeoIP facts, or None unless the database gave both."""
    if facts is None or facts.latitude is None or facts.longitude is None:
        return None
    return Place(facts.latitude, facts.longitude, facts.accuracy_radius or 0)


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance (haversine), ignoring the accuracy radii."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat, dlon = lat2 - lat1, math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    # min(): rounding can put h a hair above 1 at the antipodes, outside asin's domain.
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def travel_kmh(before: Place, before_at: datetime, now: Place, now_at: datetime) -> float:
    """The slowest speed that explains both places: the distance less both accuracy radii (never
    below 0), over the hours between. No time, or negative time (clocks of two instances), between
    places that cannot be the same is infinite; between places that can, 0."""
    km = max(0.0, distance_km(before, now) - before.accuracy_radius_km - now.accuracy_radius_km)
    hours = (now_at - before_at).total_seconds() / 3600
    if hours <= 0:
        return math.inf if km > 0 else 0.0
    return km / hours


def evaluate(settings: TriggersSettings, login: LoginFacts, history: History | None) -> Triggered:
    """Which triggers fire for `login`. `history` None means it is unknown (not empty): the
    history triggers are skipped and their figures are None. Raises ValueError for naive times."""
    if login.at.tzinfo is None:
        raise ValueError("login times must be aware datetimes")
    fired: set[str] = set()
    notes: list[str] = []
    if history is None:
        risk = Risk(None, None, None, None, None)
        notes.append("history unknown: first_login, new_device, new_country and impossible_travel skipped")
    else:
        risk = _from_history(settings, login, history, fired, notes)
    _countries(settings, login, fired, notes)
    if _needs_step_up(settings, login):
        fired.add("sensitive_actions")
    deny = DENY_COUNTRY if login.country is not None and login.country in settings.countries.deny else None
    return Triggered(tuple([name for name in TRIGGER_NAMES if name in fired]), deny, risk, tuple(notes))


def _from_history(settings: TriggersSettings, login: LoginFacts, history: History, fired: set[str],
                  notes: list[str]) -> Risk:
    first_login = history.logins_count == 0
    to_client = None
    if login.client_id is not None and history.clients is not None:
        to_client = login.client_id not in history.clients
    if settings.first_login.enabled:
        if first_login or (settings.first_login.per_client and to_client):
            fired.add("first_login")
        if settings.first_login.per_client and to_client is None:
            notes.append("first_login per client skipped: " + (
                "no client_id" if login.client_id is None else "known clients unknown"))
    new_device = _is_new(login.device_id, history.device_last_seen, login.at, settings.new_device.days)
    if settings.new_device.enabled:
        # The caller decides whether to send a device id: leaving it out must not avoid the trigger.
        if new_device is None:
            notes.append("new_device: " + ("no device id" if login.device_id is None else "known devices unknown")
                         + ", counted as new")
        if new_device is not False:
            fired.add("new_device")
    new_country = _is_new(login.country, history.country_last_seen, login.at, settings.new_country.days)
    if settings.new_country.enabled:
        if new_country:
            fired.add("new_country")
        elif new_country is None and login.country is not None:
            fired.add("new_country")
            notes.append("new_country: known countries unknown, counted as new")
        elif new_country is None and settings.unknown_location == "new":
            fired.add("new_country")
            notes.append("new_country: unknown location counted as new")
        elif new_country is None:
            notes.append("new_country skipped: unknown location")
    kmh = _travel(settings, login, history, fired, notes)
    impossible = None if kmh is None else kmh > settings.impossible_travel.max_kmh
    return Risk(first_login, to_client, new_device, new_country, kmh, impossible)


def _is_new(key: str | None, last_seen: Mapping[str, datetime] | None, now: datetime, days: int) -> bool | None:
    if key is None or last_seen is None:
        return None
    seen = last_seen.get(key)
    return seen is None or now - seen > timedelta(days=days)


def _travel(settings: TriggersSettings, login: LoginFacts, history: History, fired: set[str],
            notes: list[str]) -> float | None:
    enabled = settings.impossible_travel.enabled
    previous = history.last_login
    if previous is None:
        if enabled:
            notes.append("impossible_travel skipped: no previous login")
        return None
    if previous.place is None or login.place is None:
        if enabled:
            notes.append("impossible_travel skipped: unknown coordinates")
        return None
    kmh = travel_kmh(previous.place, previous.at, login.place, login.at)
    if enabled and kmh > settings.impossible_travel.max_kmh:
        fired.add("impossible_travel")
    return kmh


def _countries(settings: TriggersSettings, login: LoginFacts, fired: set[str], notes: list[str]) -> None:
    home = settings.countries.require_mfa_outside
    if not home:
        return
    if login.country is None:
        if settings.unknown_location == "new":
            fired.add("countries")
            notes.append("countries: unknown location counted as outside require_mfa_outside")
        else:
            notes.append("countries skipped: unknown location")
    elif login.country not in home:
        fired.add("countries")


def is_sensitive(settings: TriggersSettings, action: str | None) -> bool:
    """Whether `action` needs a factor completed within `sensitive_actions.within_minutes`."""
    return action is not None and (action in settings.sensitive_actions.actions or action in ALWAYS_SENSITIVE)


def _needs_step_up(settings: TriggersSettings, login: LoginFacts) -> bool:
    sensitive = settings.sensitive_actions
    if not is_sensitive(settings, login.action):
        return False
    cutoff = login.at - timedelta(minutes=sensitive.within_minutes)
    # A completion after the login's own time is no real one (rule_api.Authentication.completed_within).
    return not any(method.name != PASSWORD_METHOD and cutoff <= method.at <= login.at for method in login.methods)
