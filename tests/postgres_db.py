"""A PostgreSQL database of this test run's own, for the directory's tests on PostgreSQL.

TEST_POSTGRES_URL names a server and a database to connect to for administration (default: the
local server's `test` database, trust auth); the run creates a database of its own beside it,
empties it between tests (`empty`) and drops it at the end. When the server is unreachable the
tests fail under REQUIRE_POSTGRES=1 or REQUIRE_REDIS=1 (CI sets both) and are skipped otherwise.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _administer(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as connection:
        for statement in statements:
            connection.execute(statement)


def _unreachable(exc: Exception) -> None:
    """Fail or skip: the test cannot run without the server."""
    reason = f"PostgreSQL at {urlsplit(TEST_POSTGRES_URL).netloc} is unreachable ({type(exc).__name__}: {exc})"
    if os.environ.get("REQUIRE_POSTGRES") == "1" or os.environ.get("REQUIRE_REDIS") == "1":
        pytest.fail(f"{reason}, and REQUIRE_POSTGRES or REQUIRE_REDIS is 1")
    pytest.skip(f"{reason}; set REQUIRE_POSTGRES=1 to fail instead")


def database_url(name: str) -> str:
    """TEST_POSTGRES_URL's server and credentials, database `name`."""
    return urlunsplit(urlsplit(TEST_POSTGRES_URL)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of an empty database made for this session (dropped after it)."""
    name = f"mfa_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        # Commits not waiting for the WAL's fsync: the tests' speed, not their meaning (a crash
        # of the test server is not what they test).
        _administer(TEST_POSTGRES_URL, f'CREATE DATABASE "{name}"',
                    f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    except psycopg.OperationalError as exc:
        _unreachable(exc)
    try:
        yield database_url(name)
    finally:
        _administer(TEST_POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty(url: str) -> None:
    """No tables at all in `url`'s database: the next directory opened there migrates it anew."""
    _administer(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")


def delete_users(url: str) -> None:
    """No users left in `url`'s (migrated) database, nor any row of theirs (ON DELETE CASCADE: every
    other table hangs off users), nor any audit event (which outlives its user), nor any client
    added through the admin API. Cheaper than TRUNCATE for the few rows a test leaves."""
    _administer(url, "DELETE FROM users", "DELETE FROM audit_events", "DELETE FROM clients")
