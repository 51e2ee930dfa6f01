"""SqliteDirectory: the UserDirectory on one SQLite connection, with versioned migrations.

The SQL stays portable so a PostgreSQL implementation can reuse it: TEXT and INTEGER columns
only, booleans as 0/1, times as ISO 8601 UTC text (which sorts as time), JSON as TEXT,
upserts as INSERT ... ON CONFLICT.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine import metadata
from engine.crypto import Keyring
from engine.formats import USERNAME
from engine.stores import remembered_browsers
from engine.stores.login_events import LoginEvent, LoginSummary, read_summary, record_event
from engine.stores.sql_schema import MIGRATIONS
from engine.stores.sqlite_writer import SqliteWriter
from engine.stores.directory import (
    DirectoryError,
    FactorProof,
    FactorRecord,
    NewUser,
    RememberedBrowser,
    UserExists,
    UserRecord,
    username_key,
)

log = logging.getLogger("engine.stores.sqlite")

T = TypeVar("T")

FACTOR_TYPES = frozenset({"otp", "sms"})
FACTOR_STATUSES = frozenset({"pending", "active"})


_USER_COLUMNS = ("user_id, username_display, email, email_verified, name, phone_number, app_metadata, "
                 "user_metadata, created_at, last_login, logins_count, preferred_factor, mfa_epoch")
_FACTOR_COLUMNS = ("factor_id, user_id, type, status, phone_number, created_at, confirmed_at, last_used_at, "
                   "last_totp_step")


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)


# The only keys update_user accepts (UserDirectory.update_user), each with its column encoding.
_UPDATABLE: dict[str, Callable[[Any], object]] = {
    "email": lambda v: v,
    "email_verified": lambda v: int(bool(v)),
    "name": lambda v: v,
    "phone_number": lambda v: v,
    "app_metadata": _json,
    "user_metadata": _json,
    "password_hash": lambda v: v,
}


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("times must be aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(16)


def _user(row: sqlite3.Row) -> UserRecord:
    return UserRecord(
        user_id=row["user_id"], username=row["username_display"], email=row["email"],
        email_verified=bool(row["email_verified"]), name=row["name"], phone_number=row["phone_number"],
        app_metadata=json.loads(row["app_metadata"]), user_metadata=json.loads(row["user_metadata"]),
        created_at=datetime.fromisoformat(row["created_at"]), last_login=_parse_time(row["last_login"]),
        logins_count=row["logins_count"], preferred_factor=row["preferred_factor"], mfa_epoch=row["mfa_epoch"],
    )


def _factor(row: sqlite3.Row) -> FactorRecord:
    return FactorRecord(
        factor_id=row["factor_id"], user_id=row["user_id"], type=row["type"], status=row["status"],
        phone_number=row["phone_number"], created_at=datetime.fromisoformat(row["created_at"]),
        confirmed_at=_parse_time(row["confirmed_at"]), last_used_at=_parse_time(row["last_used_at"]),
        last_totp_step=row["last_totp_step"],
    )


class _AlreadySpent(Exception):
    """Raised inside an operation to roll its writes back: a proof in it was spent before."""


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration, split where SQLite itself says a statement is complete
    (a ';' inside a string literal does not split)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""


class SqliteDirectory:
    """The UserDirectory on SQLite.

    Writes run on a SqliteWriter thread (engine/stores/sqlite_writer.py), which commits
    concurrent ones in one transaction and one fsync (synchronous = FULL), each write atomic
    on its own (a SAVEPOINT), and answers a caller only once its write is on disk. Reads run on
    the caller's thread, on a second connection behind a lock: SQLite answers these indexed
    queries in well under a millisecond, less than a hop to a thread would cost, and in WAL
    mode they never wait for the writer. A read sees every write its caller awaited before it.
    An in-memory database has one connection: its reads take the writer's batch lock instead.
    `close()` runs the queued writes and releases the file.
    """

    # Parameters: used_at, user_id, code_hash. Row count 1: the code was unused and now is used.
    # One statement checks and marks, so two logins racing with the same code cannot both
    # succeed, even from two processes.
    CONSUME_RECOVERY_CODE = ("UPDATE recovery_codes SET used_at = ?"
                             " WHERE user_id = ? AND code_hash = ? AND used_at IS NULL")
    # Parameters: step, factor_id, user_id, step. Row count 1: the step is above the factor's
    # last accepted one and is now the last. One statement checks and writes, so of two logins
    # racing with one code (two instances, or a store that forgot its steps) exactly one wins.
    ACCEPT_TOTP_STEP = ("UPDATE factors SET last_totp_step = ? WHERE factor_id = ? AND user_id = ?"
                        " AND (last_totp_step IS NULL OR last_totp_step < ?)")

    def __init__(self, path: str, keyring: Keyring, *, on_writer_start: Callable[[], None] | None = None) -> None:
        """Opens (creating if needed) and migrates the database at `path`, or ":memory:".
        Raises DirectoryError if a newer engine has migrated the file."""
        self._keyring = keyring
        self._read_lock = threading.Lock()
        in_memory = path in ("", ":memory:")
        self._db = _connect(path)
        try:
            if not in_memory:
                # WAL: readers do not block the writer, nor the writer the readers.
                self._db.execute("PRAGMA journal_mode = WAL")
            # Explicit, whatever SQLite was built with: a commit is on disk when it returns.
            self._db.execute("PRAGMA synchronous = FULL")
            self._migrate()
            self._reader = self._db if in_memory else _connect(path, query_only=True)
        except BaseException:
            self._db.close()
            raise
        self._writer = SqliteWriter(self._db, self._read_lock if in_memory else None, on_writer_start)

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                         "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, script, seed in MIGRATIONS:
            # IMMEDIATE takes the write lock before reading the version, so two processes
            # opening a new file together cannot both apply a migration.
            with self._transaction():
                if self._db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    continue
                for statement in _statements(script):
                    self._db.execute(statement)
                if seed is not None:
                    seed(self._db)
                # Bookkeeping for operators, not engine logic: the wall clock is the right time here.
                self._db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                                 (version, _time(datetime.now(UTC))))
        # A newer engine migrated this file: this one would misread columns it does not know.
        (newest,) = self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        if newest > MIGRATIONS[-1][0]:
            raise DirectoryError(f"the database schema is version {newest}; this engine knows up to "
                                 f"{MIGRATIONS[-1][0]}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Migrations only (before the writer starts); the writer runs every later write."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        with self._read_lock:
            return function(self._reader)

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not self._db:
            with self._read_lock:
                self._reader.close()

    # Users

    async def create_user(self, user: NewUser, now: datetime) -> UserRecord:
        """Raises UserExists if the username (compared case-insensitively) is taken; ValueError
        unless it matches engine.formats.USERNAME whole, whoever calls (admin API, CLI, a script):
        no "carol" plus a line break or an invisible character next to "carol"."""
        if USERNAME.fullmatch(user.username) is None:
            raise ValueError("a username is 1 to 128 ASCII letters, digits and . _ @ + -, "
                             "starting with a letter or digit")
        user_id = _new_id("usr_")

        def insert(db: sqlite3.Connection) -> UserRecord:
            try:
                db.execute(
                    "INSERT INTO users (user_id, username, username_display, password_hash, email, email_verified,"
                    " name, phone_number, app_metadata, user_metadata, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, username_key(user.username), user.username, user.password_hash, user.email,
                     int(user.email_verified), user.name, user.phone_number, _json(user.app_metadata),
                     _json(user.user_metadata), _time(now)))
            except sqlite3.IntegrityError as exc:
                raise UserExists("the username is taken") from exc
            record = _get_user(db, user_id)
            assert record is not None  # inserted above, in the same transaction
            return record

        return await self._writer.run(insert)

    async def get_user(self, user_id: str) -> UserRecord | None:
        return self._read(lambda db: _get_user(db, user_id))

    async def find_login(self, username: str) -> tuple[UserRecord, str] | None:
        row = self._read(lambda db: db.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users"
                                               " WHERE username = ?", (username_key(username),)).fetchone())
        return None if row is None else (_user(row), row["password_hash"])

    async def list_users(self, limit: int, offset: int) -> list[UserRecord]:
        """Oldest first; raises ValueError for a negative limit or offset."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        rows = self._read(lambda db: db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, user_id"
                                                " LIMIT ? OFFSET ?", (limit, offset)).fetchall())
        return [_user(row) for row in rows]

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> UserRecord | None:
        """Raises ValueError naming any key outside the documented ones (nothing is changed)."""
        unknown = sorted(set(changes) - set(_UPDATABLE))
        if unknown:
            raise ValueError(f"cannot update: {', '.join(unknown)}")
        # Column names come from _UPDATABLE's keys, never from the caller's strings.
        columns = [key for key in _UPDATABLE if key in changes]
        values = (*(_UPDATABLE[c](changes[c]) for c in columns), user_id)

        def update(db: sqlite3.Connection) -> UserRecord | None:
            if columns:
                db.execute(f"UPDATE users SET {', '.join(f'{c} = ?' for c in columns)} WHERE user_id = ?", values)
            if "password_hash" in changes:
                remembered_browsers.forget_all(db, user_id)
            return _get_user(db, user_id)

        return await self._writer.run(update)

    async def delete_user(self, user_id: str) -> bool:
        """Also deletes the user's factors, recovery codes and login history (ON DELETE CASCADE)."""
        return await self._writer.run(
            lambda db: db.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount == 1)

    # Login history

    async def record_login(self, user_id: str, now: datetime, device_id: str | None, country: str | None,
                           factor_id: str | None = None, proof: FactorProof | None = None,
                           metadata_updates: Mapping[str, Mapping[str, Any]] | None = None, *,
                           client_id: str | None = None, geo: Mapping[str, Any] | None = None) -> bool:
        """Without a proof, does nothing for an unknown (e.g. just deleted) user; a proof of a
        deleted user's factor is refused. One transaction, so one sync to disk per completed
        login, the factor's use and proof and the login event (what the triggers learn) included."""
        at = _time(now)
        geo = geo or {}
        event = LoginEvent(user_id, now, device_id, country, geo.get("latitude"), geo.get("longitude"),
                           geo.get("accuracy_radius"), client_id)

        def record(db: sqlite3.Connection) -> None:
            _spend_or_roll_back(db, user_id, factor_id, proof, at)
            if _record_login(db, user_id, at, event, factor_id) and metadata_updates:
                _save_metadata(db, user_id, metadata_updates)

        return await self._spend(record)

    async def _spend(self, operation: Callable[[sqlite3.Connection], None]) -> bool:
        """False, with nothing of `operation` written, when it found a proof spent already."""
        try:
            await self._writer.run(operation)
        except _AlreadySpent:
            return False
        return True

    async def login_summary(self, user_id: str, since: datetime) -> LoginSummary:
        return self._read(lambda db: read_summary(db, user_id, since))

    # Factors

    async def add_factor(self, user_id: str, factor_type: str, now: datetime, *, status: str = "pending",
                         phone_number: str | None = None, secret: str | None = None) -> FactorRecord:
        """Raises ValueError for an unknown type or status, or an otp factor without a secret;
        sqlite3.IntegrityError for an unknown user."""
        if factor_type not in FACTOR_TYPES or status not in FACTOR_STATUSES:
            raise ValueError(f"factor type must be one of {sorted(FACTOR_TYPES)}, "
                             f"status one of {sorted(FACTOR_STATUSES)}")
        if factor_type == "otp" and not secret:
            raise ValueError("an otp factor needs its secret")
        factor_id = _new_id("fac_")
        # The context binds the ciphertext to this row: copied onto another factor, it fails to decrypt.
        sealed = None if secret is None else self._keyring.encrypt(secret, context=f"totp:{factor_id}")
        at = _time(now)

        def insert(db: sqlite3.Connection) -> FactorRecord:
            db.execute("INSERT INTO factors (factor_id, user_id, type, status, phone_number, secret_encrypted,"
                       " created_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (factor_id, user_id, factor_type, status, phone_number, sealed, at,
                        at if status == "active" else None))
            record = _get_factor(db, factor_id)
            assert record is not None  # inserted above, in the same transaction
            return record

        return await self._writer.run(insert)

    async def get_factor(self, factor_id: str) -> FactorRecord | None:
        return self._read(lambda db: _get_factor(db, factor_id))

    async def factor_secret(self, factor_id: str) -> str | None:
        """None for an unknown factor or one without a secret. Raises engine.crypto.DecryptionError
        if the stored ciphertext is not authentic (tampered, moved, or another key): fail closed."""
        row = self._read(lambda db: db.execute("SELECT secret_encrypted FROM factors WHERE factor_id = ?",
                                               (factor_id,)).fetchone())
        if row is None or row[0] is None:
            return None
        return self._keyring.decrypt(row[0], context=f"totp:{factor_id}")

    async def factor_for_code(self, factor_id: str) -> tuple[FactorRecord, str | None] | None:
        row = self._read(lambda db: db.execute(f"SELECT {_FACTOR_COLUMNS}, secret_encrypted FROM factors"
                                               " WHERE factor_id = ?", (factor_id,)).fetchone())
        if row is None:
            return None
        factor = _factor(row)
        sealed = row["secret_encrypted"] if factor.type == "otp" and factor.status == "active" else None
        return factor, None if sealed is None else self._keyring.decrypt(sealed, context=f"totp:{factor_id}")

    async def list_factors(self, user_id: str, *, include_pending: bool = False) -> list[FactorRecord]:
        """Oldest first."""
        only_active = "" if include_pending else " AND status = 'active'"
        rows = self._read(lambda db: db.execute(f"SELECT {_FACTOR_COLUMNS} FROM factors WHERE user_id = ?"
                                                f"{only_active} ORDER BY created_at, factor_id",
                                                (user_id,)).fetchall())
        return [_factor(row) for row in rows]

    async def activate_factor(self, factor_id: str, now: datetime) -> None:
        """A pending factor becomes active; an active one keeps its first confirmed_at."""
        at = _time(now)
        await self._writer.run(lambda db: db.execute("UPDATE factors SET status = 'active', confirmed_at = ?"
                                                     " WHERE factor_id = ? AND status = 'pending'", (at, factor_id)))

    async def delete_factor(self, user_id: str, factor_id: str) -> bool:
        """False unless the factor exists and belongs to `user_id`."""
        def delete(db: sqlite3.Connection) -> bool:
            deleted = db.execute("DELETE FROM factors WHERE factor_id = ? AND user_id = ?",
                                 (factor_id, user_id)).rowcount == 1
            if deleted:
                remembered_browsers.forget_all(db, user_id)
            return deleted

        return await self._writer.run(delete)

    async def mark_factor_used(self, factor_id: str, now: datetime) -> None:
        at = _time(now)
        await self._writer.run(lambda db: _mark_factor_used(db, factor_id, at))

    # Recovery codes

    async def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str], now: datetime) -> None:
        """The old codes stop working in the same transaction that stores the new ones.
        Raises ValueError for repeated hashes; sqlite3.IntegrityError for an unknown user."""
        if len(set(code_hashes)) != len(code_hashes):
            raise ValueError("recovery code hashes must be distinct")
        rows = [(user_id, code_hash, _time(now)) for code_hash in code_hashes]

        def replace(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
            db.executemany("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)", rows)

        await self._writer.run(replace)

    async def recovery_code_usable(self, user_id: str, code_hash: str) -> bool:
        return self._read(lambda db: db.execute("SELECT 1 FROM recovery_codes WHERE user_id = ? AND code_hash = ?"
                                                " AND used_at IS NULL", (user_id, code_hash)).fetchone() is not None)

    # Proofs of passed factors

    async def spend_proof(self, user_id: str, factor_id: str | None, proof: FactorProof, now: datetime) -> bool:
        at = _time(now)
        return await self._spend(lambda db: _spend_or_roll_back(db, user_id, factor_id, proof, at))

    async def recovery_codes_left(self, user_id: str) -> int:
        row = self._read(lambda db: db.execute("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?"
                                               " AND used_at IS NULL", (user_id,)).fetchone())
        return int(row[0])

    async def reset_mfa(self, user_id: str) -> None:
        """Also forgets the preferred factor: there is none left to prefer."""
        def reset(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM factors WHERE user_id = ?", (user_id,))
            db.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
            db.execute("UPDATE users SET preferred_factor = NULL, mfa_epoch = mfa_epoch + 1 WHERE user_id = ?",
                       (user_id,))
            remembered_browsers.forget_all(db, user_id)

        await self._writer.run(reset)

    # Remembered browsers (engine/stores/remembered_browsers.py)

    async def remember_browser(self, browser: RememberedBrowser, max_per_user: int) -> bool:
        return await self._writer.run(lambda db: remembered_browsers.insert(db, browser, max_per_user))

    async def use_remembered_browser(self, browser_id: str, user_id: str, device_id: str, now: datetime) -> bool:
        return await self._writer.run(lambda db: remembered_browsers.use(db, browser_id, user_id, device_id, now))

    async def list_remembered_browsers(self, user_id: str, now: datetime) -> list[RememberedBrowser]:
        return self._read(lambda db: remembered_browsers.list_for(db, user_id, now))

    async def forget_remembered_browser(self, user_id: str, browser_id: str) -> bool:
        return await self._writer.run(lambda db: remembered_browsers.forget(db, user_id, browser_id))

    async def forget_remembered_browsers(self, user_id: str) -> int:
        return await self._writer.run(lambda db: remembered_browsers.forget_all(db, user_id))


# The SQL of the writes, run by the writer thread inside its transaction (each call in its own
# SAVEPOINT), and the reads they share with the caller's thread.


def _connect(path: str, *, query_only: bool = False) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; the writer (and migrations) say where they are.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        # Several processes may share the file: wait for a writer instead of failing.
        db.execute("PRAGMA busy_timeout = 5000")
        if query_only:  # the readers' connection: every write goes through the writer
            db.execute("PRAGMA query_only = ON")
    except BaseException:
        db.close()
        raise
    return db


def _get_user(db: sqlite3.Connection, user_id: str) -> UserRecord | None:
    row = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,)).fetchone()
    return None if row is None else _user(row)


def _get_factor(db: sqlite3.Connection, factor_id: str) -> FactorRecord | None:
    row = db.execute(f"SELECT {_FACTOR_COLUMNS} FROM factors WHERE factor_id = ?", (factor_id,)).fetchone()
    return None if row is None else _factor(row)


def _record_login(db: sqlite3.Connection, user_id: str, at: str, event: LoginEvent, factor_id: str | None) -> bool:
    """False for an unknown user (nothing written)."""
    updated = db.execute("UPDATE users SET logins_count = logins_count + 1, last_login = ? WHERE user_id = ?",
                         (at, user_id))
    if updated.rowcount == 0:
        return False
    if factor_id is not None:
        _mark_factor_used(db, factor_id, at)
    # Devices, countries, clients and the last login's place: only a complete login gets here.
    record_event(db, event)
    return True


def _save_metadata(db: sqlite3.Connection, user_id: str, updates: Mapping[str, Mapping[str, Any]]) -> None:
    """A completed login's metadata changes, merged key by key into what is stored now (not
    what the rules read at the password step: an administrator's change to another key in
    between stays). The rule checked the bound against the older value; a kind the merge
    would now take past it is skipped, since the login has completed and stands."""
    row = db.execute("SELECT app_metadata, user_metadata FROM users WHERE user_id = ?", (user_id,)).fetchone()
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
        db.execute(f"UPDATE users SET {kind} = ? WHERE user_id = ?", (_json(merged), user_id))


def _mark_factor_used(db: sqlite3.Connection, factor_id: str, at: str) -> None:
    row = db.execute("SELECT user_id, type FROM factors WHERE factor_id = ?", (factor_id,)).fetchone()
    if row is None:
        return
    db.execute("UPDATE factors SET last_used_at = ? WHERE factor_id = ?", (at, factor_id))
    db.execute("UPDATE users SET preferred_factor = ? WHERE user_id = ?", (row["type"], row["user_id"]))


def _spend_or_roll_back(db: sqlite3.Connection, user_id: str, factor_id: str | None, proof: FactorProof | None,
                        at: str) -> None:
    """Spends every part of the proof, or raises _AlreadySpent so the operation rolls back:
    a login whose TOTP step was accepted but whose recovery code was not must write nothing."""
    if proof is None:
        return
    if proof.totp_step is not None and (factor_id is None or db.execute(
            SqliteDirectory.ACCEPT_TOTP_STEP, (proof.totp_step, factor_id, user_id, proof.totp_step)).rowcount != 1):
        raise _AlreadySpent
    if proof.recovery_code_hash is not None and db.execute(
            SqliteDirectory.CONSUME_RECOVERY_CODE, (at, user_id, proof.recovery_code_hash)).rowcount != 1:
        raise _AlreadySpent
