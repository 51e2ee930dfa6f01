"""`mfa-engine users add|list|reset-mfa` and `demo reset`: the admin API's user use cases (engine/user_admin.py)
from a terminal.

`reset-mfa` clears the lockout streak as `POST /admin/users/{id}/reset-mfa` does when
`store.redis_url` is set; with the in-process store the streak lives in the running server's
memory, which a separate CLI process cannot reach (it is forgotten when that server restarts).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from engine.app import build_directory, build_keyring, build_passwords, build_store
from engine.audit_trail import AuditTrail
from engine import demo, formats
from engine.clock import SystemClock
from engine.config import Settings
from engine.errors import Conflict, EngineError, NotFound
from engine.user_admin import UserAdmin


@asynccontextmanager
async def _user_admin(settings: Settings) -> AsyncIterator[UserAdmin]:
    directory = build_directory(settings, build_keyring(settings))
    store = build_store(settings)
    try:
        clock = SystemClock()
        yield UserAdmin(directory, store, build_passwords(settings), clock, settings.sms,
                        AuditTrail(directory, clock, settings.audit))  # the operator is the admin: audited too
    finally:
        await store.close()
        await directory.close()


async def run_users_command(settings: Settings, args: argparse.Namespace) -> int:
    async with _user_admin(settings) as users:
        try:
            return await _users_command(users, settings, args)
        except EngineError as exc:  # the store or directory cannot answer (a Redis that is down: 503)
            print(f"{exc.code}: {exc}", file=sys.stderr)
            return 1


async def run_demo_reset(settings: Settings) -> int:
    """`mfa-engine demo reset` (engine/demo.py): says what it removed; exit 1 when it refuses."""
    async with _user_admin(settings) as users:
        try:
            result = await demo.reset(users, settings)
        except EngineError as exc:
            print(f"{exc.code}: {exc}", file=sys.stderr)
            return 1
    if result.refusal:
        print(f"demo reset refused: {result.refusal}", file=sys.stderr)
        return 1
    for user in result.removed_users:
        print(f"removed the demo user {user}, with its factors, recovery codes and login history")
    for path in result.removed_files:
        print(f"removed {path}")
    if not result.removed_users and not result.removed_files:
        print("no demo data to remove")
    return 0


async def _users_command(users: UserAdmin, settings: Settings, args: argparse.Namespace) -> int:
    if args.users_command == "add":
        return await _add(users, args)
    if args.users_command == "list":
        if args.limit < 1:
            print("--limit must be 1 or more", file=sys.stderr)
            return 2
        for user in await users.list_users(args.limit, 0):
            print(f"{user.user_id}  {user.username}  {user.email or '-'}  logins={user.logins_count}")
        return 0
    return await _reset(users, args.user, shared_store=bool(settings.store.redis_url))


# The admin API's rules (engine/http/schema.py), so a terminal cannot create what HTTP refuses.
_CHECKS: dict[str, tuple[Callable[[str], bool], int, str]] = {
    "username": (lambda value: formats.USERNAME.fullmatch(value) is not None, 128,
                 "must be ASCII letters, digits and . _ @ + -, starting with a letter or digit"),
    "email": (formats.is_identifier, 320, "must be printable, without line breaks, control or invisible characters"),
    "phone": (lambda value: formats.PHONE_E164.fullmatch(value) is not None, 16,
              "must be an E.164 number like +14155550123"),
    "name": (formats.is_free_text, 256, "must not contain line breaks, control characters or bidi overrides"),
    "password": (formats.is_secret_text, 1024, "must not contain line breaks or control characters"),
}


def _refusal(values: dict[str, str | None]) -> str | None:
    """The first field that breaks its rule, as "field: why" (never the value: it may be a secret)."""
    for field, value in values.items():
        allowed, max_length, why = _CHECKS[field]
        if value is not None and not (0 < len(value) <= max_length and allowed(value)):
            return f"{field}: {why} (1 to {max_length} characters)"
    return None


async def _add(users: UserAdmin, args: argparse.Namespace) -> int:
    password = _read_password()
    if not password:
        print("a password is required", file=sys.stderr)
        return 2
    refusal = _refusal({"username": args.username, "email": args.email, "phone": args.phone, "name": args.name,
                        "password": password})
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    try:
        user = await users.create_user(
            {"username": args.username, "email": args.email, "phone_number": args.phone, "name": args.name},
            password)
    except Conflict:
        print(f"the username {args.username!r} is taken", file=sys.stderr)
        return 1
    print(f"created {user.user_id} ({user.username})")
    return 0


async def _reset(users: UserAdmin, who: str, shared_store: bool) -> int:
    try:
        user = await users.reset_mfa((await users.find_user(who)).user_id)
    except NotFound:
        print(f"no user {who!r}", file=sys.stderr)
        return 1
    print(f"removed every factor and recovery code of {user.username} ({user.user_id})")
    if shared_store:
        print("cleared the lockout streak in the shared store (store.redis_url)")
    else:
        print("no shared store (store.redis_url is empty): a lockout streak lives in the running server's "
              "memory; reset through POST /admin/users/{id}/reset-mfa or restart the server to clear it")
    return 0


def _read_password() -> str:
    # A terminal gets a prompt without echo; a pipe (scripts, tests) is read, never argv,
    # which other users of the machine can see in the process list.
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")
