"""`mfa-engine demo reset`: removes what the README quickstart creates, so that it runs again from the top.

The quickstart creates the user alice (with her factors, recovery codes and login history, which
the directory deletes with her) and the files below in `var/`. Only that is removed: a user
named alice whose email is not the quickstart's is somebody's real account and is refused whole,
and so is a production config. Challenges, counters and decision records of the in-process
store live in the running server and expire on their own; in a shared store (Redis) alice's
lockout streak is cleared with her.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.config import Settings
from engine.errors import NotFound
from engine.user_admin import UserAdmin

# username -> the email the README gives it
DEMO_USERS = {"alice": "alice@example.com"}
# Written by the quickstart's steps, relative to the directory it runs in (the config's).
QUICKSTART_FILES = ("var/enroll.json", "var/alice-qr.svg", "var/first.json", "var/phone.json", "var/login.json",
                    "var/done.json")


@dataclass(slots=True)
class DemoReset:
    """What a reset removed, or why it refused (then it removed nothing)."""

    removed_users: list[str] = field(default_factory=list)
    removed_files: list[Path] = field(default_factory=list)
    refusal: str | None = None


async def reset(users: UserAdmin, settings: Settings) -> DemoReset:
    if settings.environment == "production":
        return DemoReset(refusal="environment is production: demo reset only runs on a development config")
    found = []
    for username, email in DEMO_USERS.items():
        try:
            user = await users.find_user(username)
        except NotFound:
            continue
        if user.username != username or user.email != email:
            return DemoReset(refusal=f"the user {user.username} ({user.user_id}) is not the quickstart's "
                                     f"(its email is not {email}): nothing removed")
        found.append(user)
    result = DemoReset()
    for user in found:
        # The store first, as a reset does: with Redis down nothing is half removed.
        await users.store.clear_failures(user.user_id)
        await users.delete_user(user.user_id)
        result.removed_users.append(f"{user.username} ({user.user_id})")
    for name in QUICKSTART_FILES:
        path = settings.path(name)
        if path.is_file():
            path.unlink()
            result.removed_files.append(path)
    return result
