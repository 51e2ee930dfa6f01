"""SqlDirectory: the UserDirectory written once, over four primitives each SQL backend provides.

A backend (SqliteDirectory, PostgresDirectory) says how to read one row (`_one`), read rows
(`_all`), run a read of several statements (`_read`) and run a write operation in one transaction
(`_write`); the statements and operations are in engine/stores/directory_sql.py. Everything a
user, factor or code is, and every check before a write, is therefore the same on both.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from engine.crypto import DecryptionError, Keyring
from engine.stores import audit_events, clients
from engine.stores import directory_sql as sql
from engine.stores import remembered_browsers
from engine.stores.audit_events import AuditEvent, AuditPage, AuditQuery
from engine.stores.directory import (
    ClientRecord, FactorProof, FactorRecord, NewUser, RememberedBrowser, Resealed, UserRecord, username_key,
)
from engine.stores.login_events import LoginEvent, LoginSummary, read_summary
from engine.stores.sql_ops import Operation, Row, time_text

T = TypeVar("T")
log = logging.getLogger("engine.stores.directory")


class SqlDirectory(ABC):
    backend: str

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    @abstractmethod
    async def _one(self, query: str, *parameters: object) -> Row | None:
        """The first row of a single-statement read, or None."""

    @abstractmethod
    async def _all(self, query: str, *parameters: object) -> Sequence[Row]: ...

    @abstractmethod
    async def _read(self, operation: Operation[T]) -> T:
        """A read of several statements, outside a transaction: each sees what was committed when it ran."""

    @abstractmethod
    async def _write(self, operation: Operation[T]) -> T:
        """`operation` in one transaction, committed (durably) before this returns; what it
        raised, with its writes rolled back."""

    @abstractmethod
    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        row = await self._one("SELECT MAX(version) FROM schema_migrations")
        return 0 if row is None or row[0] is None else int(row[0])

    async def _spend(self, operation: Operation[None]) -> bool:
        """False, with nothing of `operation` written, when it found a proof spent already."""
        try:
            await self._write(operation)
        except sql.AlreadySpent:
            return False
        return True

    # Users

    async def create_user(self, user: NewUser, now: datetime) -> UserRecord:
        """Raises UserExists if the username (compared case-insensitively) is taken; ValueError
        unless it matches engine.formats.USERNAME whole, whoever calls (admin API, CLI, a script):
        no "carol" plus a line break or an invisible character next to "carol"."""
        sql.check_username(user.username)
        return await self._write(sql.create_user(sql.new_id("usr_"), user, time_text(now)))

    async def get_user(self, user_id: str) -> UserRecord | None:
        return sql.user_or_none(await self._one(sql.SELECT_USER, user_id))

    async def find_login(self, username: str) -> tuple[UserRecord, str] | None:
        row = await self._one(sql.SELECT_LOGIN, username_key(username))
        return None if row is None else (sql.user_record(row), row["password_hash"])

    async def list_users(self, limit: int, offset: int) -> list[UserRecord]:
        """Oldest first; raises ValueError for a negative limit or offset."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        return [sql.user_record(row) for row in await self._all(sql.LIST_USERS, limit, offset)]

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> UserRecord | None:
        """Raises ValueError naming any key outside the documented ones (nothing is changed)."""
        sql.check_updatable(changes)
        return await self._write(sql.update_user(user_id, changes))

    async def delete_user(self, user_id: str) -> bool:
        """Also deletes the user's factors, codes, history and browsers (ON DELETE CASCADE)."""
        return await self._write(sql.delete_user(user_id))

    # Login history

    async def record_login(self, user_id: str, now: datetime, device_id: str | None, country: str | None,
                           factor_id: str | None = None, proof: FactorProof | None = None,
                           metadata_updates: Mapping[str, Mapping[str, Any]] | None = None, *,
                           client_id: str | None = None, geo: Mapping[str, Any] | None = None,
                           audit: Sequence[AuditEvent] = ()) -> bool:
        """Without a proof, writes only `audit` for an unknown (e.g. just deleted) user; a proof of a
        deleted user's factor is refused. One transaction: the factor's use, the proof, the
        login event (what the triggers learn) and the audit events are written together or not at all."""
        geo = geo or {}
        event = LoginEvent(user_id, now, device_id, country, geo.get("latitude"), geo.get("longitude"),
                           geo.get("accuracy_radius"), client_id)
        return await self._spend(sql.record_login(event, time_text(now), factor_id, proof, metadata_updates, audit))

    async def login_summary(self, user_id: str, since: datetime) -> LoginSummary:
        return await self._read(read_summary(user_id, since))

    # Factors

    async def add_factor(self, user_id: str, factor_type: str, now: datetime, *, status: str = "pending",
                         phone_number: str | None = None, secret: str | None = None,
                         max_active: int | None = None) -> FactorRecord:
        """Raises ValueError for an unknown type or status, or an otp factor without a secret;
        UnknownUser; TooManyFactors past `max_active`."""
        factor_id, sealed = sql.new_factor(self._keyring, factor_type, status, secret)
        return await self._write(sql.add_factor(factor_id, user_id, factor_type, status, phone_number, sealed,
                                                time_text(now), max_active))

    async def enroll_factor(self, user_id: str, factor_type: str, now: datetime, *, max_active: int,
                            phone_number: str | None = None, secret: str | None = None) -> FactorRecord | None:
        factor_id, sealed = sql.new_factor(self._keyring, factor_type, "pending", secret)
        return await self._write(sql.enroll_factor(factor_id, user_id, factor_type, phone_number, sealed,
                                                   time_text(now), max_active))

    async def get_factor(self, factor_id: str) -> FactorRecord | None:
        return sql.factor_or_none(await self._one(sql.SELECT_FACTOR, factor_id))

    async def factor_secret(self, factor_id: str) -> str | None:
        """None for an unknown factor or one without a secret. Raises engine.crypto.DecryptionError
        if the stored ciphertext is not authentic (tampered, moved, or another key): fail closed."""
        row = await self._one(sql.SELECT_FACTOR_SECRET, factor_id)
        return None if row is None else sql.open_secret(self._keyring, factor_id, row[0])

    async def factor_for_code(self, factor_id: str) -> tuple[FactorRecord, str | None] | None:
        return sql.factor_for_code(self._keyring, factor_id, await self._one(sql.SELECT_FACTOR_FOR_CODE, factor_id))

    async def reseal_secrets(self, page_size: int = 500) -> Resealed:
        """Every TOTP secret one of secrets.previous_keys sealed, sealed again under secrets.key,
        a page of factors at a time, each row in a transaction of its own (key rotation)."""
        resealed = unreadable = 0
        last = ""
        while rows := await self._all(sql.PAGE_SEALED_SECRETS, last, page_size):
            for row in rows:
                factor_id, sealed = row["factor_id"], row["secret_encrypted"]
                try:
                    fresh = sql.reseal_secret(self._keyring, factor_id, sealed)
                except DecryptionError:
                    unreadable += 1
                    log.error("factor_secret_unreadable factor_id=%s reason=not sealed under secrets.key or "
                              "secrets.previous_keys", factor_id)
                    continue
                if fresh is not None and await self._write(sql.replace_secret(factor_id, sealed, fresh)):
                    resealed += 1
            last = rows[-1]["factor_id"]
        return Resealed(resealed, unreadable)

    async def list_factors(self, user_id: str, *, include_pending: bool = False) -> list[FactorRecord]:
        """Oldest first."""
        query = sql.LIST_FACTORS if include_pending else sql.LIST_ACTIVE_FACTORS
        return [sql.factor_record(row) for row in await self._all(query, user_id)]

    async def activate_factor(self, factor_id: str, now: datetime, *, max_active: int | None = None) -> bool:
        """A pending factor becomes active; an active one keeps its first confirmed_at."""
        return await self._write(sql.activate_factor(factor_id, time_text(now), max_active))

    async def delete_factor(self, user_id: str, factor_id: str) -> bool:
        """False unless the factor exists and belongs to `user_id`."""
        return await self._write(sql.delete_factor(user_id, factor_id))

    async def mark_factor_used(self, factor_id: str, now: datetime) -> None:
        await self._write(sql.mark_factor_used(factor_id, time_text(now)))

    # Recovery codes and proofs of passed factors

    async def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str], now: datetime) -> None:
        """Raises ValueError for repeated hashes; UnknownUser."""
        if len(set(code_hashes)) != len(code_hashes):
            raise ValueError("recovery code hashes must be distinct")
        await self._write(sql.replace_recovery_codes(user_id, code_hashes, time_text(now)))

    async def recovery_code_usable(self, user_id: str, code_hash: str) -> bool:
        return await self._one(sql.RECOVERY_CODE_USABLE, user_id, code_hash) is not None

    async def recovery_codes_left(self, user_id: str) -> int:
        row = await self._one(sql.RECOVERY_CODES_LEFT, user_id)
        return 0 if row is None else int(row[0])

    async def spend_proof(self, user_id: str, factor_id: str | None, proof: FactorProof, now: datetime) -> bool:
        return await self._spend(sql.spend_proof(user_id, factor_id, proof, time_text(now)))

    async def reset_mfa(self, user_id: str) -> None:
        """Also forgets the preferred factor: there is none left to prefer. Raises UnknownUser."""
        await self._write(sql.reset_mfa(user_id))

    # The audit trail (engine/stores/audit_events.py)

    async def record_audit(self, events: Sequence[AuditEvent]) -> None:
        await self._write(audit_events.insert(events))

    async def audit_events(self, query: AuditQuery) -> AuditPage:
        select = audit_events.page_statement(query)
        assert isinstance(select.sql, str)
        return audit_events.page_of(await self._all(select.sql, *select.parameters), query.limit)

    async def delete_audit_events(self, before: datetime, batch: int) -> int:
        return await self._write(audit_events.delete_before(time_text(before), batch))

    # Remembered browsers (engine/stores/remembered_browsers.py)

    async def remember_browser(self, browser: RememberedBrowser, max_per_user: int) -> bool:
        return await self._write(remembered_browsers.insert(browser, max_per_user))

    async def use_remembered_browser(self, browser_id: str, user_id: str, device_id: str, now: datetime) -> bool:
        return await self._write(remembered_browsers.use(browser_id, user_id, device_id, now))

    async def list_remembered_browsers(self, user_id: str, now: datetime) -> list[RememberedBrowser]:
        rows = await self._all(remembered_browsers.LIST_FOR, user_id, time_text(now))
        return [remembered_browsers.browser(row) for row in rows]

    async def forget_remembered_browser(self, user_id: str, browser_id: str) -> bool:
        return await self._write(remembered_browsers.forget(user_id, browser_id))

    async def forget_remembered_browsers(self, user_id: str) -> int:
        return await self._write(remembered_browsers.forget_all(user_id))

    # The hosted pages' clients added through the admin API (engine/stores/clients.py)

    async def put_client(self, client_id: str, name: str, redirect_uris: Sequence[str], public: bool,
                         now: datetime) -> tuple[ClientRecord, bool]:
        clients.check(client_id, redirect_uris)
        return await self._write(clients.put(client_id, name, redirect_uris, public, time_text(now)))

    async def get_client(self, client_id: str) -> ClientRecord | None:
        row = await self._one(clients.SELECT, client_id)
        return None if row is None else clients.record(row)

    async def list_clients(self) -> list[ClientRecord]:
        return [clients.record(row) for row in await self._all(clients.LIST)]

    async def delete_client(self, client_id: str) -> bool:
        return await self._write(clients.delete(client_id))
