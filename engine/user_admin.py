"""User and factor administration, one implementation for the admin API (engine/http/admin.py) and the CLI.

Each use case takes parsed values and returns records; it raises NotFound (404) for an unknown
user or factor (also one deleted while the call was under way: the directory's UnknownUser),
Conflict (409) for a taken username or a factor past MAX_FACTORS_PER_USER (as enrollment's),
InvalidRequest (400) for a missing field,
CountryNotAllowed for an SMS phone outside `sms.allowed_countries`, and whatever the store or
directory raise when they cannot answer (StoreUnavailable: 503). Every change is written to the
audit trail with the actor `admin` (engine/audit.py), once it is made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from engine.audit import Actor
from engine.audit_trail import AuditTrail
from engine.clock import Clock
from engine.config import SmsSettings
from engine.errors import Conflict, InvalidRequest, NotFound
from engine.factors import totp
from engine.factors.limits import MAX_FACTORS_PER_USER, too_many_factors
from engine.passwords import PasswordHasher
from engine.sms.sender import check_country
from engine.stores.challenges import ChallengeStore
from engine.stores.directory import (
    FactorRecord, NewUser, RememberedBrowser, TooManyFactors, UnknownUser, UserDirectory, UserExists, UserRecord,
)

log = logging.getLogger("engine.admin")


@contextmanager
def _user_still_there() -> Iterator[None]:
    """A write about a user found a moment ago: deleted meanwhile (another admin call, another
    instance), the directory raises UnknownUser, which is this user's 404, not a 500."""
    try:
        yield
    except UnknownUser:
        raise NotFound("no such user") from None


@dataclass(frozen=True, slots=True)
class FactorListing:
    factors: list[FactorRecord]
    recovery_codes_left: int


class UserAdmin:
    def __init__(self, directory: UserDirectory, store: ChallengeStore, passwords: PasswordHasher, clock: Clock,
                 sms: SmsSettings, audit: AuditTrail) -> None:
        self.directory = directory
        self.store = store
        self.passwords = passwords
        self.clock = clock
        self.sms = sms
        self.audit = audit

    async def create_user(self, fields: Mapping[str, Any], password: str) -> UserRecord:
        """`fields` are NewUser's keyword arguments without the hash (validated by the caller)."""
        password_hash = await self.passwords.hash(password)
        now = self.clock.now()
        try:
            user = await self.directory.create_user(NewUser(password_hash=password_hash, **fields), now)
        except UserExists:
            raise Conflict("the username is taken", field="username") from None
        log.info("admin_user_created user_id=%s", user.user_id)
        await self.audit.record("user.created", now, user_id=user.user_id, username=user.username)
        return user

    async def list_users(self, limit: int, offset: int) -> list[UserRecord]:
        return list(await self.directory.list_users(limit, offset))

    async def get_user(self, user_id: str) -> UserRecord:
        user = await self.directory.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def find_user(self, username_or_id: str) -> UserRecord:
        """A user by login name (username or email, as at login) or by id: the CLI's way of naming one."""
        found = await self.directory.find_login(username_or_id)
        return found[0] if found else await self.get_user(username_or_id)

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> UserRecord:
        """`changes` may hold `password` (hashed here) and any field of UserDirectory.update_user."""
        values = dict(changes)
        if "password" in values:
            values["password_hash"] = await self.passwords.hash(values.pop("password"))
        user = await self.directory.update_user(user_id, values)
        if user is None:
            raise NotFound("no such user")
        # The names of the fields, never their values (a password, a phone number).
        await self.audit.record("user.updated", self.clock.now(), user_id=user_id, fields=sorted(changes))
        return user

    async def delete_user(self, user_id: str) -> None:
        user = await self.get_user(user_id)  # its username: the trail names whom an id was, once it is gone
        if not await self.directory.delete_user(user_id):
            raise NotFound("no such user")
        log.info("admin_user_deleted user_id=%s", user_id)
        await self.audit.record("user.deleted", self.clock.now(), user_id=user_id, username=user.username)

    async def list_factors(self, user_id: str) -> FactorListing:
        user = await self.get_user(user_id)
        factors = await self.directory.list_factors(user.user_id, include_pending=True)
        return FactorListing(list(factors), await self.directory.recovery_codes_left(user.user_id))

    async def add_factor(self, user_id: str, factor_type: str, phone_number: str | None,
                         secret: str | None) -> FactorRecord:
        """Pre-enroll a phone, or import an existing TOTP secret (migrations): active at once."""
        user = await self.get_user(user_id)
        now = self.clock.now()
        if factor_type == "sms":
            if phone_number is None:
                raise InvalidRequest("is required for an sms factor", field="phone_number")
            check_country(self.sms, phone_number)
            kind, secret = "sms", None
        else:
            if secret is None:
                raise InvalidRequest("is required for an otp factor (base32)", field="secret")
            problem = totp.secret_problem(secret)
            if problem is not None:  # else every verify of the factor would fail
                raise InvalidRequest(problem, field="secret")
            kind, phone_number, secret = "otp", None, secret.rstrip("=")
        # The limit self-enrollment keeps, counted by the directory under the user's lock.
        try:
            with _user_still_there():
                factor = await self.directory.add_factor(user.user_id, kind, now, status="active",
                                                         phone_number=phone_number, secret=secret,
                                                         max_active=MAX_FACTORS_PER_USER)
        except TooManyFactors:
            raise too_many_factors() from None
        log.info("admin_factor_added user_id=%s factor_type=%s", user.user_id, factor_type)
        await self.audit.record("factor.added", now, user_id=user.user_id, factor_id=factor.factor_id,
                                factor_type=factor.type, phone=factor.phone_number)
        return factor

    async def delete_factor(self, user_id: str, factor_id: str, *, actor: Actor = Actor.ADMIN,
                            ip: str | None = None) -> None:
        """`actor` USER (with the user's `ip`) when the user removes it themselves (the account pages)."""
        user = await self.get_user(user_id)
        if not await self.directory.delete_factor(user.user_id, factor_id):
            raise NotFound("no such factor")
        await self.audit.record("factor.removed", self.clock.now(), actor=actor, user_id=user.user_id, ip=ip,
                                factor_id=factor_id)

    async def list_remembered_browsers(self, user_id: str) -> list[RememberedBrowser]:
        """The user's unexpired remembered browsers (engine/remembered.py), newest first."""
        user = await self.get_user(user_id)
        return await self.directory.list_remembered_browsers(user.user_id, self.clock.now())

    async def forget_remembered_browser(self, user_id: str, browser_id: str) -> None:
        """Revoke one: its token stops working at the next login, on every instance."""
        user = await self.get_user(user_id)
        if not await self.directory.forget_remembered_browser(user.user_id, browser_id):
            raise NotFound("no such remembered browser")
        log.info("admin_remembered_browser_revoked user_id=%s browser_id=%s", user.user_id, browser_id)
        await self.audit.record("remembered_browser.revoked", self.clock.now(), user_id=user.user_id,
                                browser_id=browser_id)

    async def forget_remembered_browsers(self, user_id: str) -> None:
        user = await self.get_user(user_id)
        revoked = await self.directory.forget_remembered_browsers(user.user_id)
        log.info("admin_remembered_browsers_revoked user_id=%s count=%d", user.user_id, revoked)
        await self.audit.record("remembered_browser.revoked", self.clock.now(), user_id=user.user_id, count=revoked)

    async def reset_mfa(self, user_id: str) -> UserRecord:
        """Remove every factor, recovery code and remembered browser and clear the lockout streak
        (engine/stores/challenges.py)."""
        user = await self.get_user(user_id)
        # The store first: with the store down the reset is refused whole (503) rather than half
        # done (factors gone, the lockout streak kept). A retry repeats both harmlessly.
        await self.store.clear_failures(user.user_id)
        with _user_still_there():
            await self.directory.reset_mfa(user.user_id)
        log.info("admin_mfa_reset user_id=%s", user.user_id)
        await self.audit.record("mfa.reset", self.clock.now(), user_id=user.user_id)
        return user
