"""What only SqliteDirectory has: its file (WAL, synchronous writes from threads on two connections),
an in-memory database, and the files older engines left, which its migrations upgrade. The
directory's behaviour on both backends: test_directory*.py, test_login_events.py,
test_remembered_browsers_sql.py."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Coroutine, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.stores.directory import DirectoryError, FactorProof, SchemaTooNew
from engine.stores.login_events import LoginEvent, LoginSummary, record_event
from engine.stores.sqlite import MIGRATIONS, SqliteDirectory, migrate, run
from tests.engine.stores.directories import KEYRING
from tests.engine.stores.test_directory import NOW, SECRET, new_user

T = TypeVar("T")
STEP = 59_000_000  # a time step of 2026 (unix seconds // 30)


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """On a fresh loop each call, so any thread can use it: SqliteDirectory belongs to no loop."""
    return asyncio.run(coroutine)


def raw_rows(path: Path | str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql, params).fetchall()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "directory.db"


@pytest.fixture
def directory(db_path: Path) -> Iterator[SqliteDirectory]:
    store = SqliteDirectory(str(db_path), KEYRING)
    yield store
    run_sync(store.close())


def login_with_step(directory: SqliteDirectory, user_id: str, factor_id: str, step: int) -> bool:
    return run_sync(directory.record_login(user_id, NOW, "dev-1", "US", factor_id, FactorProof(totp_step=step)))


def summary_of(directory: SqliteDirectory, user_id: str) -> LoginSummary:
    return run_sync(directory.login_summary(user_id, NOW - timedelta(days=3650)))


def spend_code(directory: SqliteDirectory, user_id: str, code_hash: str) -> bool:
    return run_sync(directory.spend_proof(user_id, None, FactorProof(recovery_code_hash=code_hash), NOW))


def test_the_migrations_create_the_schema_and_are_idempotent_on_reopen(db_path: Path) -> None:
    run_sync(SqliteDirectory(str(db_path), KEYRING).close())
    reopened = SqliteDirectory(str(db_path), KEYRING)
    run_sync(reopened.create_user(new_user(), NOW))
    run_sync(reopened.close())
    run_sync(SqliteDirectory(str(db_path), KEYRING).close())

    tables = {name for (name,) in raw_rows(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_migrations", "users", "factors", "recovery_codes", "known_devices",
            "known_countries"} <= tables
    assert [version for (version,) in raw_rows(db_path, "SELECT version FROM schema_migrations")] == \
        [version for version, *_ in MIGRATIONS]
    assert raw_rows(db_path, "SELECT COUNT(*) FROM users") == [(1,)]
    assert raw_rows(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_a_file_migrated_by_a_newer_engine_is_refused_and_left_as_it_was(db_path: Path) -> None:
    run_sync(SqliteDirectory(str(db_path), KEYRING).close())
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                           (MIGRATIONS[-1][0] + 1, NOW.isoformat()))

    with pytest.raises(SchemaTooNew, match="version 8; this engine knows up to 7"):
        SqliteDirectory(str(db_path), KEYRING)
    assert isinstance(SchemaTooNew("x"), DirectoryError)
    assert raw_rows(db_path, "SELECT MAX(version) FROM schema_migrations") == [(8,)]


def test_an_in_memory_directory_works(tmp_path: Path) -> None:
    store = SqliteDirectory(":memory:", KEYRING)
    try:
        user = run_sync(store.create_user(new_user(), NOW))
        assert run_sync(store.get_user(user.user_id)) == user
    finally:
        run_sync(store.close())


def test_a_recovery_code_spent_from_ten_threads_at_once_succeeds_exactly_once(db_path: Path) -> None:
    # Two directories on one file: the lock serializes one connection, SQL serializes the two.
    stores = [SqliteDirectory(str(db_path), KEYRING) for _ in range(2)]
    try:
        user = run_sync(stores[0].create_user(new_user(), NOW))
        run_sync(stores[0].replace_recovery_codes(user.user_id, ["h1", "h2"], NOW))
        barrier = threading.Barrier(10)
        results: list[bool] = []

        def consume(store: SqliteDirectory) -> None:
            barrier.wait()
            results.append(spend_code(store, user.user_id, "h1"))

        threads = [threading.Thread(target=consume, args=(stores[i % 2],)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(results) == [False] * 9 + [True]
        assert run_sync(stores[1].recovery_codes_left(user.user_id)) == 1
    finally:
        for store in stores:
            run_sync(store.close())


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
        stored = run_sync(directories[1].get_user(user.user_id))
        assert stored is not None and stored.logins_count == 1
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


def test_migration_3_upgrades_a_version_2_directory_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, script, _seed in MIGRATIONS[:2]:
            raw.executescript(script)
            raw.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, NOW.isoformat()))
        raw.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at)"
                    " VALUES ('usr_1', 'alice', 'alice', 'x', ?)", (NOW.isoformat(),))
        raw.execute("INSERT INTO known_devices VALUES ('usr_1', 'dev-1', ?, ?)", (NOW.isoformat(), NOW.isoformat()))
    directory = SqliteDirectory(str(path), KEYRING)
    try:
        assert summary_of(directory, "usr_1") == LoginSummary(None, {"dev-1": NOW}, {}, {})
        later = LoginEvent("usr_1", NOW + timedelta(hours=1), "dev-1", "DE", 52.52, 13.4, 20, "web")
        run_sync(directory.record_login("usr_1", later.at, "dev-1", "DE", client_id="web",
                                        geo={"latitude": 52.52, "longitude": 13.4, "accuracy_radius": 20}))
        assert summary_of(directory, "usr_1") == LoginSummary(later, {"dev-1": later.at}, {"DE": later.at},
                                                              {"web": later.at})
    finally:
        run_sync(directory.close())




def current_schema_database(path: Path) -> None:
    """A file as the engine before PostgreSQL support left it (schema version 5): every migration
    applied by that engine's runner, a row in each table, times as it wrote them."""
    at = NOW.astimezone(UTC).isoformat(timespec="microseconds")
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                           "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, script, _seed in MIGRATIONS[:5]:
            connection.executescript(script)
            connection.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, at))
        connection.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at,"
                           " logins_count, mfa_epoch) VALUES ('usr_a', 'alice', 'Alice', 'x', ?, 3, 1)", (at,))
        connection.execute("INSERT INTO factors (factor_id, user_id, type, status, phone_number, created_at,"
                           " confirmed_at, last_totp_step) VALUES ('fac_a', 'usr_a', 'sms', 'active', '+15555550100',"
                           " ?, ?, NULL)", (at, at))
        connection.execute("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ('usr_a', 'h1', ?)",
                           (at,))
        connection.execute("INSERT INTO known_devices VALUES ('usr_a', 'dev-1', ?, ?)", (at, at))
        connection.execute("INSERT INTO known_countries VALUES ('usr_a', 'DE', ?, ?)", (at, at))
        connection.execute("INSERT INTO known_clients VALUES ('usr_a', 'web', ?, ?)", (at, at))
        connection.execute("INSERT INTO last_logins VALUES ('usr_a', ?, 'dev-1', 'DE', 52520000, 13400000, 20, 'web')",
                           (at,))
        connection.execute("INSERT INTO remembered_browsers VALUES ('rmb_a', 'usr_a', 'dev-1', 'Firefox', 'web', ?, ?,"
                           " NULL)", (at, (NOW + timedelta(days=30)).isoformat(timespec="microseconds")))


def test_a_file_of_the_engine_before_postgresql_opens_as_it_was_and_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    current_schema_database(path)

    directory = SqliteDirectory(str(path), KEYRING)
    try:
        assert directory.migrated.applied == (6, 7) and directory.migrated.version == 7  # audit trail, clients
        assert run_sync(directory.schema_version()) == 7
        user = run_sync(directory.get_user("usr_a"))
        assert user is not None and (user.username, user.logins_count, user.mfa_epoch) == ("Alice", 3, 1)
        assert run_sync(directory.find_login("ALICE")) == (user, "x")
        [factor] = run_sync(directory.list_factors("usr_a"))
        assert (factor.factor_id, factor.phone_number, factor.confirmed_at) == ("fac_a", "+15555550100", NOW)
        assert summary_of(directory, "usr_a") == LoginSummary(
            LoginEvent("usr_a", NOW, "dev-1", "DE", 52.52, 13.4, 20, "web"), {"dev-1": NOW}, {"DE": NOW}, {"web": NOW})
        assert run_sync(directory.use_remembered_browser("rmb_a", "usr_a", "dev-1", NOW)) is True
        assert spend_code(directory, "usr_a", "h1") is True and spend_code(directory, "usr_a", "h1") is False
        assert run_sync(directory.enroll_factor("usr_a", "otp", NOW, max_active=10, secret=SECRET)) is not None
    finally:
        run_sync(directory.close())
    assert raw_rows(path, "SELECT version FROM schema_migrations ORDER BY version") == [(v,) for v in range(1, 8)]


def test_migrate_creates_a_new_file_and_then_has_nothing_to_do(db_path: Path) -> None:
    first = migrate(str(db_path))
    again = migrate(str(db_path))

    assert first.applied == (1, 2, 3, 4, 5, 6, 7) and first.version == 7
    assert again.applied == () and again.version == 7


def test_record_event_on_a_connection_says_when_the_user_is_unknown(db_path: Path) -> None:
    migrate(str(db_path))
    with closing(sqlite3.connect(db_path, isolation_level=None)) as raw:
        assert run(raw, record_event(LoginEvent("usr_gone", NOW, "dev-1", "DE", client_id="web"))) is False
    assert raw_rows(db_path, "SELECT COUNT(*) FROM known_devices") == [(0,)]


def test_an_in_memory_directory_merges_a_logins_metadata_changes() -> None:
    store = SqliteDirectory(":memory:", KEYRING)
    try:
        user = run_sync(store.create_user(new_user(app_metadata={"a": 1}), NOW))
        assert run_sync(store.record_login(user.user_id, NOW, None, None, metadata_updates={
            "app_metadata": {"b": 2}, "user_metadata": {"c": 3}})) is True
        stored = run_sync(store.get_user(user.user_id))
        assert stored is not None and (stored.app_metadata, stored.user_metadata) == ({"a": 1, "b": 2}, {"c": 3})
    finally:
        run_sync(store.close())
