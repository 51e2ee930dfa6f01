"""The benign corpus: rules security engineers really write; they must keep working on both runners.

Each entry names one situation and asserts the exact outcome: the whole result and every
rule's trace line. A guard that starts refusing something harmless breaks one of these
by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import SyncRunner, rule_payload

# The result of a pipeline that asked for nothing.
ALLOWED: dict[str, Any] = {
    "denied": False, "deny_reason": None, "mfa_required": False, "provider": "any", "provider_set_by": None,
    "allow_remember_browser": False, "factors": [], "return_to": None, "claims": {}, "failed_rules": [],
    "metadata_updates": {"app_metadata": {}, "user_metadata": {}},
}

SPRINGFIELD = {"country": "US", "city": "Springfield", "latitude": 39.8, "longitude": -89.6, "accuracy_radius": 50}
PARIS = {"country": "FR", "city": "Paris", "latitude": 48.86, "longitude": 2.35, "accuracy_radius": 20}


def connection(ip: str | None, country: str | None, geo: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"ip": ip, "ip_country": country, "geo": dict(geo) if geo else None}


def methods(*pairs: tuple[str, str]) -> dict[str, Any]:
    """`context.authentication` with (name, ISO timestamp) pairs."""
    return {"methods": [{"name": name, "timestamp": timestamp} for name, timestamp in pairs]}


# -- the rules ----------------------------------------------------------------------------

MFA_OUTSIDE_HOME = '''
"""Require a second factor outside the US and Canada, authenticator app first."""

HOME_COUNTRIES = {"US", "CA"}


def rule(user, context):
    country = context.connection.ip_country
    if country is None or country not in HOME_COUNTRIES:
        context.multifactor.enable(allow_remember_browser=False)
        context.multifactor.add_factor("otp")
        context.multifactor.add_factor("sms")
        context.log("second factor required outside home countries:", country or "unknown")
'''

MFA_FOR_EVERYONE = '''
"""Everyone gets a second factor unless a later rule waives it."""


def rule(user, context):
    context.multifactor.enable()
    context.multifactor.add_factor("otp")
'''

OFFICE_NETWORK = '''
"""The office networks skip the second factor."""

OFFICE_NETWORKS = [
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("2001:db8:10::/48"),
]


def office_network_of(address):
    for network in OFFICE_NETWORKS:
        if address in network:
            return network
    return None


def rule(user, context):
    try:
        address = ipaddress.ip_address(context.connection.ip)
    except ValueError:
        context.log("unparseable client address; keeping the second factor")
        return
    network = office_network_of(address)
    if network is not None:
        context.multifactor.disable()
        print(f"office network {network.with_prefixlen}")
'''

CONTRACTOR_EMAIL = r'''
"""Contractors use the authenticator app; unverified addresses need a second factor."""

CONTRACTOR_DOMAIN = re.compile(
    r"@(?:[a-z0-9-]+\.)*(contractors\.example\.com|partner\.example\.net)$", re.IGNORECASE
)


def rule(user, context):
    match = CONTRACTOR_DOMAIN.search(user.email or "")
    if match:
        context.multifactor.enable(provider="otp")
        context.multifactor.add_factor("otp")
        context.claims["https://example.com/affiliation"] = "contractor"
        context.log("contractor domain", match.group(1).lower())
    elif not user.email_verified:
        context.multifactor.enable()
        context.log("unverified email")
'''

SCRIPTED_CLIENTS = r'''
"""Refuse scripted clients on the interactive login; log the browser family."""

SCRIPTED = re.compile(r"^(curl|wget|python-requests|go-http-client)/([\d.]+)", re.IGNORECASE)
BROWSERS = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]


def browser_family(user_agent):
    return next((family for marker, family in BROWSERS if marker in user_agent), "other")


def rule(user, context):
    user_agent = context.request.user_agent or ""
    scripted = SCRIPTED.match(user_agent)
    if scripted:
        tool, version = scripted.groups()
        context.deny(f"scripted client {tool.lower()} {version} is not allowed")
        return
    print("browser:", browser_family(user_agent))
'''

STALE_LOGIN = '''
"""A user who has not signed in for 30 days proves it is still them."""

STALE_AFTER = datetime.timedelta(days=30)


def rule(user, context):
    if user.last_login is None:
        context.multifactor.enable()
        context.log("no previous login")
        return
    idle = context.now - user.last_login
    if idle > STALE_AFTER:
        context.multifactor.enable()
        context.multifactor.add_factor("otp")
        context.log(f"last login {idle.days} days ago ({user.last_login.date().isoformat()})")
'''

BUSINESS_HOURS = '''
"""Outside business hours (Monday to Friday, 08:00 to 18:00 UTC) ask for a second factor."""

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WORKDAYS = range(0, 5)
OPENING_HOUR, CLOSING_HOUR = 8, 18


def is_business_hours(moment):
    return moment.weekday() in WORKDAYS and OPENING_HOUR <= moment.hour < CLOSING_HOUR


def rule(user, context):
    if not is_business_hours(context.now):
        context.multifactor.enable(allow_remember_browser=True)
        now = context.now
        context.log(f"outside business hours: {DAY_NAMES[now.weekday()]} {now.hour:02d}:{now.minute:02d} UTC")
'''

RISK_SIGNALS = '''
"""A first login, a new device or a new country needs a second factor."""

SIGNALS = ("first_login", "new_device", "new_country")


def rule(user, context):
    risk = context.risk
    present = (risk.first_login, risk.new_device, risk.new_country)
    raised = [name for name, is_raised in zip(SIGNALS, present) if is_raised]
    if raised:
        context.multifactor.enable()
        context.log("risk signals:", ", ".join(raised))
    if risk.first_login and context.stats.logins_count == 0:
        context.claims["https://example.com/first_login"] = True
'''

STEP_UP = '''
"""Money movement and profile changes need an authenticator code from the last five minutes."""

SENSITIVE_ACTIONS = frozenset({"transaction", "change_profile"})
FRESHNESS = datetime.timedelta(minutes=5)
STRONG_METHODS = {"otp", "totp"}


def latest_strong_method(completed):
    strong = [m for m in completed if m.name in STRONG_METHODS and m.timestamp is not None]
    return max(strong, key=lambda method: method.timestamp, default=None)


def rule(user, context):
    if context.action not in SENSITIVE_ACTIONS:
        return
    latest = latest_strong_method(context.authentication.methods)
    if latest is not None and context.now - latest.timestamp <= FRESHNESS:
        age = (context.now - latest.timestamp).total_seconds()
        context.log(f"step-up satisfied by {latest.name} {age:.0f}s ago")
        return
    context.multifactor.enable(provider="otp", allow_remember_browser=False)
    context.multifactor.add_factor("otp")
    context.multifactor.return_to = f"https://{context.request.hostname}/{context.action}/confirm"
    context.log("step-up required for", context.action)
'''

PRIVILEGED_USERS = '''
"""Administrators, and organisations that enforce it, always need a second factor."""

PRIVILEGED_ROLES = {"admin", "billing-admin", "security-admin"}
PRIVILEGED_GROUPS = {"ops", "sre"}


def organisation_enforces_mfa(app_metadata):
    organisation = app_metadata.get("organisation") or {}
    if not isinstance(organisation, dict):
        return False
    return bool(organisation.get("security", {}).get("enforce_mfa", False))


def rule(user, context):
    roles = set(user.app_metadata.get("roles", ()))
    privileged = sorted((roles & PRIVILEGED_ROLES) | (set(user.groups) & PRIVILEGED_GROUPS))
    if privileged:
        context.multifactor.enable()
        context.multifactor.add_factor("otp")
        context.log("privileged:", ", ".join(privileged))
    elif organisation_enforces_mfa(user.app_metadata):
        context.multifactor.enable()
        context.log("organisation", user.app_metadata["organisation"]["id"], "enforces MFA")
'''

ROLE_CLAIMS = '''
"""Put the user's roles, plan and locale in the token."""

NAMESPACE = "https://example.com/"
PLAN_SEATS = {"free": 1, "pro": 5, "enterprise": 500}


def as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def rule(user, context):
    metadata = user.app_metadata
    roles = sorted({role.lower() for role in as_list(metadata.get("roles")) + as_list(user.groups)})
    context.claims[NAMESPACE + "roles"] = roles
    plan = metadata.get("plan", "free")
    context.claims[NAMESPACE + "plan"] = {"name": plan, "seats": PLAN_SEATS.get(plan, 1)}
    if "locale" in user.user_metadata:
        context.claims[NAMESPACE + "locale"] = user.user_metadata["locale"]
    context.log("claims:", ", ".join(sorted(context.claims.keys())))
'''

FAR_FROM_HOME = '''
"""More than 500 km from the user's home location needs a second factor."""

EARTH_RADIUS_KM = 6371.0
MAX_DISTANCE_KM = 500


def haversine_km(lat1, lon1, lat2, lon2):
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    delta_phi = math.radians(lat2 - lat1)
    delta_lambda = math.radians(lon2 - lon1)
    a = math.sin(delta_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(delta_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def rule(user, context):
    home = user.app_metadata.get("home")
    if home is None:
        return
    geo = context.connection.geo
    if geo is None or geo.latitude is None or geo.longitude is None:
        context.multifactor.enable()
        context.log("location unknown")
        return
    distance = haversine_km(home["lat"], home["lon"], geo.latitude, geo.longitude)
    if distance > MAX_DISTANCE_KM:
        context.multifactor.enable()
        context.log(f"{distance:,.0f} km from home ({geo.city or 'unknown city'})")
    else:
        context.log(f"{distance:.1f} km from home")
'''

PREFERRED_FACTOR = '''
"""Users who chose SMS get it first; everyone returns to the dashboard afterwards."""


def rule(user, context):
    if not user.factors:
        return
    context.multifactor.enable(provider="any", allow_remember_browser=True)
    if user.user_metadata.get("preferred_factor") == "sms" and "sms" in user.factors:
        context.multifactor.addFactor({"name": "sms"})
    context.multifactor.addFactor({"name": "otp"})
    context.multifactor.returnTo = "https://app.example.com/dashboard"
    print("factors offered:", context.multifactor.factors, "return to", context.multifactor.returnTo)
'''

REAUTH_WINDOW = '''
"""Tenants may set the re-authentication window in app_metadata; bad values fall back."""

DEFAULT_WINDOW_DAYS = 14
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 1, 90


def window_days(raw):
    try:
        days = int(raw)
    except (TypeError, ValueError):
        return DEFAULT_WINDOW_DAYS, f"invalid mfa_window_days {raw!r}"
    return min(max(days, MIN_WINDOW_DAYS), MAX_WINDOW_DAYS), None


def rule(user, context):
    days, problem = window_days(user.app_metadata.get("mfa_window_days", DEFAULT_WINDOW_DAYS))
    if problem:
        context.log(problem, "- using", days, "days")
    last = user.last_login or user.created_at
    if context.now - last > datetime.timedelta(days=days):
        context.multifactor.enable()
        context.log(f"re-authentication window of {days} days elapsed")
'''

FACTOR_ORDER = '''
"""Offer the user's enrolled factors strongest first, recovery codes last."""

STRENGTH = {"otp": 0, "totp": 0, "sms": 1, "recovery": 9}


def rule(user, context):
    if not context.multifactor.required:
        return
    ordered = sorted(user.factors, key=lambda name: (STRENGTH.get(name, 5), name))
    known = [name for name in ordered if name in STRENGTH]
    skipped = [name for name in user.factors if name not in STRENGTH]
    for name in known:
        context.multifactor.add_factor(name)
    if skipped:
        context.log("not offered:", ", ".join(skipped))
    context.log("order:", " > ".join(f"{position}.{name}" for position, name in enumerate(known, start=1)))
'''

REFUSED_ACCOUNTS = '''
"""Suspended accounts and embargoed countries are refused outright."""

EMBARGOED = {"KP", "IR", "SY", "CU"}


def rule(user, context):
    if user.app_metadata.get("status", "active") == "suspended":
        until = user.app_metadata.get("suspended_until")
        context.deny(f"account suspended until {until}" if until else "account suspended")
        return
    if context.connection.ip_country in EMBARGOED:
        context.deny(f"sign-in from {context.connection.ip_country} is not permitted")
'''

AUDIT_LINE = '''
"""Leave a readable line in the trace for every evaluation."""


def rule(user, context):
    geo = context.connection.geo
    where = f"{geo.city}, {geo.country}" if geo else "unknown location"
    print("login", user.username, "from", context.connection.ip, f"({where})")
    context.log("client", repr(context.client.name), "action", context.action)
    ratio = context.stats.logins_count / max(user.logins_count, 1)
    print(f"logins={context.stats.logins_count:>4d} ratio={ratio:.0%} verified={user.email_verified!s:>5}")
    print(user, context, context.multifactor, context.claims)
'''

EVERYDAY_FORMS = r'''
"""Imports, %-formatting, str.format and re.sub, as rule authors write them elsewhere."""

import re
from datetime import timedelta
from ipaddress import ip_address, ip_network

OFFICE = ip_network("198.51.100.0/24")
MASK = re.compile(r"(?<=.)[^@](?=[^@]*@)")


def rule(user, context):
    from math import floor
    masked = MASK.sub("*", user.email or "")
    where = "office" if ip_address(context.connection.ip) in OFFICE else "elsewhere"
    context.log("%-8s|%s (%s)" % (user.username, masked, where))
    idle = (context.now - user.last_login) / timedelta(days=1)
    context.log("{:>5.1f} days idle, {count:,} logins".format(idle, count=user.logins_count * 100))
    context.log("floor %(f)d of %(idle).2f" % {"f": floor(idle), "idle": idle})
    if where != "office":
        context.multifactor.enable()
        context.log(re.sub(r"(\w+)@(\w+)", r"\2:\1", "%s@%s" % (user.username, context.connection.ip_country)))
'''

SESSION_METHODS = '''
"""Summarise the methods completed in this session into a namespaced claim."""

LABELS = {"pwd": "password", "otp": "authenticator", "sms": "text message", "recovery": "recovery code"}


def rule(user, context):
    counts = {}
    order = []
    for method in context.authentication.methods:
        if method.name not in counts:
            order.append(method.name)
            counts[method.name] = 0
        counts[method.name] = counts[method.name] + 1
    summary = [{"method": LABELS.get(name, name), "count": counts[name]} for name in order]
    if summary:
        context.claims["https://example.com/session_methods"] = summary
    newest = sorted(context.authentication.methods, key=lambda m: m.timestamp, reverse=True)
    if newest:
        context.log("newest method:", newest[0].name, newest[0].timestamp.isoformat())
'''


# -- the corpus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Benign:
    """One situation: the rules in pipeline order, the payload, and exactly what comes out.

    `expected` overrides fields of ALLOWED; `logs` gives each rule's trace lines (default
    none); `ran` names the rules that ran when a deny stops the pipeline early.
    """

    name: str
    rules: Mapping[str, str]
    payload: dict[str, Any]
    expected: Mapping[str, Any] = field(default_factory=dict)
    logs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ran: tuple[str, ...] | None = None


OTP_THEN_SMS = {"mfa_required": True, "factors": ["otp", "sms"]}
OTP_FIRST = {"mfa_required": True, "factors": ["otp"]}

CORPUS = [
    # Require a second factor outside the US and Canada.
    Benign("login_from_the_us_needs_no_second_factor", {"10-mfa-outside-home": MFA_OUTSIDE_HOME},
           rule_payload()),
    Benign("login_from_canada_needs_no_second_factor", {"10-mfa-outside-home": MFA_OUTSIDE_HOME},
           rule_payload(connection=connection("203.0.113.9", "CA"))),
    Benign("login_from_france_requires_the_authenticator_app_then_sms", {"10-mfa-outside-home": MFA_OUTSIDE_HOME},
           rule_payload(connection=connection("203.0.113.9", "FR", PARIS)), OTP_THEN_SMS,
           {"10-mfa-outside-home": ("second factor required outside home countries: FR",)}),
    Benign("login_from_an_unknown_country_requires_a_second_factor", {"10-mfa-outside-home": MFA_OUTSIDE_HOME},
           rule_payload(connection=connection("203.0.113.9", None)), OTP_THEN_SMS,
           {"10-mfa-outside-home": ("second factor required outside home countries: unknown",)}),
    # Office networks waive the requirement an earlier rule set.
    Benign("the_office_ipv4_network_skips_the_second_factor",
           {"10-mfa-for-everyone": MFA_FOR_EVERYONE, "20-office-network": OFFICE_NETWORK},
           rule_payload(connection=connection("198.51.100.20", "US")), {"factors": ["otp"]},
           {"20-office-network": ("office network 198.51.100.0/24",)}),
    Benign("the_office_ipv6_network_skips_the_second_factor",
           {"10-mfa-for-everyone": MFA_FOR_EVERYONE, "20-office-network": OFFICE_NETWORK},
           rule_payload(connection=connection("2001:db8:10::5", "US")), {"factors": ["otp"]},
           {"20-office-network": ("office network 2001:db8:10::/48",)}),
    Benign("an_address_outside_the_office_keeps_the_second_factor",
           {"10-mfa-for-everyone": MFA_FOR_EVERYONE, "20-office-network": OFFICE_NETWORK},
           rule_payload(connection=connection("203.0.113.7", "US")), OTP_FIRST),
    Benign("an_unparseable_address_keeps_the_second_factor",
           {"10-mfa-for-everyone": MFA_FOR_EVERYONE, "20-office-network": OFFICE_NETWORK},
           rule_payload(connection=connection("not-an-ip", "US")), OTP_FIRST,
           {"20-office-network": ("unparseable client address; keeping the second factor",)}),
    # Regular expressions on the email domain and the user agent.
    Benign("a_contractor_email_domain_requires_the_authenticator_app", {"20-contractors": CONTRACTOR_EMAIL},
           rule_payload(user={"email": "bob@Eu.Contractors.Example.com"}),
           {"mfa_required": True, "provider": "otp", "provider_set_by": "20-contractors", "factors": ["otp"],
            "claims": {"https://example.com/affiliation": "contractor"}},
           {"20-contractors": ("contractor domain contractors.example.com",)}),
    Benign("an_unverified_email_requires_a_second_factor", {"20-contractors": CONTRACTOR_EMAIL},
           rule_payload(user={"email": "carol@example.com", "email_verified": False}), {"mfa_required": True},
           {"20-contractors": ("unverified email",)}),
    Benign("a_verified_employee_email_needs_nothing", {"20-contractors": CONTRACTOR_EMAIL}, rule_payload()),
    Benign("a_browser_user_agent_is_logged_by_family", {"25-scripted-clients": SCRIPTED_CLIENTS},
           rule_payload(request={"user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                                               "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
                                 "device_id": "dev-1", "hostname": "login.example.com"}),
           logs={"25-scripted-clients": ("browser: Chrome",)}),
    Benign("a_curl_user_agent_is_denied_with_its_version", {"25-scripted-clients": SCRIPTED_CLIENTS},
           rule_payload(request={"user_agent": "curl/8.5.0", "device_id": None, "hostname": "login.example.com"}),
           {"denied": True, "deny_reason": "scripted client curl 8.5.0 is not allowed"}),
    # Date arithmetic on context.now.
    Benign("a_login_a_week_after_the_last_one_needs_nothing", {"30-stale-login": STALE_LOGIN}, rule_payload()),
    Benign("a_login_87_days_after_the_last_one_requires_a_second_factor", {"30-stale-login": STALE_LOGIN},
           rule_payload(user={"last_login": "2026-09-01T08:00:00Z"}), OTP_FIRST,
           {"30-stale-login": ("last login 87 days ago (2026-09-01)",)}),
    Benign("a_user_without_a_previous_login_requires_a_second_factor", {"30-stale-login": STALE_LOGIN},
           rule_payload(user={"last_login": None}), {"mfa_required": True},
           {"30-stale-login": ("no previous login",)}),
    Benign("friday_morning_is_business_hours", {"35-business-hours": BUSINESS_HOURS}, rule_payload()),
    Benign("saturday_requires_a_second_factor", {"35-business-hours": BUSINESS_HOURS},
           rule_payload(now="2026-11-28T10:00:00+00:00"), {"mfa_required": True, "allow_remember_browser": True},
           {"35-business-hours": ("outside business hours: Saturday 10:00 UTC",)}),
    Benign("friday_evening_requires_a_second_factor", {"35-business-hours": BUSINESS_HOURS},
           rule_payload(now="2026-11-27T19:30:00+00:00"), {"mfa_required": True, "allow_remember_browser": True},
           {"35-business-hours": ("outside business hours: Friday 19:30 UTC",)}),
    Benign("business_hours_are_judged_in_utc_whatever_offset_the_clock_gave",
           {"35-business-hours": BUSINESS_HOURS}, rule_payload(now="2026-11-27T18:30:00+01:00")),
    # Risk signals.
    Benign("a_known_device_in_a_known_country_needs_nothing", {"40-risk": RISK_SIGNALS}, rule_payload()),
    Benign("a_new_device_in_a_new_country_requires_a_second_factor", {"40-risk": RISK_SIGNALS},
           rule_payload(risk={"first_login": False, "new_device": True, "new_country": True}),
           {"mfa_required": True}, {"40-risk": ("risk signals: new_device, new_country",)}),
    Benign("a_first_login_requires_a_second_factor_and_is_marked_in_the_token", {"40-risk": RISK_SIGNALS},
           rule_payload(risk={"first_login": True, "new_device": True, "new_country": False},
                        stats={"logins_count": 0}),
           {"mfa_required": True, "claims": {"https://example.com/first_login": True}},
           {"40-risk": ("risk signals: first_login, new_device",)}),
    # Step-up for sensitive actions.
    Benign("a_plain_login_needs_no_step_up", {"45-step-up": STEP_UP}, rule_payload()),
    Benign("a_transaction_after_a_fresh_authenticator_code_needs_no_step_up", {"45-step-up": STEP_UP},
           rule_payload(action="transaction", authentication=methods(("pwd", "2026-11-27T09:50:00+00:00"),
                                                                     ("otp", "2026-11-27T09:57:00+00:00"))),
           logs={"45-step-up": ("step-up satisfied by otp 180s ago",)}),
    Benign("a_transaction_after_a_stale_authenticator_code_steps_up", {"45-step-up": STEP_UP},
           rule_payload(action="transaction", authentication=methods(("otp", "2026-11-27T09:40:00+00:00"),
                                                                     ("sms", "2026-11-27T09:59:00+00:00"))),
           {"mfa_required": True, "provider": "otp", "provider_set_by": "45-step-up", "factors": ["otp"],
            "return_to": "https://login.example.com/transaction/confirm"},
           {"45-step-up": ("step-up required for transaction",)}),
    Benign("a_profile_change_with_only_a_password_steps_up", {"45-step-up": STEP_UP},
           rule_payload(action="change_profile"),
           {"mfa_required": True, "provider": "otp", "provider_set_by": "45-step-up", "factors": ["otp"],
            "return_to": "https://login.example.com/change_profile/confirm"},
           {"45-step-up": ("step-up required for change_profile",)}),
    # Roles and groups over nested app_metadata.
    Benign("a_staff_member_needs_nothing", {"50-privileged": PRIVILEGED_USERS}, rule_payload()),
    Benign("an_admin_in_the_sre_group_requires_the_authenticator_app", {"50-privileged": PRIVILEGED_USERS},
           rule_payload(user={"app_metadata": {"roles": ["staff", "admin"]}, "groups": ["staff", "sre"]}),
           OTP_FIRST, {"50-privileged": ("privileged: admin, sre",)}),
    Benign("an_organisation_that_enforces_mfa_requires_it", {"50-privileged": PRIVILEGED_USERS},
           rule_payload(user={"app_metadata": {"roles": ["staff"], "organisation": {
               "id": "acme", "security": {"enforce_mfa": True, "allowed_factors": ["otp"]}}}}),
           {"mfa_required": True}, {"50-privileged": ("organisation acme enforces MFA",)}),
    Benign("an_organisation_given_as_a_bare_string_is_ignored", {"50-privileged": PRIVILEGED_USERS},
           rule_payload(user={"app_metadata": {"roles": ["staff"], "organisation": "acme"}})),
    # Claims.
    Benign("roles_plan_and_locale_are_added_to_the_token", {"55-role-claims": ROLE_CLAIMS}, rule_payload(),
           {"claims": {"https://example.com/roles": ["staff"],
                       "https://example.com/plan": {"name": "pro", "seats": 5},
                       "https://example.com/locale": "en"}},
           {"55-role-claims": ("claims: https://example.com/locale, https://example.com/plan, "
                               "https://example.com/roles",)}),
    Benign("a_single_role_string_and_groups_merge_into_one_sorted_claim", {"55-role-claims": ROLE_CLAIMS},
           rule_payload(user={"app_metadata": {"roles": "Admin"}, "groups": ["Ops", "staff"], "user_metadata": {}}),
           {"claims": {"https://example.com/roles": ["admin", "ops", "staff"],
                       "https://example.com/plan": {"name": "free", "seats": 1}}},
           {"55-role-claims": ("claims: https://example.com/plan, https://example.com/roles",)}),
    Benign("a_later_rule_sees_claims_an_earlier_rule_added",
           {"20-contractors": CONTRACTOR_EMAIL, "55-role-claims": ROLE_CLAIMS},
           rule_payload(user={"email": "dan@partner.example.net", "user_metadata": {}}),
           {"mfa_required": True, "provider": "otp", "provider_set_by": "20-contractors", "factors": ["otp"],
            "claims": {"https://example.com/affiliation": "contractor", "https://example.com/roles": ["staff"],
                       "https://example.com/plan": {"name": "pro", "seats": 5}}},
           {"20-contractors": ("contractor domain partner.example.net",),
            "55-role-claims": ("claims: https://example.com/affiliation, https://example.com/plan, "
                               "https://example.com/roles",)}),
    # Great-circle distance from home.
    Benign("springfield_is_close_enough_to_a_chicago_home", {"60-far-from-home": FAR_FROM_HOME},
           rule_payload(user={"app_metadata": {"home": {"lat": 41.88, "lon": -87.63}}}),
           logs={"60-far-from-home": ("284.5 km from home",)}),
    Benign("paris_is_far_from_a_chicago_home", {"60-far-from-home": FAR_FROM_HOME},
           rule_payload(user={"app_metadata": {"home": {"lat": 41.88, "lon": -87.63}}},
                        connection=connection("203.0.113.9", "FR", PARIS)),
           {"mfa_required": True}, {"60-far-from-home": ("6,650 km from home (Paris)",)}),
    Benign("an_unknown_location_with_a_known_home_requires_a_second_factor", {"60-far-from-home": FAR_FROM_HOME},
           rule_payload(user={"app_metadata": {"home": {"lat": 41.88, "lon": -87.63}}},
                        connection=connection("203.0.113.9", None)),
           {"mfa_required": True}, {"60-far-from-home": ("location unknown",)}),
    # Auth0-style seed: addFactor with a dict and returnTo.
    Benign("a_user_who_prefers_sms_gets_it_first", {"65-preferred-factor": PREFERRED_FACTOR},
           rule_payload(user={"user_metadata": {"preferred_factor": "sms"}}),
           {"mfa_required": True, "allow_remember_browser": True, "factors": ["sms", "otp"],
            "return_to": "https://app.example.com/dashboard"},
           {"65-preferred-factor": ("factors offered: ('sms', 'otp') return to https://app.example.com/dashboard",)}),
    Benign("other_users_get_the_authenticator_app", {"65-preferred-factor": PREFERRED_FACTOR}, rule_payload(),
           {"mfa_required": True, "allow_remember_browser": True, "factors": ["otp"],
            "return_to": "https://app.example.com/dashboard"},
           {"65-preferred-factor": ("factors offered: ('otp',) return to https://app.example.com/dashboard",)}),
    Benign("a_user_with_no_factors_is_left_alone", {"65-preferred-factor": PREFERRED_FACTOR},
           rule_payload(user={"factors": []})),
    # try/except ValueError with a fallback.
    Benign("a_three_day_window_requires_a_second_factor_after_a_week", {"70-reauth-window": REAUTH_WINDOW},
           rule_payload(user={"app_metadata": {"mfa_window_days": "3"}}), {"mfa_required": True},
           {"70-reauth-window": ("re-authentication window of 3 days elapsed",)}),
    Benign("an_invalid_window_falls_back_to_fourteen_days", {"70-reauth-window": REAUTH_WINDOW},
           rule_payload(user={"app_metadata": {"mfa_window_days": "soon"}}),
           logs={"70-reauth-window": ("invalid mfa_window_days 'soon' - using 14 days",)}),
    Benign("a_missing_window_value_falls_back_too", {"70-reauth-window": REAUTH_WINDOW},
           rule_payload(user={"app_metadata": {"mfa_window_days": None}, "last_login": None}),
           {"mfa_required": True},
           {"70-reauth-window": ("invalid mfa_window_days None - using 14 days",
                                 "re-authentication window of 14 days elapsed")}),
    # sorted with key=lambda over enrolled factors, after an earlier rule required MFA.
    Benign("enrolled_factors_are_offered_strongest_first",
           {"40-risk": RISK_SIGNALS, "75-factor-order": FACTOR_ORDER},
           rule_payload(user={"factors": ["recovery", "sms", "webauthn", "totp"]},
                        risk={"first_login": False, "new_device": True, "new_country": False}),
           {"mfa_required": True, "factors": ["otp", "sms", "recovery"]},
           {"40-risk": ("risk signals: new_device",),
            "75-factor-order": ("not offered: webauthn", "order: 1.totp > 2.sms > 3.recovery")}),
    Benign("no_factors_are_offered_when_nothing_required_them",
           {"40-risk": RISK_SIGNALS, "75-factor-order": FACTOR_ORDER}, rule_payload()),
    # Denial ends the pipeline.
    Benign("a_suspended_account_is_denied_and_later_rules_do_not_run",
           {"05-refused": REFUSED_ACCOUNTS, "55-role-claims": ROLE_CLAIMS},
           rule_payload(user={"app_metadata": {"status": "suspended", "suspended_until": "2026-12-01"}}),
           {"denied": True, "deny_reason": "account suspended until 2026-12-01"}, ran=("05-refused",)),
    Benign("an_embargoed_country_is_denied", {"05-refused": REFUSED_ACCOUNTS, "55-role-claims": ROLE_CLAIMS},
           rule_payload(connection=connection("203.0.113.9", "KP")),
           {"denied": True, "deny_reason": "sign-in from KP is not permitted"}, ran=("05-refused",)),
    Benign("an_active_account_goes_on_to_later_rules",
           {"05-refused": REFUSED_ACCOUNTS, "55-role-claims": ROLE_CLAIMS}, rule_payload(user={"user_metadata": {}}),
           {"claims": {"https://example.com/roles": ["staff"],
                       "https://example.com/plan": {"name": "pro", "seats": 5}}},
           {"55-role-claims": ("claims: https://example.com/plan, https://example.com/roles",)}),
    # print and context.log in the trace; neutral reprs.
    Benign("print_and_log_lines_reach_the_trace_in_order", {"85-audit": AUDIT_LINE}, rule_payload(),
           logs={"85-audit": ("login alice from 203.0.113.7 (Springfield, US)",
                              "client 'Example App' action login",
                              "logins=  12 ratio=100% verified= True",
                              "<user> <context> <multifactor> <claims>")}),
    Benign("the_audit_line_copes_with_an_unknown_location", {"85-audit": AUDIT_LINE},
           rule_payload(user={"logins_count": 0, "email_verified": False}, connection=connection(None, None),
                        stats={"logins_count": 0}),
           logs={"85-audit": ("login alice from None (unknown location)",
                              "client 'Example App' action login",
                              "logins=   0 ratio=0% verified=False",
                              "<user> <context> <multifactor> <claims>")}),
    # Imports and the formatting forms rule authors know from elsewhere.
    Benign("imports_percent_and_str_format_in_the_office", {"95-everyday-forms": EVERYDAY_FORMS},
           rule_payload(connection=connection("198.51.100.7", "US")),
           logs={"95-everyday-forms": ("alice   |a****@example.com (office)", "  7.1 days idle, 1,200 logins",
                                       "floor 7 of 7.08")}),
    Benign("imports_percent_str_format_and_re_sub_elsewhere", {"95-everyday-forms": EVERYDAY_FORMS},
           rule_payload(connection=connection("203.0.113.9", "FR", PARIS)), {"mfa_required": True},
           {"95-everyday-forms": ("alice   |a****@example.com (elsewhere)", "  7.1 days idle, 1,200 logins",
                                  "floor 7 of 7.08", "FR:alice")}),
    # Rule-owned dicts and lists built and mutated.
    Benign("session_methods_are_counted_into_a_claim", {"90-session-methods": SESSION_METHODS},
           rule_payload(authentication=methods(("pwd", "2026-11-27T09:50:00+00:00"),
                                               ("otp", "2026-11-27T09:51:00+00:00"),
                                               ("otp", "2026-11-27T09:58:30+00:00"))),
           {"claims": {"https://example.com/session_methods": [{"method": "password", "count": 1},
                                                               {"method": "authenticator", "count": 2}]}},
           {"90-session-methods": ("newest method: otp 2026-11-27T09:58:30+00:00",)}),
    Benign("a_session_without_methods_adds_no_claim", {"90-session-methods": SESSION_METHODS},
           rule_payload(authentication={"methods": []})),
]


def test_the_corpus_names_each_situation_once_and_covers_at_least_fifteen_rules() -> None:
    assert len({case.name for case in CORPUS}) == len(CORPUS)
    assert len({source for case in CORPUS for source in case.rules.values()}) >= 15


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.name)
def test_benign_rule_gives_exactly_the_expected_outcome(rule_runner: SyncRunner, case: Benign) -> None:
    report = rule_runner.run(case.rules, case.payload)

    ran = case.ran if case.ran is not None else tuple(case.rules)
    assert [(t.name, t.outcome, t.error, t.logs) for t in report.trace] == [
        (name, "ok", None, case.logs.get(name, ())) for name in ran
    ]
    result = dict(report.result or {})
    # The rules that require the factor (issue 10's required_by), in pipeline order.
    required_by = result.pop("required_by_rules", [])
    assert result == {**ALLOWED, **case.expected}
    assert bool(required_by) == result["mfa_required"]
    assert required_by == [name for name in ran if name in required_by]
    assert report.logs_dropped == 0
