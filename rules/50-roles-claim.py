"""Put the user's roles from app_metadata into the token as a namespaced claim."""

NAMESPACE = "https://mfa-engine.example/"


def rule(user, context):
    roles = user.app_metadata.get("roles") or ()
    context.claims[NAMESPACE + "roles"] = sorted(str(role) for role in roles)
