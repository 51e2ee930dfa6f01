"""`mfa-engine users add|list|reset-mfa`: the directory from a terminal, without the HTTP API."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from engine.app import build_directory, build_keyring, build_passwords
from engine import formats
from engine.clock import SystemClock
from engine.config import Settings
from engine.stores.directory import NewUser, UserDirectory, UserExists, UserRecord


async def run_users_command(settings: Settings, args: argparse.Namespace) -> int:
    directory = build_directory(settings, build_keyring(settings))
    try:
        if args.users_command == "add":
            return await _add(settings, directory, args)
        if args.users_command == "list":
            if args.limit < 1:
                print("--limit must be 1 or more", file=sys.stderr)
                return 2
            for user in await directory.list_users(args.limit, 0):
                print(f"{user.user_id}  {user.username}  {user.email or '-'}  logins={user.logins_count}")
            return 0
        return await _reset(directory, args.user)
    finally:
        await directory.close()


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


async def _add(settings: Settings, directory: UserDirectory, args: argparse.Namespace) -> int:
    password = _read_password()
    if not password:
        print("a password is required", file=sys.stderr)
        return 2
    refusal = _refusal({"username": args.username, "email": args.email, "phone": args.phone, "name": args.name,
                        "password": password})
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    password_hash = await build_passwords(settings).hash(password)
    try:
        user = await directory.create_user(
            NewUser(args.username, password_hash, email=args.email, phone_number=args.phone, name=args.name),
            SystemClock().now())
    except UserExists:
        print(f"the username {args.username!r} is taken", file=sys.stderr)
        return 1
    print(f"created {user.user_id} ({user.username})")
    return 0


async def _reset(directory: UserDirectory, who: str) -> int:
    user = await _find(directory, who)
    if user is None:
        print(f"no user {who!r}", file=sys.stderr)
        return 1
    await directory.reset_mfa(user.user_id)
    print(f"removed every factor and recovery code of {user.username} ({user.user_id})")
    return 0


async def _find(directory: UserDirectory, who: str) -> UserRecord | None:
    found = await directory.find_login(who)
    return found[0] if found else await directory.get_user(who)


def _read_password() -> str:
    # A terminal gets a prompt without echo; a pipe (scripts, tests) is read, never argv,
    # which other users of the machine can see in the process list.
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")
