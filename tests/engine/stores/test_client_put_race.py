"""A PUT of a client that meets a concurrent PUT and DELETE of the same id, on PostgreSQL.

Under read committed, `clients.put` can find no row to update, lose its insert to another PUT that
committed meanwhile, and then find no row again because a DELETE committed in between: its
statements are driven here one at a time on a real connection, the other requests' statements
committed on a second connection between them, at exactly those points."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg

from engine.stores import clients, postgres
from engine.stores.sql_ops import Operation, Result
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture
from tests.postgres_db import delete_users

CALLBACK = "https://app.example.com/callback"
AT = "2026-11-30T10:00:00.000000Z"


async def _drive(url: str, operation: Operation[object], between: dict[int, Callable[[psycopg.Connection], None]]) -> object:
    """Run `operation` in one transaction, calling between[n](other connection) after its n-th statement."""
    async with await psycopg.AsyncConnection.connect(url) as ours:
        with psycopg.connect(url, autocommit=True) as other:
            async with ours.cursor(row_factory=postgres._rows) as cursor:
                step, count = next(operation), 0
                try:
                    while True:
                        result: Result = await postgres._execute(cursor, step)
                        count += 1
                        if count in between:
                            between[count](other)
                        step = operation.send(result)
                except StopIteration as done:
                    await ours.commit()
                    return done.value


def _insert(other: psycopg.Connection) -> None:
    other.execute("INSERT INTO clients (client_id, name, redirect_uris, public, created_at, updated_at)"
                  " VALUES ('shop', 'Theirs', %s, 0, %s, %s)", (f'["{CALLBACK}"]', AT, AT))


def _delete(other: psycopg.Connection) -> None:
    other.execute("DELETE FROM clients WHERE client_id = 'shop'")


def test_a_put_that_loses_its_row_to_a_put_then_a_delete_still_stores_it(postgres_database: str) -> None:  # noqa: F811
    postgres.migrate(postgres_database)
    delete_users(postgres_database)
    try:
        # 1: UPDATE finds nothing; another PUT inserts. 2: our INSERT does nothing; a DELETE removes theirs.
        outcome = asyncio.run(_drive(postgres_database, clients.put("shop", "Ours", [CALLBACK], False, AT),
                                     {1: _insert, 2: _delete}))
        assert isinstance(outcome, tuple)
        stored, created = outcome
        assert (stored.name, created) == ("Ours", True)
        with psycopg.connect(postgres_database) as check:
            assert check.execute("SELECT name FROM clients WHERE client_id = 'shop'").fetchall() == [("Ours",)]
    finally:
        delete_users(postgres_database)
