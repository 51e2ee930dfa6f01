"""Require a second factor on a first login, or from a device or country the user has not used before."""


def rule(user, context):
    risk = context.risk
    signals = {"first login": risk.first_login, "new device": risk.new_device, "new country": risk.new_country}
    raised = [name for name, value in signals.items() if value]
    if raised:
        context.log("risk signals:", ", ".join(raised))
        context.multifactor.enable()
