"""What a PostgreSQL directory shows of its URL, and how long it waits for a lock or a statement
(red-team findings: a `?password=` printed in full; one held row lock emptying the pool)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from engine.errors import DirectoryUnavailable
from engine.stores.postgres import PostgresDirectory, redacted
from tests.conftest import LoopThread
from tests.engine.stores.directories import KEYRING
from tests.engine.stores.test_directory import NOW, new_user
from tests.postgres_db import delete_users, postgres_database  # noqa: F401 - the fixture


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://mfa@db:5432/mfa?password=Sup3rS3cret", "postgresql://mfa@db:5432/mfa?password=***"),
    ("postgresql://mfa@db/mfa?sslmode=require&sslpassword=k3y-pass&PASSWORD=x",
     "postgresql://mfa@db/mfa?sslmode=require&sslpassword=***&PASSWORD=***"),
    ("postgresql://mfa:s3cret@db/mfa?password=other", "postgresql://mfa:***@db/mfa?password=***"),
    # Percent-encoded names are decoded by libpq as by us: still a password.
    ("postgresql://mfa@db/mfa?pass%77ord=hunter2&connect_timeout=5",
     "postgresql://mfa@db/mfa?password=***&connect_timeout=5"),
])
def test_redacted_hides_a_password_given_as_a_parameter(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_an_unreachable_server_does_not_show_a_password_parameter() -> None:
    with pytest.raises(DirectoryUnavailable) as raised:
        PostgresDirectory("postgresql://postgres@127.0.0.1:1/x?password=Sup3rS3cretPW", KEYRING, timeout_seconds=2)
    assert "Sup3rS3cretPW" not in str(raised.value)
    assert "password=***" in str(raised.value)


@pytest.mark.slow
def test_a_row_lock_held_elsewhere_fails_its_waiters_in_time_and_never_empties_the_pool(
        postgres_database: str, loop_thread: LoopThread) -> None:  # noqa: F811
    """A transaction elsewhere holds alice's row (FOR UPDATE) and never ends. Writes about alice
    wait at most the directory's timeout and answer 503; their connections go back to the pool,
    so bob, on the same pool of two, is served all along."""
    try:
        delete_users(postgres_database)
    except psycopg.errors.UndefinedTable:
        pass
    directory = PostgresDirectory(postgres_database, KEYRING, max_connections=2, timeout_seconds=1)
    holder = psycopg.connect(postgres_database)
    try:
        alice = loop_thread.call(directory.create_user(new_user("alice"), NOW))
        bob = loop_thread.call(directory.create_user(new_user("bob"), NOW))
        holder.execute("SELECT 1 FROM users WHERE user_id = %s FOR UPDATE", (alice.user_id,))  # held: no commit

        failures: list[float] = []

        def write_alice() -> None:
            started = time.monotonic()
            try:
                loop_thread.call(directory.replace_recovery_codes(alice.user_id, ["h1"], NOW))
            except DirectoryUnavailable:
                failures.append(time.monotonic() - started)

        writers = [threading.Thread(target=write_alice) for _ in range(3)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(20)
        assert len(failures) == 3 and max(failures) < 8, failures
        assert loop_thread.call(directory.get_user(bob.user_id)) == bob
        holder.rollback()
        loop_thread.call(directory.replace_recovery_codes(alice.user_id, ["h1"], NOW))  # free again
    finally:
        holder.close()
        loop_thread.call(directory.close())
