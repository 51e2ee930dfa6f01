"""What passing a second factor uses up is written by the directory, once (issue 7, items 2 and 8).

A TOTP time step is accepted at most once per factor and never at or below the last one, and
a recovery code is consumed, in the login's own transaction (`record_login`) or alone
(`spend_proof`, when a factor is passed before an enrollment), with one conditional UPDATE
each: two processes racing with the same proof cannot both win. A refused proof leaves
nothing written. On both backends (a SQLite file, a PostgreSQL database); the upgrade of SQLite
files from before the durable TOTP step: test_sqlite.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.stores.directory import FactorProof, UnknownUser, UserDirectory
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import DirectoryBackend, Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture
from tests.engine.stores.test_directory import NOW, SECRET, new_user, stored_user

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures

STEP = 59_000_000  # a time step of 2026 (unix seconds // 30)


@pytest.fixture
def alice(directory: SqlDirectory, run_sync: Run) -> tuple[str, str]:
    """alice's user id and the id of her active authenticator app."""
    user = run_sync(directory.create_user(new_user("alice"), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    return user.user_id, factor.factor_id


def login_with_step(run_sync: Run, directory: UserDirectory, user_id: str, factor_id: str, step: int) -> bool:
    return run_sync(directory.record_login(user_id, NOW, "dev-1", "US", factor_id, FactorProof(totp_step=step)))


def test_a_login_remembers_the_totp_step_it_accepted(directory: SqlDirectory, run_sync: Run, alice: tuple[str, str]) -> None:
    user_id, factor_id = alice
    factor = run_sync(directory.get_factor(factor_id))
    assert factor is not None and factor.last_totp_step is None

    assert login_with_step(run_sync, directory, user_id, factor_id, STEP) is True

    factor = run_sync(directory.get_factor(factor_id))
    assert factor is not None and factor.last_totp_step == STEP


def test_a_totp_step_at_or_below_the_last_accepted_one_is_refused(
    directory: SqlDirectory, run_sync: Run, alice: tuple[str, str]
) -> None:
    user_id, factor_id = alice
    assert login_with_step(run_sync, directory, user_id, factor_id, STEP) is True

    assert login_with_step(run_sync, directory, user_id, factor_id, STEP) is False
    assert login_with_step(run_sync, directory, user_id, factor_id, STEP - 1) is False
    assert login_with_step(run_sync, directory, user_id, factor_id, STEP + 1) is True


def test_a_refused_proof_leaves_the_login_unrecorded(directory: SqlDirectory, run_sync: Run, alice: tuple[str, str]) -> None:
    user_id, factor_id = alice
    assert login_with_step(run_sync, directory, user_id, factor_id, STEP) is True
    before = stored_user(run_sync, directory, user_id)

    refused = run_sync(directory.record_login(user_id, NOW + timedelta(hours=1), "dev-2", "FR", factor_id,
                                              FactorProof(totp_step=STEP)))

    assert refused is False
    assert stored_user(run_sync, directory, user_id) == before
    summary = run_sync(directory.login_summary(user_id, NOW - timedelta(days=3650)))
    assert summary.device_last_seen.keys() == {"dev-1"} and summary.country_last_seen.keys() == {"US"}
    assert summary.last is not None and summary.last.country == "US"


def test_a_totp_step_of_another_users_factor_is_refused(directory: SqlDirectory, run_sync: Run, alice: tuple[str, str]) -> None:
    _, factor_id = alice
    mallory = run_sync(directory.create_user(new_user("mallory"), NOW))

    assert run_sync(directory.spend_proof(mallory.user_id, factor_id, FactorProof(totp_step=STEP), NOW)) is False
    factor = run_sync(directory.get_factor(factor_id))
    assert factor is not None and factor.last_totp_step is None


def test_a_recovery_code_spent_with_a_login_is_gone_and_cannot_be_spent_again(
    directory: SqlDirectory, run_sync: Run, alice: tuple[str, str]
) -> None:
    user_id, _ = alice
    run_sync(directory.replace_recovery_codes(user_id, ["h1", "h2"], NOW))
    assert run_sync(directory.recovery_code_usable(user_id, "h1")) is True

    proof = FactorProof(recovery_code_hash="h1")
    assert run_sync(directory.record_login(user_id, NOW, None, None, None, proof)) is True

    assert run_sync(directory.recovery_code_usable(user_id, "h1")) is False
    assert run_sync(directory.recovery_codes_left(user_id)) == 1
    assert run_sync(directory.record_login(user_id, NOW, None, None, None, proof)) is False
    assert run_sync(directory.spend_proof(user_id, None, proof, NOW)) is False
    assert stored_user(run_sync, directory, user_id).logins_count == 1


def test_looking_at_a_recovery_code_does_not_use_it(directory: SqlDirectory, run_sync: Run, alice: tuple[str, str]) -> None:
    user_id, _ = alice
    run_sync(directory.replace_recovery_codes(user_id, ["h1"], NOW))

    for _ in range(3):
        assert run_sync(directory.recovery_code_usable(user_id, "h1")) is True
    assert run_sync(directory.recovery_code_usable(user_id, "unknown")) is False
    assert run_sync(directory.recovery_code_usable("usr_other", "h1")) is False
    assert run_sync(directory.recovery_codes_left(user_id)) == 1




def test_a_recovery_code_spent_twenty_times_at_once_from_two_instances_succeeds_once(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    # Two directories on one database: two writer threads on one file, or two pools on one server.
    instances = [directory_backend.directory, directory_backend.open()]
    user = run_sync(instances[0].create_user(new_user("alice"), NOW))
    run_sync(instances[0].replace_recovery_codes(user.user_id, ["h1", "h2"], NOW))
    proof = FactorProof(recovery_code_hash="h1")

    async def spend_all() -> list[bool]:
        return list(await asyncio.gather(*(instances[i % 2].spend_proof(user.user_id, None, proof, NOW)
                                           for i in range(20))))

    assert sorted(run_sync(spend_all())) == [False] * 19 + [True]
    assert run_sync(instances[1].recovery_codes_left(user.user_id)) == 1


def test_one_totp_step_in_twenty_logins_at_once_from_two_instances_is_accepted_once(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    instances = [directory_backend.directory, directory_backend.open()]
    user = run_sync(instances[0].create_user(new_user("alice"), NOW))
    factor = run_sync(instances[0].add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))

    async def log_in_all() -> list[bool]:
        return list(await asyncio.gather(*(instances[i % 2].record_login(
            user.user_id, NOW, "dev-1", "US", factor.factor_id, FactorProof(totp_step=STEP)) for i in range(20))))

    assert sorted(run_sync(log_in_all())) == [False] * 19 + [True]
    assert stored_user(run_sync, instances[1], user.user_id).logins_count == 1


def test_enrollments_started_at_once_leave_one_pending_factor(directory_backend: DirectoryBackend,
                                                              run_sync: Run) -> None:
    """Each enrollment drops the unfinished ones under the user's lock: of ten started together,
    one is left to confirm, so they cannot carry the user past the limit together."""
    instances = [directory_backend.directory, directory_backend.open()]
    user = run_sync(instances[0].create_user(new_user("alice"), NOW))
    for _ in range(9):
        run_sync(instances[0].add_factor(user.user_id, "sms", NOW, status="active", phone_number="+15555550100"))

    async def enroll_all() -> list[object]:
        return list(await asyncio.gather(*(instances[i % 2].enroll_factor(
            user.user_id, "otp", NOW, max_active=10, secret=SECRET) for i in range(10))))

    started = run_sync(enroll_all())

    factors = run_sync(instances[1].list_factors(user.user_id, include_pending=True))
    assert None not in started
    assert [factor.status for factor in factors].count("pending") == 1
    assert len(factors) == 10


def test_an_enrollment_past_the_limit_changes_nothing(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user("alice"), NOW))
    active = run_sync(directory.add_factor(user.user_id, "sms", NOW, status="active", phone_number="+15555550100"))
    pending = run_sync(directory.enroll_factor(user.user_id, "otp", NOW, max_active=2, secret=SECRET))
    assert pending is not None and pending.status == "pending"

    refused = run_sync(directory.enroll_factor(user.user_id, "otp", NOW, max_active=1, secret=SECRET))
    replaced = run_sync(directory.enroll_factor(user.user_id, "sms", NOW + timedelta(seconds=1), max_active=2,
                                                phone_number="+15555550101"))

    assert refused is None
    assert replaced is not None and replaced.phone_number == "+15555550101"
    assert run_sync(directory.list_factors(user.user_id, include_pending=True)) == [active, replaced]
    with pytest.raises(UnknownUser):
        run_sync(directory.enroll_factor("usr_missing", "otp", NOW, max_active=10, secret=SECRET))
