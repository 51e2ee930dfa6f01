"""What only PostgresDirectory has: its migrations on a server several instances share, the same
schema as SQLite's at the same version, and a server that is gone or a URL with a password."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from engine.errors import DirectoryUnavailable
from engine.stores.audit_events import AuditQuery
from engine.stores.directory import SchemaTooNew
from engine.stores.migrations import Migrated
from engine.stores.postgres import PostgresDirectory, migrate, redacted
from engine.stores.sqlite import migrate as migrate_sqlite
from tests.conftest import LoopThread
from tests.engine.stores.directories import KEYRING
from tests.engine.stores.test_directory import NOW, new_user
from tests.postgres_db import empty, postgres_database

__all__ = ["postgres_database"]  # the fixture


@pytest.fixture
def database(postgres_database: str) -> Iterator[str]:
    """The session's database with no tables at all, and left so."""
    empty(postgres_database)
    yield postgres_database
    empty(postgres_database)


def columns_on_postgres(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT table_name, column_name FROM information_schema.columns"
                                  " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def columns_on_sqlite(path: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(path)) as connection:
        # Not SQLite's own bookkeeping (sqlite_sequence, of AUTOINCREMENT): PostgreSQL keeps it elsewhere.
        names = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                                        " AND name NOT LIKE 'sqlite_%'")]
        return {name: [row[1] for row in connection.execute(f"PRAGMA table_info({name})")] for name in sorted(names)}


def test_a_new_database_gets_the_schema_sqlite_has_at_the_same_version(database: str, tmp_path: Path) -> None:
    first = migrate(database)
    again = migrate(database)
    on_sqlite = migrate_sqlite(str(tmp_path / "directory.db"))

    assert first == Migrated((5, 6, 7), 7) and again == Migrated((), 7)
    assert on_sqlite.version == first.version
    assert columns_on_postgres(database) == columns_on_sqlite(tmp_path / "directory.db")


def test_a_database_of_version_5_gains_the_audit_trail_and_keeps_its_users(database: str,
                                                                          loop_thread: LoopThread) -> None:
    from engine.stores.migrations import apply
    from engine.stores.postgres import DIALECT
    from engine.stores.postgres_schema import MIGRATIONS

    with psycopg.connect(database, autocommit=True) as connection:
        apply(connection, DIALECT, MIGRATIONS[:1])
        connection.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at)"
                           " VALUES ('usr_a', 'alice', 'Alice', 'x', '2026-01-01T00:00:00.000000+00:00')")

    directory = PostgresDirectory(database, KEYRING)
    try:
        assert directory.migrated == Migrated((6, 7), 7)
        assert loop_thread.call(directory.get_user("usr_a")) is not None
        assert loop_thread.call(directory.audit_events(AuditQuery())).events == []
    finally:
        loop_thread.call(directory.close())


def test_instances_starting_together_on_a_new_database_apply_each_migration_once(database: str) -> None:
    barrier = threading.Barrier(4)
    results: list[Migrated] = []

    def start() -> None:
        barrier.wait()
        results.append(migrate(database))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(result.applied for result in results) == [(), (), (), (5, 6, 7)]
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall() == [(5,), (6,), (7,)]


def test_a_database_migrated_by_a_newer_engine_is_refused_and_left_as_it_was(database: str) -> None:
    migrate(database)
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (8, 'later')")

    with pytest.raises(SchemaTooNew, match="version 8; this engine knows up to 7"):
        PostgresDirectory(database, KEYRING)
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (8,)


def test_an_unreachable_server_stops_startup_without_showing_the_password() -> None:
    url = "postgresql://mfa:pa55-w0rd-s3cret@127.0.0.1:1/mfa"

    with pytest.raises(DirectoryUnavailable) as raised:
        PostgresDirectory(url, KEYRING, timeout_seconds=2)

    message = str(raised.value)
    assert "pa55-w0rd-s3cret" not in message and "pa55-w0rd-s3cret" not in repr(raised.value.to_body())
    assert "postgresql://mfa:***@127.0.0.1:1/mfa" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_connection_the_server_dropped_is_a_503_once_and_then_replaced(postgres_database: str,
                                                                       loop_thread: LoopThread) -> None:
    directory = PostgresDirectory(postgres_database, KEYRING, max_connections=1)
    try:
        user = loop_thread.call(directory.create_user(new_user("dropped"), NOW))
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")

        with pytest.raises(DirectoryUnavailable) as raised:
            loop_thread.call(directory.get_user(user.user_id))

        assert raised.value.status == 503 and raised.value.code == "directory_unavailable"
        assert loop_thread.call(directory.get_user(user.user_id)) == user
    finally:
        loop_thread.call(directory.close())


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://mfa:secret@db:5432/mfa", "postgresql://mfa:***@db:5432/mfa"),
    ("postgres://mfa:p%40ss@db/mfa?sslmode=require", "postgres://mfa:***@db/mfa?sslmode=require"),
    ("postgresql://mfa@db:5432/mfa", "postgresql://mfa@db:5432/mfa"),
    ("postgresql://db/mfa", "postgresql://db/mfa"),
])
def test_redacted_hides_only_the_password(url: str, shown: str) -> None:
    assert redacted(url) == shown
