"""PostgresDirectory: the UserDirectory on PostgreSQL (psycopg 3, async, a psycopg_pool pool), for several
instances sharing one directory.

The SQL and logic are SqliteDirectory's (engine/stores/sql_directory.py, directory_sql.py); this
module runs them. Each write is one transaction on one pooled connection (READ COMMITTED), its
single-statement checks atomic as on SQLite (an UPDATE ... WHERE used_at IS NULL waits for a
concurrent one on the same row, then finds it changed), and writes that count or read before
they write hold the user's row (SELECT ... FOR UPDATE: sql_ops.lock_user). Reads run outside a
transaction (autocommit), one round trip each.

The URL's password is a secret: it never appears in a log line or an error this module raises
(`redacted`). An unreachable server, or none within `timeout_seconds`, is DirectoryUnavailable
(503); migrations run when the directory is built, before the service answers anything.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine.crypto import Keyring
from engine.errors import DirectoryUnavailable
from engine.stores.migrations import Dialect, Migrated, apply
from engine.stores.postgres_schema import MIGRATIONS
from engine.stores.sql_directory import SqlDirectory
from engine.stores.sql_ops import Operation, Result, Row, Statement

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]

SCHEMES = ("postgresql://", "postgres://")
# Held by each migration's transaction: two instances starting together on a new database apply
# each migration once (the number is arbitrary, fixed, and this engine's only advisory lock).
MIGRATION_LOCK = 0x6D66615F6D6967  # "mfa_mig"
DIALECT: Dialect[Connection] = Dialect("%s", ("BEGIN", f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"),
                                       lambda script: (script,))  # a script without parameters runs whole


# Query parameters libpq reads a secret from (a URL may carry `?password=`, not only `user:pass@`).
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def redacted(url: str) -> str:
    """`url` with its passwords (in the user part, and in `password`/`sslpassword` parameters)
    replaced by ***: what may be shown of it."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{netloc[0].partition(':')[0]}:***@{netloc[2]}")
    if parts.query:
        parts = parts._replace(query=urlencode([(name, "***" if name.lower() in SECRET_PARAMETERS else value)
                                                for name, value in _parameters(parts.query)], safe="*"))
    return urlunsplit(parts)


def _parameters(query: str) -> list[tuple[str, str]]:
    """The query's parameters, names and values percent-decoded as libpq reads them
    (`pass%77ord=` is a password)."""
    return parse_qsl(query, keep_blank_values=True)


def _secrets_of(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    return found + [value for name, value in _parameters(parts.query) if name.lower() in SECRET_PARAMETERS and value]


def _scrubbed(message: str, url: str) -> str:
    """An error message with the URL's passwords taken out, should the driver ever echo them."""
    for secret in _secrets_of(url):
        message = message.replace(secret, "***")
    return message


def migrate(url: str, timeout_seconds: float = 5.0) -> Migrated:
    """Migrate the database at `url` (which must exist). Raises DirectoryUnavailable when it cannot
    be reached, SchemaTooNew when a newer engine migrated it."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=_whole_seconds(timeout_seconds)) as db:
            return apply(db, DIALECT, MIGRATIONS)
    except psycopg.Error as exc:
        # from None: the driver's exception (and its chain) stays out of tracebacks and logs.
        raise DirectoryUnavailable(f"cannot migrate the directory at {redacted(url)}: "
                                   f"{_scrubbed(str(exc), url)}") from None


def _session_options(url: str, timeout_seconds: float) -> str:
    """The URL's own `options`, then bounds on every statement and every lock wait: a row lock
    held elsewhere (a stuck transaction, a long FOR UPDATE) or a slow query would otherwise keep
    its pooled connection forever, until the pool is empty and every request waits for it.
    Past the bound the statement fails (QueryCanceled, LockNotAvailable): 503 directory_unavailable."""
    milliseconds = max(1, int(timeout_seconds * 1000))
    own = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    return f"{own} -c statement_timeout={milliseconds} -c lock_timeout={milliseconds}".strip()


def _whole_seconds(seconds: float) -> int:
    return max(2, math.ceil(seconds))  # libpq's connect_timeout: whole seconds, at least 2


class _Row:
    """A row by position or by column name, like sqlite3.Row, so rows decode the same on both."""

    __slots__ = ("_values", "_names")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values, self._names = values, names

    def __getitem__(self, key: int | str, /) -> Any:
        return self._values[key if isinstance(key, int) else self._names[key]]

    def __len__(self) -> int:
        return len(self._values)


def _rows(cursor: Any) -> RowMaker[_Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: _Row(values, names)


_SQL: dict[str, str] = {}  # SQLite's text -> psycopg's, each converted once


def _postgres_sql(step: Statement) -> str:
    """The statement's text with psycopg's placeholders (every text in sql_ops form is written with ?)."""
    text = step.sql if isinstance(step.sql, str) else step.sql.postgresql
    converted = _SQL.get(text)
    if converted is None:
        if "%" in text:  # psycopg would read it as a placeholder
            raise ValueError("a shared statement must not contain '%'")
        converted = _SQL[text] = text.replace("?", "%s")
    return converted


async def run(connection: psycopg.AsyncConnection[Any], operation: Operation[T]) -> T:
    """Drive an operation (engine/stores/sql_ops.py) on `connection`, in the caller's transaction."""
    async with connection.cursor(row_factory=_rows) as cursor:
        try:
            step = next(operation)
            while True:
                step = operation.send(await _execute(cursor, step))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            operation.close()


async def _execute(cursor: psycopg.AsyncCursor[_Row], step: Statement) -> Result:
    text = _postgres_sql(step)
    if step.rows is not None:
        await cursor.executemany(text, step.rows)
        return Result((), cursor.rowcount)
    await cursor.execute(text, step.parameters)
    rows = await cursor.fetchall() if cursor.description is not None else []
    return Result(rows, cursor.rowcount)


class PostgresDirectory(SqlDirectory):
    """The pool opens on first use, on the event loop that uses it; `close()` closes it."""

    backend = "postgresql"

    def __init__(self, url: str, keyring: Keyring, *, max_connections: int = 10,
                 timeout_seconds: float = 5.0) -> None:
        """Migrates the database first. Raises DirectoryUnavailable, SchemaTooNew."""
        super().__init__(keyring)
        self.migrated = migrate(url, timeout_seconds)
        self._url = url
        self._pool = AsyncConnectionPool(
            url, min_size=1, max_size=max_connections, open=False, name="directory", timeout=timeout_seconds,
            kwargs={"autocommit": True, "connect_timeout": _whole_seconds(timeout_seconds),
                    "options": _session_options(url, timeout_seconds)})
        self._opened = False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            if not self._opened:
                await self._pool.open()
                self._opened = True
            async with self._pool.connection() as connection:
                yield connection
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DirectoryUnavailable("the directory is unavailable") from exc

    async def _one(self, query: str, *parameters: object) -> Row | None:
        async with self._connection() as connection:
            cursor = await connection.cursor(row_factory=_rows).execute(_postgres_sql(Statement(query)), parameters)
            return await cursor.fetchone()

    async def _all(self, query: str, *parameters: object) -> Sequence[Row]:
        async with self._connection() as connection:
            cursor = await connection.cursor(row_factory=_rows).execute(_postgres_sql(Statement(query)), parameters)
            return await cursor.fetchall()

    async def _read(self, operation: Operation[T]) -> T:
        async with self._connection() as connection:
            return await run(connection, operation)

    async def _write(self, operation: Operation[T]) -> T:
        async with self._connection() as connection, connection.transaction():
            return await run(connection, operation)

    async def close(self) -> None:
        await self._pool.close()
