"""The directory on both backends: the `directory_backend` fixture runs each test that takes it on a
SQLite file and on a PostgreSQL database (tests/postgres_db.py), with the directory's coroutines
run on the session's loop thread (a psycopg pool belongs to the loop it opened on)."""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
import pytest

from engine.crypto import Keyring
from engine.stores.postgres import PostgresDirectory
from engine.stores.sql_directory import SqlDirectory
from engine.stores.sqlite import SqliteDirectory
from tests.conftest import LoopThread
from tests.postgres_db import empty, postgres_database, delete_users

__all__ = ["KEYRING", "DirectoryBackend", "Run", "directory", "directory_backend", "postgres_database", "run_sync"]

T = TypeVar("T")
KEYRING = Keyring(bytes(range(32)))


class DirectoryBackend:
    """One backend's database for one test: its directory (opened at first use), more directories
    on the same database (`open`), and raw SQL beside them, written with ? placeholders."""

    def __init__(self, name: str, loop: LoopThread, location: str) -> None:
        self.name = name  # "sqlite" | "postgresql"
        self.location = location  # the SQLite file's path, or the PostgreSQL URL
        self._loop = loop
        self._opened: list[SqlDirectory] = []
        self._directory: SqlDirectory | None = None
        self._schema_touched = False  # by raw SQL or `empty`: the next test must start from nothing

    @property
    def directory(self) -> SqlDirectory:
        if self._directory is None:
            self._directory = self.open()
        return self._directory

    def open(self, keyring: Keyring = KEYRING) -> SqlDirectory:
        """Another directory on this database (another connection or pool), closed after the test."""
        opened: SqlDirectory
        if self.name == "sqlite":
            opened = SqliteDirectory(self.location, keyring)
        else:
            opened = PostgresDirectory(self.location, keyring, max_connections=4)
        self._opened.append(opened)
        return opened

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.call(coroutine)

    def rows(self, sql: str, *parameters: object) -> list[tuple[Any, ...]]:
        """Rows read outside the directory, as stored."""
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.location)) as connection:
                return connection.execute(sql, parameters).fetchall()
        with psycopg.connect(self.location, autocommit=True) as connection:
            return connection.execute(sql.replace("?", "%s"), parameters).fetchall()

    def execute(self, sql: str, *parameters: object) -> None:
        """A write outside the directory (tampering, or a database left by an older engine)."""
        self._schema_touched = True
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.location)) as connection, connection:
                connection.execute(sql, parameters)
            return
        with psycopg.connect(self.location, autocommit=True) as connection:
            connection.execute(sql.replace("?", "%s"), parameters)

    def empty(self) -> None:
        """No tables at all: the next directory opened migrates from nothing."""
        assert not self._opened, "empty the database before opening a directory on it"
        self._schema_touched = True
        if self.name == "sqlite":
            for path in Path(self.location).parent.glob(Path(self.location).name + "*"):
                path.unlink()
        else:
            empty(self.location)

    def close(self) -> None:
        for opened in self._opened:
            self.run(opened.close())
        self._opened.clear()
        if self._schema_touched and self.name == "postgresql":
            empty(self.location)


def _run_on(backend: DirectoryBackend) -> Iterator[DirectoryBackend]:
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def directory_backend(request: pytest.FixtureRequest, tmp_path: Path,
                      loop_thread: LoopThread) -> Iterator[DirectoryBackend]:
    if request.param == "sqlite":
        yield from _run_on(DirectoryBackend("sqlite", loop_thread, str(tmp_path / "directory.db")))
        return
    url: str = request.getfixturevalue("postgres_database")
    try:
        delete_users(url)
    except psycopg.errors.UndefinedTable:
        pass  # the session's first test: the database is still empty
    yield from _run_on(DirectoryBackend("postgresql", loop_thread, url))



@pytest.fixture
def directory(directory_backend: DirectoryBackend) -> SqlDirectory:
    return directory_backend.directory


@pytest.fixture
def run_sync(directory_backend: DirectoryBackend) -> Run:
    """Runs a directory coroutine to completion on the directory's loop; callable from any thread."""
    return directory_backend.run


class Run(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...
