"""Operations on the directory's SQL written once for SQLite and PostgreSQL (sans I/O).

An operation that runs several statements is a generator: it yields each `Statement` and is sent
its `Result`, and returns the operation's value. It does no I/O of its own, so the same function
(its statements, their order, its checks) runs on SQLite's writer thread (engine/stores/sqlite.py,
synchronously) and on a pooled PostgreSQL connection (engine/stores/postgres.py, awaited), each
driver running it inside one transaction. An operation that raises has its writes rolled back.

The SQL is written with SQLite's `?` placeholders; the PostgreSQL driver rewrites them to `%s`.
Where the SQL itself differs, a `Dialects` statement holds both texts side by side, at its use
(both with `?`).
Values are portable: TEXT and INTEGER columns, ISO 8601 UTC times with microseconds (which sort
as time), JSON as TEXT.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Row(Protocol):
    """A result row by position or by column name (sqlite3.Row; the PostgreSQL driver's rows)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Dialects:
    """One statement whose text differs between the backends, both spelled out."""

    sqlite: str
    postgresql: str


@dataclass(frozen=True, slots=True)
class Statement:
    """`sql` with its `parameters`; with `rows`, run once per row (executemany)."""

    sql: str | Dialects
    parameters: Sequence[object] = ()
    rows: Sequence[Sequence[object]] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    rows: Sequence[Row]
    rowcount: int  # rows changed by an INSERT, UPDATE or DELETE

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None


Operation = Generator[Statement, Result, T]


def statement(sql: str | Dialects, *parameters: object) -> Statement:
    return Statement(sql, parameters)


# Parameters: user_id. A row: the user exists. Every write that reads before it writes, or changes
# several rows of one user, begins with it. PostgreSQL: FOR UPDATE holds the user's row to the end
# of the transaction, so such writes about one user run one after another (a limit counted is
# still true when the row it limits is added) and each takes the user's lock before any of the
# user's other rows (no deadlock between them). SQLite: the writer's BEGIN IMMEDIATE already
# holds the whole database.
LOCK_USER = Dialects(sqlite="SELECT 1 FROM users WHERE user_id = ?",
                     postgresql="SELECT 1 FROM users WHERE user_id = ? FOR UPDATE")


def lock_user(user_id: str) -> Operation[bool]:
    """Whether the user exists; on PostgreSQL their row is locked from here on."""
    return (yield statement(LOCK_USER, user_id)).first() is not None


def time_text(value: datetime) -> str:
    """How times are stored: UTC, microseconds always written, so that text order is time order."""
    if value.tzinfo is None:
        raise ValueError("times must be aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def json_text(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)
