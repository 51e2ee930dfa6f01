"""The per-user factor limit on the admin path (review finding): UserDirectory.add_factor with
`max_active` counts the active factors under the user's lock, on SQLite and PostgreSQL, so of
concurrent adds at the limit exactly one passes; and UserAdmin answers a full user 409 and a
user deleted between its lookup and its write 404 (the directory's UnknownUser), never a 500."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.audit_trail import AuditTrail
from engine.clock import FrozenClock
from engine.config import AuditSettings, SmsSettings
from engine.errors import Conflict, NotFound
from engine.factors.limits import MAX_FACTORS_PER_USER
from engine.passwords import PasswordHasher
from engine.stores.directory import FactorRecord, NewUser, TooManyFactors, UnknownUser
from engine.stores.memory import MemoryChallengeStore
from engine.stores.postgres import PostgresDirectory
from engine.stores.sql_directory import SqlDirectory
from engine.stores.sqlite import SqliteDirectory
from engine.user_admin import UserAdmin
from tests.engine.stores.directories import KEYRING, DirectoryBackend, Run, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture

__all__ = ["directory_backend", "run_sync"]  # fixtures

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CONCURRENT = 20


def user_with_factors(directory: SqlDirectory, run: Run, active: int, username: str = "alice") -> str:
    user = run(directory.create_user(NewUser(username=username, password_hash="x"), NOW))
    for _ in range(active):
        run(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    return user.user_id


def active_factors(directory: SqlDirectory, run: Run, user_id: str) -> int:
    return len(run(directory.list_factors(user_id)))


def user_admin(directory: SqlDirectory) -> UserAdmin:
    clock = FrozenClock(NOW)
    return UserAdmin(directory, MemoryChallengeStore(), PasswordHasher(time_cost=1, memory_kib=8192, parallelism=1),
                     clock, SmsSettings(), AuditTrail(directory, clock, AuditSettings()))


def test_add_factor_keeps_the_limit_it_is_given_and_counts_only_active_factors(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    directory = directory_backend.directory
    user_id = user_with_factors(directory, run_sync, 2)
    run_sync(directory.add_factor(user_id, "otp", NOW, secret=SECRET))  # pending: not counted
    with pytest.raises(TooManyFactors):
        run_sync(directory.add_factor(user_id, "otp", NOW, status="active", secret=SECRET, max_active=2))
    assert active_factors(directory, run_sync, user_id) == 2
    run_sync(directory.add_factor(user_id, "sms", NOW, status="active", phone_number="+14155550123", max_active=3))
    assert active_factors(directory, run_sync, user_id) == 3
    with pytest.raises(UnknownUser):
        run_sync(directory.add_factor("usr_gone", "otp", NOW, status="active", secret=SECRET, max_active=3))


def test_concurrent_admin_adds_at_the_limit_let_exactly_one_through(directory_backend: DirectoryBackend,
                                                                     run_sync: Run) -> None:
    """20 adds at once, spread over 4 directories (connections or pools) on one database."""
    directories = [directory_backend.open() for _ in range(4)]
    user_id = user_with_factors(directories[0], run_sync, MAX_FACTORS_PER_USER - 1)
    admins = [user_admin(directory) for directory in directories]

    async def race() -> list[FactorRecord | BaseException]:
        return await asyncio.gather(*(admins[n % len(admins)].add_factor(user_id, "otp", None, SECRET)
                                      for n in range(CONCURRENT)), return_exceptions=True)

    outcomes = run_sync(race())
    assert sum(isinstance(outcome, FactorRecord) for outcome in outcomes) == 1, outcomes
    refused = [outcome for outcome in outcomes if not isinstance(outcome, FactorRecord)]
    assert all(isinstance(outcome, Conflict) for outcome in refused), refused
    assert {outcome.to_body()["error"] for outcome in refused if isinstance(outcome, Conflict)} == {"conflict"}
    assert active_factors(directories[0], run_sync, user_id) == MAX_FACTORS_PER_USER


def test_an_admin_add_past_the_limit_is_the_conflict_enrollment_answers(directory_backend: DirectoryBackend,
                                                                       run_sync: Run) -> None:
    directory = directory_backend.directory
    user_id = user_with_factors(directory, run_sync, MAX_FACTORS_PER_USER)
    with pytest.raises(Conflict) as refused:
        run_sync(user_admin(directory).add_factor(user_id, "sms", "+14155550123", None))
    assert refused.value.to_body() == {"error": "conflict", "field": "factor",
                                       "message": f"at most {MAX_FACTORS_PER_USER} factors per user; "
                                                  "remove one first"}
    assert active_factors(directory, run_sync, user_id) == MAX_FACTORS_PER_USER


class _DeletesTheUserFirst:
    """A real directory whose writes delete their user just before they run: the user an admin
    call looked up is gone by the time its write reaches the database."""

    async def add_factor(self, user_id: str, *args: Any, **kwargs: Any) -> FactorRecord:
        await self.delete_user(user_id)  # type: ignore[attr-defined]
        return await super().add_factor(user_id, *args, **kwargs)  # type: ignore[misc,no-any-return]

    async def reset_mfa(self, user_id: str) -> None:
        await self.delete_user(user_id)  # type: ignore[attr-defined]
        await super().reset_mfa(user_id)  # type: ignore[misc]


class VanishingSqlite(_DeletesTheUserFirst, SqliteDirectory):
    pass


class VanishingPostgres(_DeletesTheUserFirst, PostgresDirectory):
    pass


@pytest.mark.parametrize("call", ["add_sms", "add_otp", "reset_mfa"])
def test_a_user_deleted_during_an_admin_write_is_a_404(directory_backend: DirectoryBackend, run_sync: Run,
                                                       call: str) -> None:
    user_id = user_with_factors(directory_backend.directory, run_sync, 1)
    vanishing: SqlDirectory = VanishingSqlite(directory_backend.location, KEYRING) \
        if directory_backend.name == "sqlite" else VanishingPostgres(directory_backend.location, KEYRING,
                                                                     max_connections=2)
    try:
        admin = user_admin(vanishing)
        write = {"add_sms": lambda: admin.add_factor(user_id, "sms", "+14155550123", None),
                 "add_otp": lambda: admin.add_factor(user_id, "otp", None, SECRET),
                 "reset_mfa": lambda: admin.reset_mfa(user_id)}[call]
        with pytest.raises(NotFound) as refused:
            run_sync(write())
        assert refused.value.to_body()["error"] == "not_found"
        assert run_sync(vanishing.get_user(user_id)) is None
    finally:
        run_sync(vanishing.close())


def test_an_enrollment_confirmed_after_an_admin_filled_the_user_up_stays_pending(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    """9 active and an enrollment waiting for its code; an admin adds the 10th: the confirm must
    not make an 11th (red-team finding: activate_factor did not count)."""
    directory = directory_backend.directory
    user_id = user_with_factors(directory, run_sync, MAX_FACTORS_PER_USER - 1)
    pending = run_sync(directory.enroll_factor(user_id, "otp", NOW, max_active=MAX_FACTORS_PER_USER, secret=SECRET))
    assert pending is not None
    run_sync(directory.add_factor(user_id, "otp", NOW, status="active", secret=SECRET,
                                  max_active=MAX_FACTORS_PER_USER))

    with pytest.raises(TooManyFactors):
        run_sync(directory.activate_factor(pending.factor_id, NOW, max_active=MAX_FACTORS_PER_USER))
    assert active_factors(directory, run_sync, user_id) == MAX_FACTORS_PER_USER
    stored = run_sync(directory.get_factor(pending.factor_id))
    assert stored is not None and stored.status == "pending"
