"""What passing a second factor uses up is written by the directory, once (issue 7, items 2 and 8).

A TOTP time step is accepted at most once per factor and never at or below the last one, and
a recovery code is consumed, in the login's own transaction (`record_login`) or alone
(`spend_proof`, when a factor is passed before an enrollment), with one conditional UPDATE
each: two processes racing with the same proof cannot both win. A refused proof leaves
nothing written. Real SQLite files.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.stores.directory import FactorProof
from engine.stores.sqlite import MIGRATIONS, SqliteDirectory
from tests.engine.stores.test_sqlite import KEYRING, NOW, SECRET, new_user, raw_rows, run_sync, stored_user

STEP = 59_000_000  # a time step of 2026 (unix seconds // 30)


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[SqliteDirectory]:
    opened = SqliteDirectory(str(tmp_path / "directory.db"), KEYRING)
    yield opened
    run_sync(opened.close())


@pytest.fixture
def alice(directory: SqliteDirectory) -> tuple[str, str]:
    """alice's user id and the id of her active authenticator app."""
    user = run_sync(directory.create_user(new_user("alice"), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    return user.user_id, factor.factor_id


def login_with_step(directory: SqliteDirectory, user_id: str, factor_id: str, step: int) -> bool:
    return run_sync(directory.record_login(user_id, NOW, "dev-1", "US", factor_id, FactorProof(totp_step=step)))


def test_a_login_remembers_the_totp_step_it_accepted(directory: SqliteDirectory, alice: tuple[str, str]) -> None:
    user_id, factor_id = alice
    factor = run_sync(directory.get_factor(factor_id))
    assert factor is not None and factor.last_totp_step is None

    assert login_with_step(directory, user_id, factor_id, STEP) is True

    factor = run_sync(directory.get_factor(factor_id))
    assert factor is not None and factor.last_totp_step == STEP


def test_a_totp_step_at_or_below_the_last_accepted_one_is_refused(
    directory: SqliteDirectory, alice: tuple[str, str]
) -> None:
    user_id, factor_id = alice
    assert login_with_step(directory, user_id, factor_id, STEP) is True

    assert login_with_step(directory, user_id, factor_id, STEP) is False
    assert login_with_step(directory, user_id, factor_id, STEP - 1) is False
    assert login_with_step(directory, user_id, factor_id, STEP + 1) is True


def test_a_refused_proof_leaves_the_login_unrecorded(directory: SqliteDirectory, alice: tuple[str, str]) -> None:
    user_id, factor_id = alice
    assert login_with_step(directory, user_id, factor_id, STEP) is True
    before = stored_user(directory, user_id)

    refused = run_sync(directory.record_login(user_id, NOW + timedelta(hours=1), "dev-2", "FR", factor_id,
                                              FactorProof(totp_step=STEP)))

    assert refused is False
    assert stored_user(directory, user_id) == before
    summary = run_sync(directory.login_summary(user_id, NOW - timedelta(days=3650)))
    assert summary.device_last_seen.keys() == {"dev-1"} and summary.country_last_seen.keys() == {"US"}
    assert summary.last is not None and summary.last.country == "US"


def test_a_totp_step_of_another_users_factor_is_refused(directory: SqliteDirectory, alice: tuple[str, str]) -> None:
    _, factor_id = alice
    mallory = run_sync(directory.create_user(new_user("mallory"), NOW))

    assert run_sync(directory.spend_proof(mallory.user_id, factor_id, FactorProof(totp_step=STEP), NOW)) is False
    factor = run_sync(directory.get_factor(factor_id))
    assert factor is not None and factor.last_totp_step is None


def test_a_recovery_code_spent_with_a_login_is_gone_and_cannot_be_spent_again(
    directory: SqliteDirectory, alice: tuple[str, str]
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
    assert stored_user(directory, user_id).logins_count == 1


def test_looking_at_a_recovery_code_does_not_use_it(directory: SqliteDirectory, alice: tuple[str, str]) -> None:
    user_id, _ = alice
    run_sync(directory.replace_recovery_codes(user_id, ["h1"], NOW))

    for _ in range(3):
        assert run_sync(directory.recovery_code_usable(user_id, "h1")) is True
    assert run_sync(directory.recovery_code_usable(user_id, "unknown")) is False
    assert run_sync(directory.recovery_code_usable("usr_other", "h1")) is False
    assert run_sync(directory.recovery_codes_left(user_id)) == 1


def test_one_totp_step_raced_from_ten_threads_on_two_connections_is_accepted_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    directories = [SqliteDirectory(path, KEYRING) for _ in range(2)]
    try:
        user = run_sync(directories[0].create_user(new_user("alice"), NOW))
        factor = run_sync(directories[0].add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
        barrier = threading.Barrier(10)
        results: list[bool] = []

        def log_in(directory: SqliteDirectory) -> None:
            barrier.wait()
            results.append(login_with_step(directory, user.user_id, factor.factor_id, STEP))

        threads = [threading.Thread(target=log_in, args=(directories[i % 2],)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(results) == [False] * 9 + [True]
        assert stored_user(directories[1], user.user_id).logins_count == 1
    finally:
        for directory in directories:
            run_sync(directory.close())


def first_schema_database(path: Path, factors: list[tuple[str, str, datetime | None, datetime | None]]) -> None:
    """A directory as the first schema's engine left it: alice with `factors`, each given as
    (factor_id, type, confirmed_at, last_used_at), times written as that engine wrote them."""
    def written(at: datetime | None) -> str | None:
        return None if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")

    with closing(sqlite3.connect(path)) as connection, connection:
        connection.executescript(MIGRATIONS[0][1])
        connection.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        connection.execute("INSERT INTO schema_migrations VALUES (1, ?)", (NOW.isoformat(),))
        connection.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at)"
                           " VALUES ('usr_a', 'alice', 'alice', 'x', ?)", (written(NOW),))
        for factor_id, kind, confirmed_at, last_used_at in factors:
            connection.execute("INSERT INTO factors (factor_id, user_id, type, status, created_at, confirmed_at,"
                               " last_used_at) VALUES (?, 'usr_a', ?, 'active', ?, ?, ?)",
                               (factor_id, kind, written(NOW), written(confirmed_at), written(last_used_at)))


def test_a_totp_code_used_just_before_the_upgrade_is_refused_just_after_it(tmp_path: Path) -> None:
    # The code accepted at `used` matched its step or, with drift, the one before or after; the
    # store that remembered which may be gone with the restart that brings the migration.
    used = NOW + timedelta(minutes=10)
    step = int(used.timestamp()) // 30
    path = tmp_path / "old.db"
    first_schema_database(path, [("fac_otp", "otp", NOW, used)])

    migrated = SqliteDirectory(str(path), KEYRING)
    try:
        for replayed in (step - 1, step, step + 1):
            assert run_sync(migrated.spend_proof("usr_a", "fac_otp", FactorProof(totp_step=replayed), used)) is False
        assert run_sync(migrated.spend_proof("usr_a", "fac_otp", FactorProof(totp_step=step + 2),
                                             used + timedelta(seconds=30))) is True
    finally:
        run_sync(migrated.close())


def test_the_upgrade_remembers_the_confirming_code_of_a_factor_never_used_and_nothing_for_phones(
    tmp_path: Path
) -> None:
    path = tmp_path / "old.db"
    first_schema_database(path, [("fac_otp", "otp", NOW, None), ("fac_sms", "sms", NOW, NOW)])

    run_sync(SqliteDirectory(str(path), KEYRING).close())

    assert raw_rows(path, "SELECT factor_id, last_totp_step FROM factors ORDER BY factor_id") == [
        ("fac_otp", int(NOW.timestamp()) // 30 + 1), ("fac_sms", None)]


def test_a_database_of_the_first_schema_is_migrated_to_remember_totp_steps(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.executescript(MIGRATIONS[0][1])
        connection.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        connection.execute("INSERT INTO schema_migrations VALUES (1, ?)", (NOW.isoformat(),))
        connection.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at)"
                           " VALUES ('usr_a', 'alice', 'alice', 'x', ?)", (NOW.isoformat(),))
        connection.execute("INSERT INTO factors (factor_id, user_id, type, status, created_at)"
                           " VALUES ('fac_a', 'usr_a', 'sms', 'active', ?)", (NOW.isoformat(),))

    migrated = SqliteDirectory(str(path), KEYRING)
    try:
        factor = run_sync(migrated.get_factor("fac_a"))
        assert factor is not None and factor.last_totp_step is None
        assert run_sync(migrated.spend_proof("usr_a", "fac_a", FactorProof(totp_step=STEP), NOW)) is True
    finally:
        run_sync(migrated.close())
    assert raw_rows(path, "SELECT last_totp_step FROM factors") == [(STEP,)]
    assert [version for (version,) in raw_rows(path, "SELECT version FROM schema_migrations")] == \
        [version for version, *_ in MIGRATIONS]
