"""The benchmark's rule set: ten small rules of the kind a tenant writes, plus probe rules.

Each source runs unchanged as plain Python (with the real `re`, `ipaddress` and `datetime`
modules as globals) and in the sandbox (with the ledger's facades of the same names).
"""

from __future__ import annotations

PIPELINE: dict[str, str] = {
    "10-blocked-countries": '''
"""Refuse logins from countries the company cannot serve."""
BLOCKED = {"KP", "IR", "SY", "CU"}


def rule(user, context):
    if context.connection.ip_country in BLOCKED:
        context.deny("country_blocked")
''',
    "20-office-network": '''
"""Logins from outside the office network need a one-time password."""
OFFICE = ipaddress.ip_network("198.51.100.0/24")


def rule(user, context):
    if ipaddress.ip_address(context.connection.ip) not in OFFICE:
        context.multifactor.add_factor("otp")
''',
    "30-corporate-email": '''
"""Tag verified corporate accounts."""
CORPORATE = re.compile(r"@example\\.(com|org)$", re.IGNORECASE)


def rule(user, context):
    if user.email_verified and CORPORATE.search(user.email or ""):
        context.claims["https://example.com/corporate"] = True
''',
    "40-dormant-account": '''
"""An account unused for 30 days proves itself again."""
def rule(user, context):
    last = user.last_login
    if last is None or context.now - last > datetime.timedelta(days=30):
        context.multifactor.enable()
''',
    "50-risk-signals": '''
"""Any risk signal from the signals stage requires a second factor."""
def rule(user, context):
    risk = context.risk
    if risk.new_device or risk.new_country or risk.first_login:
        context.multifactor.enable()
    if context.stats.logins_count < 3:
        context.multifactor.enable()
''',
    "60-privileged-roles": '''
"""Privileged roles always use a second factor, and never remember the browser."""
PRIVILEGED = frozenset({"admin", "billing", "security"})


def rule(user, context):
    roles = user.app_metadata.get("roles", ())
    if any(role in PRIVILEGED for role in roles):
        context.multifactor.enable(allow_remember_browser=False)
''',
    "70-role-claims": '''
"""Put the user's roles and plan into the token."""
def rule(user, context):
    context.claims["https://example.com/roles"] = list(user.app_metadata.get("roles", ()))
    context.claims["https://example.com/plan"] = user.app_metadata.get("plan", "free")
''',
    "80-factor-preference": '''
"""Offer the factors the user has enrolled, strongest first."""
def rule(user, context):
    if "otp" in user.factors:
        context.multifactor.add_factor("otp")
    if "sms" in user.factors and user.phone_number_masked:
        context.multifactor.add_factor({"name": "sms"})
''',
    "90-recent-methods": '''
"""A password check older than ten minutes does not count."""
def rule(user, context):
    now = context.now
    fresh = [m.name for m in context.authentication.methods
             if m.timestamp is not None and now - m.timestamp < datetime.timedelta(minutes=10)]
    if "pwd" not in fresh:
        context.multifactor.enable()
''',
    "99-audit": '''
"""One audit line per login."""
def rule(user, context):
    context.log("login", user.user_id, context.connection.ip_country, context.client.client_id,
                "factors=" + ",".join(context.multifactor.factors))
''',
}

# Twenty attribute reads and nothing else: what one guard call costs against a plain read.
ATTRIBUTE_READS = '''
def rule(user, context):
    c = context.connection
    r = context.risk
    return (user.user_id, user.email, user.email_verified, user.name, user.logins_count,
            user.app_metadata, user.factors, user.groups, user.created_at, user.last_login,
            c.ip, c.ip_country, c.geo, context.now, context.action,
            r.new_device, r.new_country, r.first_login)
'''
