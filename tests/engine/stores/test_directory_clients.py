"""The hosted pages' clients added through the admin API (engine/stores/clients.py), on both directory
backends: created, replaced (keeping when they were created), read, listed by id, deleted, refused
when the pages could not serve them, shared between directories on one database, and added to a
database of schema version 6 by migration 7."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import timedelta

import psycopg
import pytest

from engine.stores import migrations, postgres, postgres_schema, sql_schema, sqlite
from engine.stores.directory import ClientRecord
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import DirectoryBackend, Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture
from tests.engine.stores.test_directory import NOW

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures

CALLBACK = "https://app.example.com/callback"
LATER = NOW + timedelta(minutes=5)


def test_a_client_is_created_then_replaced_keeping_when_it_was_created(directory: SqlDirectory, run_sync: Run) -> None:
    created, was_new = run_sync(directory.put_client("shop", "Shop", [CALLBACK], False, NOW))
    assert was_new is True
    assert created == ClientRecord("shop", "Shop", (CALLBACK,), False, NOW, NOW)

    replaced, was_new = run_sync(directory.put_client("shop", "Shop 2", ["http://127.0.0.1:5173/cb"], True, LATER))
    assert was_new is False
    assert replaced == ClientRecord("shop", "Shop 2", ("http://127.0.0.1:5173/cb",), True, NOW, LATER)
    assert run_sync(directory.get_client("shop")) == replaced


def test_clients_are_listed_by_id_and_deleted_once(directory: SqlDirectory, run_sync: Run) -> None:
    for client_id in ("web", "Admin", "api.v2", "api-v2"):
        run_sync(directory.put_client(client_id, client_id, [CALLBACK], False, NOW))

    assert [client.client_id for client in run_sync(directory.list_clients())] == ["Admin", "api-v2", "api.v2", "web"]
    assert run_sync(directory.delete_client("web")) is True
    assert run_sync(directory.delete_client("web")) is False
    assert run_sync(directory.get_client("web")) is None
    assert run_sync(directory.get_client("nobody")) is None


@pytest.mark.parametrize(("client_id", "uris"), [
    ("bad id", [CALLBACK]), ("-leading", [CALLBACK]), ("shop", []), ("shop", ["http://app.example.com/cb"]),
    ("shop", [CALLBACK + "#fragment"]), ("shop", ["https://user:pw@app.example.com/cb"]),
    ("shop", ["javascript:alert(1)"]), ("shop", ["https://app.example.com/a b"]),
])
def test_what_the_pages_could_not_serve_is_refused_and_nothing_is_stored(directory: SqlDirectory, run_sync: Run,
                                                                         client_id: str, uris: list[str]) -> None:
    with pytest.raises(ValueError):
        run_sync(directory.put_client(client_id, "Shop", uris, False, NOW))
    assert run_sync(directory.list_clients()) == []


def test_a_client_written_through_one_directory_is_read_and_deleted_through_another(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    first, second = directory_backend.directory, directory_backend.open()
    run_sync(first.put_client("shop", "Shop", [CALLBACK], False, NOW))
    assert run_sync(second.get_client("shop")) is not None
    assert run_sync(second.delete_client("shop")) is True
    assert run_sync(first.get_client("shop")) is None


def test_concurrent_puts_of_one_new_id_end_as_one_client(directory_backend: DirectoryBackend, run_sync: Run) -> None:
    directories = [directory_backend.directory, directory_backend.open()]
    barrier = threading.Barrier(8)
    outcomes: list[bool] = []

    def put(index: int) -> None:
        barrier.wait()
        outcomes.append(run_sync(directories[index % 2].put_client("shop", f"Shop {index}", [CALLBACK], False,
                                                                   NOW))[1])

    threads = [threading.Thread(target=put, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False] * 7 + [True]
    assert len(run_sync(directories[0].list_clients())) == 1


def _database_of_version_6(backend: DirectoryBackend) -> None:
    """A database as the engine of schema version 6 left it: its migrations applied by its runner, a
    user and an audit event in it."""
    backend.empty()
    if backend.name == "sqlite":
        with closing(sqlite3.connect(backend.location, isolation_level=None)) as db:
            assert migrations.apply(db, sqlite.DIALECT, sql_schema.MIGRATIONS[:-1]).version == 6
    else:
        with psycopg.connect(backend.location, autocommit=True) as connection:
            assert migrations.apply(connection, postgres.DIALECT, postgres_schema.MIGRATIONS[:-1]).version == 6
    at = NOW.isoformat(timespec="microseconds")
    backend.execute("INSERT INTO users (user_id, username, username_display, password_hash, created_at)"
                    " VALUES ('usr_a', 'alice', 'Alice', 'x', ?)", at)
    backend.execute("INSERT INTO audit_events (at, type, actor, user_id) VALUES (?, 'mfa.reset', 'admin', 'usr_a')",
                    at)


def test_a_database_of_version_6_gains_the_clients_table_and_keeps_what_it_had(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    _database_of_version_6(directory_backend)

    opened = directory_backend.open()

    assert opened.migrated.applied == (7,) and opened.migrated.version == 7  # type: ignore[attr-defined]
    assert run_sync(opened.schema_version()) == 7
    user = run_sync(opened.get_user("usr_a"))
    assert user is not None and user.username == "Alice"
    assert directory_backend.rows("SELECT type FROM audit_events") == [("mfa.reset",)]
    assert run_sync(opened.list_clients()) == []
    assert run_sync(opened.put_client("shop", "Shop", [CALLBACK], False, NOW))[1] is True
