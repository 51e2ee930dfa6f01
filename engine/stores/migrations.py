"""Applying a backend's numbered migrations: in order, each in its own transaction that no other
process can run at the same time, each recorded in the table schema_migrations (version,
applied_at). Run by each directory when it opens and by `mfa-engine db migrate`.

The lists themselves are per backend (engine/stores/sql_schema.py for SQLite,
engine/stores/postgres_schema.py for PostgreSQL); a version number means the same tables on
both. A released migration is never edited, only followed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from engine.stores.directory import SchemaTooNew
from engine.stores.sql_ops import time_text

CREATE_BOOKKEEPING = ("CREATE TABLE IF NOT EXISTS schema_migrations"
                      " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...


class MigrationConnection(Protocol):
    """A connection in autocommit mode (sqlite3 with isolation_level=None, psycopg's
    autocommit=True): the runner says where each transaction begins and ends."""

    def execute(self, sql: str, parameters: Sequence[Any], /) -> _Cursor: ...


C = TypeVar("C", bound=MigrationConnection)


@dataclass(frozen=True, slots=True)
class Dialect(Generic[C]):
    placeholder: str  # "?" or "%s"
    begin: tuple[str, ...]  # opens a transaction that excludes every other migrating process
    statements: Callable[[str], Iterable[str]]  # a migration's script, as the driver can execute it


Seed = Callable[[C], None]


@dataclass(frozen=True, slots=True)
class Migrated:
    applied: tuple[int, ...]  # by this run, in order
    version: int  # of the database now


def apply(db: C, dialect: Dialect[C], migrations: Sequence[tuple[int, str, Seed[C] | None]]) -> Migrated:
    """Raises SchemaTooNew, with nothing changed, if a newer engine has migrated the database."""
    known = migrations[-1][0]
    with _transaction(db, dialect):
        db.execute(CREATE_BOOKKEEPING, ())
        newest = _newest(db)
    if newest > known:
        raise SchemaTooNew(f"the database schema is version {newest}; this engine knows up to {known}")
    applied = []
    for version, script, seed in migrations:
        # Checked again inside the locked transaction: another process may have applied it since.
        with _transaction(db, dialect):
            if db.execute(f"SELECT 1 FROM schema_migrations WHERE version = {dialect.placeholder}",
                          (version,)).fetchone():
                continue
            for each in dialect.statements(script):
                db.execute(each, ())
            if seed is not None:
                seed(db)
            # Bookkeeping for operators, not engine logic: the wall clock is the right time here.
            db.execute(f"INSERT INTO schema_migrations (version, applied_at) VALUES ({dialect.placeholder},"
                       f" {dialect.placeholder})", (version, time_text(datetime.now(UTC))))
            applied.append(version)
    return Migrated(tuple(applied), max(newest, known))


def _newest(db: MigrationConnection) -> int:
    (newest,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", ()).fetchone()
    return int(newest)


@contextmanager
def _transaction(db: C, dialect: Dialect[C]) -> Iterator[None]:
    """The dialect's BEGIN (with its lock) ... COMMIT, or ROLLBACK on any error."""
    for each in dialect.begin:
        db.execute(each, ())
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK", ())
        raise
    db.execute("COMMIT", ())
