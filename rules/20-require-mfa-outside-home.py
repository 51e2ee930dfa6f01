"""Require a second factor outside the US and Canada, authenticator app first."""

HOME = {"US", "CA"}


def rule(user, context):
    country = context.connection.ip_country
    if country is None or country not in HOME:
        context.log("login from", country or "an unknown country", "needs a second factor")
        context.multifactor.enable(allow_remember_browser=False)
        context.multifactor.add_factor("otp")
        context.multifactor.add_factor("sms")
