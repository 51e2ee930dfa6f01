"""SqliteDirectory: the UserDirectory on a SQLite file (the embedded default), with versioned migrations.

Its SQL and logic are shared with PostgresDirectory (engine/stores/directory_sql.py): this module
runs them, writes on a writer thread and reads on the caller's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from engine.crypto import Keyring
from engine.stores.migrations import Dialect, Migrated, apply
from engine.stores.sql_directory import SqlDirectory
from engine.stores.sql_ops import Operation, Result, Row, Statement
from engine.stores.sql_schema import MIGRATIONS
from engine.stores.sqlite_writer import SqliteWriter

T = TypeVar("T")

# The migrations' transactions: IMMEDIATE takes the write lock before the version is read, so
# two processes opening a new file together cannot both apply a migration.
DIALECT: Dialect[sqlite3.Connection] = Dialect("?", ("BEGIN IMMEDIATE",), lambda script: _statements(script))


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


def run(db: sqlite3.Connection, operation: Operation[T]) -> T:
    """Drive an operation (engine/stores/sql_ops.py) on `db`, inside the caller's transaction."""
    try:
        step = next(operation)
        while True:
            step = operation.send(_execute(db, step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        operation.close()


def _execute(db: sqlite3.Connection, step: Statement) -> Result:
    text = step.sql if isinstance(step.sql, str) else step.sql.sqlite
    cursor = db.execute(text, step.parameters) if step.rows is None else db.executemany(text, step.rows)
    return Result(cursor.fetchall(), cursor.rowcount)


def migrate(path: str) -> Migrated:
    """Create (if needed) and migrate the database at `path`. Raises SchemaTooNew."""
    db = _connect(path)
    try:
        return apply(db, DIALECT, MIGRATIONS)
    finally:
        db.close()


class SqliteDirectory(SqlDirectory):
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

    backend = "sqlite"

    def __init__(self, path: str, keyring: Keyring, *, on_writer_start: Callable[[], None] | None = None) -> None:
        """Opens (creating if needed) and migrates the database at `path`, or ":memory:".
        Raises SchemaTooNew if a newer engine has migrated the file."""
        super().__init__(keyring)
        self._read_lock = threading.Lock()
        in_memory = path in ("", ":memory:")
        self._db = _connect(path)
        try:
            if not in_memory:
                # WAL: readers do not block the writer, nor the writer the readers.
                self._db.execute("PRAGMA journal_mode = WAL")
            # Explicit, whatever SQLite was built with: a commit is on disk when it returns.
            self._db.execute("PRAGMA synchronous = FULL")
            self.migrated = apply(self._db, DIALECT, MIGRATIONS)
            self._reader = self._db if in_memory else _connect(path, query_only=True)
        except BaseException:
            self._db.close()
            raise
        self._writer = SqliteWriter(self._db, self._read_lock if in_memory else None, on_writer_start)

    def _locked_read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        with self._read_lock:
            return function(self._reader)

    async def _one(self, query: str, *parameters: object) -> Row | None:
        return self._locked_read(lambda db: db.execute(query, parameters).fetchone())  # type: ignore[no-any-return]

    async def _all(self, query: str, *parameters: object) -> Sequence[Row]:
        return self._locked_read(lambda db: db.execute(query, parameters).fetchall())

    async def _read(self, operation: Operation[T]) -> T:
        return self._locked_read(lambda db: run(db, operation))

    async def _write(self, operation: Operation[T]) -> T:
        return await self._writer.run(lambda db: run(db, operation))

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not self._db:
            with self._read_lock:
                self._reader.close()

    # Users


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
