"""Ask for a fresh authenticator code before a transaction, unless one was given in the last 5 minutes."""

FRESH_FOR = datetime.timedelta(minutes=5)


def recent_otp(context):
    cutoff = context.now - FRESH_FOR
    return any(m.name == "otp" and m.timestamp >= cutoff for m in context.authentication.methods)


def rule(user, context):
    if context.action == "transaction" and not recent_otp(context):
        context.multifactor.enable(provider="otp")
        context.multifactor.add_factor("otp")
