"""The directory's SQL and logic, shared by SqliteDirectory and PostgresDirectory: the named statements,
decoding rows into records, and every write as an operation (engine/stores/sql_ops.py) that either
backend runs in one transaction.

Every write that reads before it writes, or changes several rows of one user, begins with
sql_ops.lock_user.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine import metadata
from engine.crypto import Keyring
from engine.formats import USERNAME
from engine.stores import remembered_browsers
from engine.stores.directory import (
    FactorProof,
    FactorRecord,
    NewUser,
    TooManyFactors,
    UnknownUser,
    UserExists,
    UserRecord,
    username_key,
)
from engine.stores import audit_events
from engine.stores.audit_events import AuditEvent
from engine.stores.login_events import LoginEvent, record_event
from engine.stores.sql_ops import Operation, Row, Statement, json_text, lock_user, parse_time, statement

log = logging.getLogger("engine.stores.directory")

FACTOR_TYPES = frozenset({"otp", "sms"})
FACTOR_STATUSES = frozenset({"pending", "active"})

USER_COLUMNS = ("user_id, username_display, email, email_verified, name, phone_number, app_metadata, "
                "user_metadata, created_at, last_login, logins_count, preferred_factor, mfa_epoch")
FACTOR_COLUMNS = ("factor_id, user_id, type, status, phone_number, created_at, confirmed_at, last_used_at, "
                  "last_totp_step")

# Parameters: user_id, username (username_key), username_display, password_hash, email, email_verified, name,
# phone_number, app_metadata, user_metadata, created_at. Row count 0: the username is taken.
INSERT_USER = ("INSERT INTO users (user_id, username, username_display, password_hash, email, email_verified,"
               " name, phone_number, app_metadata, user_metadata, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING")
SELECT_USER = f"SELECT {USER_COLUMNS} FROM users WHERE user_id = ?"
SELECT_LOGIN = f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?"
LIST_USERS = f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, user_id LIMIT ? OFFSET ?"
DELETE_USER = "DELETE FROM users WHERE user_id = ?"
SELECT_FACTOR = f"SELECT {FACTOR_COLUMNS} FROM factors WHERE factor_id = ?"
SELECT_FACTOR_FOR_CODE = f"SELECT {FACTOR_COLUMNS}, secret_encrypted FROM factors WHERE factor_id = ?"
SELECT_FACTOR_SECRET = "SELECT secret_encrypted FROM factors WHERE factor_id = ?"
LIST_FACTORS = f"SELECT {FACTOR_COLUMNS} FROM factors WHERE user_id = ? ORDER BY created_at, factor_id"
COUNT_ACTIVE_FACTORS = "SELECT COUNT(*) AS active FROM factors WHERE user_id = ? AND status = 'active'"
LIST_ACTIVE_FACTORS = (f"SELECT {FACTOR_COLUMNS} FROM factors WHERE user_id = ? AND status = 'active'"
                       " ORDER BY created_at, factor_id")
INSERT_FACTOR = ("INSERT INTO factors (factor_id, user_id, type, status, phone_number, secret_encrypted,"
                 " created_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
ACTIVATE_FACTOR = "UPDATE factors SET status = 'active', confirmed_at = ? WHERE factor_id = ? AND status = 'pending'"
RECOVERY_CODE_USABLE = "SELECT 1 FROM recovery_codes WHERE user_id = ? AND code_hash = ? AND used_at IS NULL"
RECOVERY_CODES_LEFT = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL"
# Parameters: used_at, user_id, code_hash. Row count 1: the code was unused and now is used.
# One statement checks and marks, so two logins racing with the same code cannot both succeed,
# even from two processes (PostgreSQL: the second waits on the first's row lock, then finds
# used_at set and changes nothing).
CONSUME_RECOVERY_CODE = ("UPDATE recovery_codes SET used_at = ?"
                         " WHERE user_id = ? AND code_hash = ? AND used_at IS NULL")
# Parameters: step, factor_id, user_id, step. Row count 1: the step is above the factor's
# last accepted one and is now the last. One statement checks and writes, so of two logins
# racing with one code (two instances, or a store that forgot its steps) exactly one wins.
ACCEPT_TOTP_STEP = ("UPDATE factors SET last_totp_step = ? WHERE factor_id = ? AND user_id = ?"
                    " AND (last_totp_step IS NULL OR last_totp_step < ?)")


def _bool_flag(value: Any) -> int:
    return int(bool(value))


def _as_is(value: Any) -> Any:
    return value


# The only keys update_user accepts (UserDirectory.update_user), each with its column encoding.
UPDATABLE: dict[str, Callable[[Any], object]] = {
    "email": _as_is, "email_verified": _bool_flag, "name": _as_is, "phone_number": _as_is,
    "app_metadata": json_text, "user_metadata": json_text, "password_hash": _as_is,
}


def user_record(row: Row) -> UserRecord:
    return UserRecord(
        user_id=row["user_id"], username=row["username_display"], email=row["email"],
        email_verified=bool(row["email_verified"]), name=row["name"], phone_number=row["phone_number"],
        app_metadata=json.loads(row["app_metadata"]), user_metadata=json.loads(row["user_metadata"]),
        created_at=datetime.fromisoformat(row["created_at"]), last_login=parse_time(row["last_login"]),
        logins_count=row["logins_count"], preferred_factor=row["preferred_factor"], mfa_epoch=row["mfa_epoch"],
    )


def factor_record(row: Row) -> FactorRecord:
    return FactorRecord(
        factor_id=row["factor_id"], user_id=row["user_id"], type=row["type"], status=row["status"],
        phone_number=row["phone_number"], created_at=datetime.fromisoformat(row["created_at"]),
        confirmed_at=parse_time(row["confirmed_at"]), last_used_at=parse_time(row["last_used_at"]),
        last_totp_step=row["last_totp_step"],
    )


def user_or_none(row: Row | None) -> UserRecord | None:
    return None if row is None else user_record(row)


def factor_or_none(row: Row | None) -> FactorRecord | None:
    return None if row is None else factor_record(row)


# TOTP secrets at rest: AES-GCM under the keyring, the factor id bound as associated data, so a
# ciphertext copied onto another factor's row fails to decrypt.

def seal_secret(keyring: Keyring, factor_id: str, secret: str) -> str:
    return keyring.encrypt(secret, context=_secret_context(factor_id))


def open_secret(keyring: Keyring, factor_id: str, sealed: str | None) -> str | None:
    """Raises engine.crypto.DecryptionError for a ciphertext that is not authentic here: fail closed."""
    return None if sealed is None else keyring.decrypt(sealed, context=_secret_context(factor_id))


def reseal_secret(keyring: Keyring, factor_id: str, sealed: str) -> str | None:
    """`sealed` sealed again under secrets.key when one of secrets.previous_keys sealed it; None
    when secrets.key did. Raises engine.crypto.DecryptionError when no key opens it."""
    return keyring.reseal(sealed, context=_secret_context(factor_id))


def _secret_context(factor_id: str) -> str:
    return f"totp:{factor_id}"


# Parameters: the last factor_id of the previous page, the page size.
PAGE_SEALED_SECRETS = ("SELECT factor_id, secret_encrypted FROM factors"
                       " WHERE secret_encrypted IS NOT NULL AND factor_id > ? ORDER BY factor_id LIMIT ?")


def replace_secret(factor_id: str, sealed: str, resealed: str) -> Operation[bool]:
    """Compare and set: False, with nothing written, when the row changed since it was read (the
    factor deleted, or enrolled again with a new secret)."""
    replaced = yield statement("UPDATE factors SET secret_encrypted = ? WHERE factor_id = ? AND secret_encrypted = ?",
                               resealed, factor_id, sealed)
    return replaced.rowcount == 1


def factor_for_code(keyring: Keyring, factor_id: str, row: Row | None) -> tuple[FactorRecord, str | None] | None:
    """What UserDirectory.factor_for_code answers for a row of SELECT_FACTOR_FOR_CODE."""
    if row is None:
        return None
    factor = factor_record(row)
    if factor.type != "otp" or factor.status != "active":
        return factor, None  # no code is checked against a pending factor's secret
    return factor, open_secret(keyring, factor_id, row["secret_encrypted"])


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(16)


def check_username(username: str) -> None:
    if USERNAME.fullmatch(username) is None:
        raise ValueError("a username is 1 to 128 ASCII letters, digits and . _ @ + -, "
                         "starting with a letter or digit")


def check_updatable(changes: Mapping[str, Any]) -> None:
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise ValueError(f"cannot update: {', '.join(unknown)}")


def new_factor(keyring: Keyring, factor_type: str, status: str, secret: str | None) -> tuple[str, str | None]:
    """A new factor's id and sealed secret; ValueError for an unknown type or status, or an otp
    factor without a secret."""
    if factor_type not in FACTOR_TYPES or status not in FACTOR_STATUSES:
        raise ValueError(f"factor type must be one of {sorted(FACTOR_TYPES)}, "
                         f"status one of {sorted(FACTOR_STATUSES)}")
    if factor_type == "otp" and not secret:
        raise ValueError("an otp factor needs its secret")
    factor_id = new_id("fac_")
    return factor_id, None if secret is None else seal_secret(keyring, factor_id, secret)


class AlreadySpent(Exception):
    """Raised inside an operation to roll its writes back: a proof in it was spent before."""


# Operations

def create_user(user_id: str, user: NewUser, at: str) -> Operation[UserRecord]:
    inserted = yield statement(INSERT_USER, user_id, username_key(user.username), user.username, user.password_hash,
                               user.email, int(user.email_verified), user.name, user.phone_number,
                               json_text(user.app_metadata), json_text(user.user_metadata), at)
    if inserted.rowcount != 1:
        raise UserExists("the username is taken")
    return user_record(_required((yield statement(SELECT_USER, user_id)).first()))


def update_user(user_id: str, changes: Mapping[str, Any]) -> Operation[UserRecord | None]:
    """`changes` passed check_updatable."""
    # Column names come from UPDATABLE's keys, never from the caller's strings.
    columns = [key for key in UPDATABLE if key in changes]
    if columns:
        yield statement(f"UPDATE users SET {', '.join(f'{c} = ?' for c in columns)} WHERE user_id = ?",
                        *(UPDATABLE[c](changes[c]) for c in columns), user_id)
    if "password_hash" in changes:
        yield from remembered_browsers.forget_all(user_id)
    return user_or_none((yield statement(SELECT_USER, user_id)).first())


def delete_user(user_id: str) -> Operation[bool]:
    """Also deletes the user's factors, codes, history and browsers (ON DELETE CASCADE)."""
    return (yield statement(DELETE_USER, user_id)).rowcount == 1


def record_login(event: LoginEvent, at: str, factor_id: str | None, proof: FactorProof | None,
                 metadata_updates: Mapping[str, Mapping[str, Any]] | None,
                 audit: Sequence[AuditEvent] = ()) -> Operation[None]:
    """Raises AlreadySpent (roll back) when the proof was spent; for an unknown user, only the
    audit events (a token is issued all the same)."""
    user_id = event.user_id
    exists = yield from lock_user(user_id)
    yield from spend_or_roll_back(user_id, factor_id, proof, at)
    # The login's own events commit with it, or roll back with it when the proof was spent.
    yield from audit_events.insert(audit)
    if not exists:
        return
    yield statement("UPDATE users SET logins_count = logins_count + 1, last_login = ? WHERE user_id = ?", at, user_id)
    if factor_id is not None:
        yield from _mark_factor_used(factor_id, at)
    # Devices, countries, clients and the last login's place: only a complete login gets here.
    yield from record_event(event)
    if metadata_updates:
        yield from _save_metadata(user_id, metadata_updates)


def spend_proof(user_id: str, factor_id: str | None, proof: FactorProof, at: str) -> Operation[None]:
    yield from lock_user(user_id)
    yield from spend_or_roll_back(user_id, factor_id, proof, at)


def spend_or_roll_back(user_id: str, factor_id: str | None, proof: FactorProof | None, at: str) -> Operation[None]:
    """Spends every part of the proof, or raises AlreadySpent so the operation rolls back:
    a login whose TOTP step was accepted but whose recovery code was not must write nothing."""
    if proof is None:
        return
    if proof.totp_step is not None and (factor_id is None or (yield statement(
            ACCEPT_TOTP_STEP, proof.totp_step, factor_id, user_id, proof.totp_step)).rowcount != 1):
        raise AlreadySpent
    if proof.recovery_code_hash is not None and (yield statement(
            CONSUME_RECOVERY_CODE, at, user_id, proof.recovery_code_hash)).rowcount != 1:
        raise AlreadySpent


def _save_metadata(user_id: str, updates: Mapping[str, Mapping[str, Any]]) -> Operation[None]:
    """A completed login's metadata changes, merged key by key into what is stored now (not
    what the rules read at the password step: an administrator's change to another key in
    between stays). The rule checked the bound against the older value; a kind the merge
    would now take past it is skipped, since the login has completed and stands."""
    row = _required((yield statement("SELECT app_metadata, user_metadata FROM users WHERE user_id = ?", user_id))
                    .first())
    for kind in metadata.KINDS:
        changes = updates.get(kind)
        if not changes:
            continue
        merged = metadata.merge(json.loads(row[kind]), changes)
        size = metadata.size(merged)
        if size > metadata.MAX_BYTES:
            # Metadata is user data: the key names and values stay out of the log.
            log.warning("metadata_not_saved reason=too_large user_id=%s kind=%s bytes=%d limit=%d", user_id,
                        kind, size, metadata.MAX_BYTES)
            continue
        # The column is one of metadata.KINDS, never text from the caller.
        yield statement(f"UPDATE users SET {kind} = ? WHERE user_id = ?", json_text(merged), user_id)


def add_factor(factor_id: str, user_id: str, factor_type: str, status: str, phone_number: str | None,
               sealed: str | None, at: str, max_active: int | None = None) -> Operation[FactorRecord]:
    """Raises UnknownUser; TooManyFactors when the user has `max_active` active factors, counted
    under the user's lock (as enroll_factor does), so concurrent adds pass the limit one at a time."""
    if not (yield from lock_user(user_id)):
        raise UnknownUser("no such user")
    yield from _keep_room(user_id, max_active)
    return (yield from _insert_factor(factor_id, user_id, factor_type, status, phone_number, sealed, at))


def enroll_factor(factor_id: str, user_id: str, factor_type: str, phone_number: str | None, sealed: str | None,
                  at: str, max_active: int) -> Operation[FactorRecord | None]:
    """UserDirectory.enroll_factor: the limit is counted and kept under the user's lock."""
    if not (yield from lock_user(user_id)):
        raise UnknownUser("no such user")
    factors = [factor_record(row) for row in (yield statement(LIST_FACTORS, user_id)).rows]
    if sum(factor.status == "active" for factor in factors) >= max_active:
        return None
    pending = [factor.factor_id for factor in factors if factor.status == "pending"]
    for unfinished in pending:
        # Still pending: on PostgreSQL (READ COMMITTED) a confirm may have activated it since the
        # list was read (activate_factor takes the user's lock too, but a row read earlier is stale).
        yield statement("DELETE FROM factors WHERE factor_id = ? AND status = 'pending'", unfinished)
    if pending:  # as delete_factor does: a factor removed forgets the remembered browsers
        yield from remembered_browsers.forget_all(user_id)
    return (yield from _insert_factor(factor_id, user_id, factor_type, "pending", phone_number, sealed, at))


def _insert_factor(factor_id: str, user_id: str, factor_type: str, status: str, phone_number: str | None,
                   sealed: str | None, at: str) -> Operation[FactorRecord]:
    yield statement(INSERT_FACTOR, factor_id, user_id, factor_type, status, phone_number, sealed, at,
                    at if status == "active" else None)
    return factor_record(_required((yield statement(SELECT_FACTOR, factor_id)).first()))


def _keep_room(user_id: str, max_active: int | None) -> Operation[None]:
    """TooManyFactors when the user has `max_active` active factors; the caller holds the user's lock."""
    if max_active is None:
        return
    if _required((yield statement(COUNT_ACTIVE_FACTORS, user_id)).first())["active"] >= max_active:
        raise TooManyFactors(f"at most {max_active} active factors")


def activate_factor(factor_id: str, at: str, max_active: int | None = None) -> Operation[bool]:
    """Whether a pending factor became active: False when it is gone (an enrollment started since
    dropped it) or active already. Under the owner's lock, as enroll_factor's check and delete;
    TooManyFactors when the owner reached `max_active` meanwhile (an admin added factors while the
    enrollment waited for its code)."""
    owner = (yield statement("SELECT user_id FROM factors WHERE factor_id = ?", factor_id)).first()
    if owner is None or not (yield from lock_user(owner["user_id"])):
        return False
    yield from _keep_room(owner["user_id"], max_active)
    return (yield statement(ACTIVATE_FACTOR, at, factor_id)).rowcount == 1


def delete_factor(user_id: str, factor_id: str) -> Operation[bool]:
    yield from lock_user(user_id)
    deleted = (yield statement("DELETE FROM factors WHERE factor_id = ? AND user_id = ?", factor_id, user_id))
    if deleted.rowcount != 1:
        return False
    yield from remembered_browsers.forget_all(user_id)
    return True


def mark_factor_used(factor_id: str, at: str) -> Operation[None]:
    owner = (yield statement("SELECT user_id FROM factors WHERE factor_id = ?", factor_id)).first()
    if owner is None:
        return
    yield from lock_user(owner["user_id"])
    yield from _mark_factor_used(factor_id, at)


def _mark_factor_used(factor_id: str, at: str) -> Operation[None]:
    """last_used_at, and the owner's preferred_factor; the caller holds the owner's lock."""
    row = (yield statement("SELECT user_id, type FROM factors WHERE factor_id = ?", factor_id)).first()
    if row is None:
        return
    yield statement("UPDATE factors SET last_used_at = ? WHERE factor_id = ?", at, factor_id)
    yield statement("UPDATE users SET preferred_factor = ? WHERE user_id = ?", row["type"], row["user_id"])


def replace_recovery_codes(user_id: str, code_hashes: Sequence[str], at: str) -> Operation[None]:
    """Raises UnknownUser. The old codes stop working in the transaction that stores the new ones."""
    if not (yield from lock_user(user_id)):
        raise UnknownUser("no such user")
    yield statement("DELETE FROM recovery_codes WHERE user_id = ?", user_id)
    yield Statement("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)",
                    rows=[(user_id, code_hash, at) for code_hash in code_hashes])


def reset_mfa(user_id: str) -> Operation[None]:
    """Also forgets the preferred factor: there is none left to prefer. Raises UnknownUser (a reset
    of a user deleted meanwhile reset nothing: its caller must not report that it did)."""
    if not (yield from lock_user(user_id)):
        raise UnknownUser("no such user")
    yield statement("DELETE FROM factors WHERE user_id = ?", user_id)
    yield statement("DELETE FROM recovery_codes WHERE user_id = ?", user_id)
    yield statement("UPDATE users SET preferred_factor = NULL, mfa_epoch = mfa_epoch + 1 WHERE user_id = ?", user_id)
    yield from remembered_browsers.forget_all(user_id)


def _required(row: Row | None) -> Row:
    """A row the transaction has just written or locked."""
    assert row is not None
    return row
