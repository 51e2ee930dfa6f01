"""Refuse logins of users an administrator has blocked (app_metadata.blocked)."""


def rule(user, context):
    if user.app_metadata.get("blocked") is True:
        context.deny("this account is blocked; contact your administrator")
