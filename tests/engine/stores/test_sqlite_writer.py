"""SqliteDirectory's writes on the SqliteWriter thread, committed in groups (engine/stores/sqlite_writer.py).

Concurrent writes share one transaction and one fsync, each atomic on its own (a SAVEPOINT):
one that fails or finds its proof spent rolls back alone; a write is committed before its
await returns; reads never wait for a batch; close() runs what was queued. The guarantees of
the directory hold under concurrency on one loop, across threads and across processes.
Real SQLite files.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from engine.stores.directory import FactorProof, UserExists
from engine.stores.sqlite import SqliteDirectory
from engine.stores.sqlite_writer import SqliteWriter
from tests.engine.stores.test_sqlite import KEYRING, NOW, SECRET, new_user, raw_rows, run_sync

ROOT = Path(__file__).resolve().parents[3]
STEP = 59_000_000  # a time step of 2026 (unix seconds // 30)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "directory.db"


@pytest.fixture
def directory(db_path: Path) -> Iterator[SqliteDirectory]:
    opened = SqliteDirectory(str(db_path), KEYRING)
    yield opened
    run_sync(opened.close())


class HeldWriter:
    """A SqliteWriter on a scratch table whose thread is kept busy by a first operation until
    `release()`, so the operations queued meanwhile run as one batch; counts the COMMITs."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("CREATE TABLE items (name TEXT PRIMARY KEY)")
        self.commits = 0
        self.db.set_trace_callback(self._trace)
        self.writer = SqliteWriter(self.db)
        self.started = threading.Event()
        self._gate = threading.Event()

    def _trace(self, statement: str) -> None:
        self.commits += statement == "COMMIT"

    def hold(self, db: sqlite3.Connection) -> str:
        self.started.set()
        self._gate.wait(10)
        db.execute("INSERT INTO items VALUES ('first')")
        return "first"

    def release(self) -> None:
        self._gate.set()


def insert(name: str) -> Callable[[sqlite3.Connection], str]:
    def operation(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO items VALUES (?)", (name,))
        return name
    return operation


def insert_then_fail(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO items VALUES ('half-done')")
    raise ValueError("refused after writing")


async def batch_behind(held: HeldWriter, operations: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """Each operation's result or exception, all queued while the writer was held."""
    first = asyncio.ensure_future(held.writer.run(held.hold))
    await asyncio.get_running_loop().run_in_executor(None, held.started.wait, 10)
    queued = [asyncio.ensure_future(held.writer.run(operation)) for operation in operations]
    await asyncio.sleep(0.05)  # every run() has queued its operation
    commits_before = held.commits
    held.release()
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    assert held.commits - commits_before == 2  # the held operation's, then one for the whole batch
    return results[1:]


def names(path: Path) -> set[str]:
    return {name for (name,) in raw_rows(path, "SELECT name FROM items")}


def test_queued_writes_commit_together_and_a_failing_one_rolls_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    held = HeldWriter(path)

    results = run_sync(batch_behind(held, [insert("a"), insert_then_fail, insert("b"), insert("a"), insert("c")]))
    run_sync(held.writer.close())

    assert results[0] == "a" and results[2] == "b" and results[4] == "c"
    assert isinstance(results[1], ValueError) and str(results[1]) == "refused after writing"
    assert isinstance(results[3], sqlite3.IntegrityError)  # the duplicate, as SQLite raised it
    assert names(path) == {"first", "a", "b", "c"}  # no 'half-done'


def test_a_batch_that_cannot_begin_fails_each_of_its_writes_and_the_writer_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    held = HeldWriter(path)
    held.db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(path, isolation_level=None)

    async def story() -> tuple[list[Any], str]:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past busy_timeout
        failed = await asyncio.gather(*(held.writer.run(insert(name)) for name in ("a", "b")),
                                      return_exceptions=True)
        other.execute("ROLLBACK")
        return failed, await held.writer.run(insert("later"))

    failed, later = run_sync(story())
    run_sync(held.writer.close())
    other.close()

    assert [type(error) for error in failed] == [sqlite3.OperationalError] * 2
    assert all("locked" in str(error) for error in failed)
    assert failed[0] is not failed[1]  # each caller raises its own copy
    assert later == "later"
    assert names(path) == {"later"}


def test_close_runs_the_writes_queued_before_it_and_refuses_later_ones(tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    held = HeldWriter(path)

    async def story() -> list[Any]:
        first = asyncio.ensure_future(held.writer.run(held.hold))
        await asyncio.get_running_loop().run_in_executor(None, held.started.wait, 10)
        queued = [asyncio.ensure_future(held.writer.run(insert(name))) for name in ("a", "b")]
        await asyncio.sleep(0.05)
        closing_task = asyncio.ensure_future(held.writer.close())
        await asyncio.sleep(0.05)
        held.release()
        await closing_task
        with pytest.raises(sqlite3.ProgrammingError):
            await held.writer.run(insert("late"))
        return await asyncio.gather(first, *queued)

    assert run_sync(story()) == ["first", "a", "b"]
    assert names(path) == {"first", "a", "b"}
    with pytest.raises(sqlite3.ProgrammingError):
        held.db.execute("SELECT 1")  # closed by the writer


def test_twenty_concurrent_spends_of_one_recovery_code_let_exactly_one_through(
    directory: SqliteDirectory, db_path: Path
) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    run_sync(directory.replace_recovery_codes(user.user_id, ["h1", "h2"], NOW))
    proof = FactorProof(recovery_code_hash="h1")

    async def spend_all() -> list[bool]:
        logins = [directory.record_login(user.user_id, NOW, "dev-1", "US", None, proof) for _ in range(10)]
        spends = [directory.spend_proof(user.user_id, None, proof, NOW) for _ in range(10)]
        return list(await asyncio.gather(*logins, *spends))

    results = run_sync(spend_all())

    assert sorted(results) == [False] * 19 + [True]
    assert run_sync(directory.recovery_codes_left(user.user_id)) == 1
    assert raw_rows(db_path, "SELECT logins_count FROM users") == [(1 if results.index(True) < 10 else 0,)]


def test_twenty_concurrent_logins_with_one_totp_step_count_one_login(directory: SqliteDirectory,
                                                                     db_path: Path) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))

    async def log_in_all() -> list[bool]:
        return list(await asyncio.gather(*(
            directory.record_login(user.user_id, NOW, f"dev-{index}", "US", factor.factor_id,
                                   FactorProof(totp_step=STEP)) for index in range(20))))

    assert sorted(run_sync(log_in_all())) == [False] * 19 + [True]
    assert raw_rows(db_path, "SELECT logins_count FROM users") == [(1,)]
    assert raw_rows(db_path, "SELECT COUNT(*) FROM known_devices") == [(1,)]  # the refused ones wrote nothing


def test_one_totp_step_raced_by_two_processes_on_one_file_is_accepted_once(directory: SqliteDirectory,
                                                                           db_path: Path, tmp_path: Path) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import asyncio, os, time
        from engine.stores.directory import FactorProof
        from tests.engine.stores.test_sqlite import KEYRING, NOW
        from engine.stores.sqlite import SqliteDirectory

        async def main():
            directory = SqliteDirectory({str(db_path)!r}, KEYRING)
            print("ready", flush=True)
            while not os.path.exists({str(go)!r}):
                time.sleep(0.001)
            won = await asyncio.gather(*(directory.record_login(
                {user.user_id!r}, NOW, "dev", "US", {factor.factor_id!r}, FactorProof(totp_step={STEP}))
                for _ in range(10)))
            await directory.close()
            print(sum(won))

        asyncio.run(main())
    """)
    processes = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    go.touch()
    wins = [int(process.communicate(timeout=30)[0].strip()) for process in processes]

    assert sum(wins) == 1
    assert raw_rows(db_path, "SELECT logins_count, last_totp_step FROM users JOIN factors USING (user_id)") == \
        [(1, STEP)]


def test_an_awaited_write_is_committed_when_the_await_returns(directory: SqliteDirectory, db_path: Path) -> None:
    async def create_and_look(index: int) -> list[tuple[Any, ...]]:
        user = await directory.create_user(new_user(f"user-{index}"), NOW)
        # Another connection, as another process would read it, right after the await.
        with closing(sqlite3.connect(db_path)) as other:
            return other.execute("SELECT username FROM users WHERE user_id = ?", (user.user_id,)).fetchall()

    async def create_all() -> list[list[tuple[Any, ...]]]:
        return list(await asyncio.gather(*(create_and_look(index) for index in range(20))))

    assert run_sync(create_all()) == [[(f"user-{index}",)] for index in range(20)]
    # synchronous is a setting of each connection: the writer's commits wait for the disk (FULL).
    assert run_sync(directory._writer.run(lambda db: db.execute("PRAGMA synchronous").fetchone()[0])) == 2


def test_a_caller_reads_its_own_writes_and_a_failed_one_left_nothing(directory: SqliteDirectory) -> None:
    async def story() -> None:
        user = await directory.create_user(new_user("alice"), NOW)
        with pytest.raises(UserExists):
            await directory.create_user(new_user("ALICE"), NOW)
        factor = await directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET)
        assert await directory.record_login(user.user_id, NOW, "dev-1", "US", factor.factor_id,
                                            FactorProof(totp_step=STEP)) is True
        stored = await directory.get_factor(factor.factor_id)
        assert stored is not None and stored.last_totp_step == STEP and stored.last_used_at == NOW
        assert (await directory.get_user(user.user_id)) is not None
        assert [found.username for found in await directory.list_users(10, 0)] == ["alice"]

    run_sync(story())


def test_reads_do_not_wait_for_a_batch_on_the_disk(directory: SqliteDirectory) -> None:
    user = run_sync(directory.create_user(new_user("alice"), NOW))
    gate = threading.Event()
    started = threading.Event()

    def slow_write(db: sqlite3.Connection) -> None:
        db.execute("UPDATE users SET name = 'writing' WHERE user_id = ?", (user.user_id,))
        started.set()
        gate.wait(10)

    async def story() -> tuple[str | None, float]:
        writing = asyncio.ensure_future(directory._writer.run(slow_write))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        began = time.monotonic()
        seen = await directory.get_user(user.user_id)
        took = time.monotonic() - began
        gate.set()
        await writing
        assert seen is not None
        return seen.name, took

    name, took = run_sync(story())
    assert name is None  # the batch had not committed: its write is not seen, and not waited for
    assert took < 1


class Interrupt(BaseException):
    """Not an Exception: what a bare `except Exception` in the writer let through."""


def insert_then_interrupt(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO items VALUES ('interrupted')")
    raise Interrupt("stop")


def test_a_write_raising_a_base_exception_rolls_back_alone_and_the_writer_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    held = HeldWriter(path)

    results = run_sync(batch_behind(held, [insert("a"), insert_then_interrupt, insert("b")]))
    later = run_sync(held.writer.run(insert("later")))
    run_sync(held.writer.close())

    assert results[0] == "a" and results[2] == "b" and isinstance(results[1], Interrupt)
    assert later == "later"
    assert names(path) == {"first", "a", "b", "later"}


def test_a_transaction_lost_mid_batch_fails_the_writes_it_undid_and_keeps_the_others_own_errors(
        tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    held = HeldWriter(path)

    def lose_the_transaction(db: sqlite3.Connection) -> None:
        db.execute("ROLLBACK")  # what SQLite itself does on an I/O error or a full disk
        raise sqlite3.OperationalError("disk I/O error")

    results = run_sync(batch_behind(held, [insert("a"), insert_then_fail, lose_the_transaction, insert("b")]))
    run_sync(held.writer.close())

    assert isinstance(results[0], sqlite3.OperationalError) and str(results[0]) == "disk I/O error"
    assert isinstance(results[1], ValueError)  # it had failed on its own: its own error, not the disk's
    assert isinstance(results[2], sqlite3.OperationalError)
    assert results[3] == "b"  # after the loss, in a transaction of its own
    assert names(path) == {"first", "b"}


def test_a_writer_thread_that_fails_releases_the_file_and_fails_every_waiting_write(tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    held = HeldWriter(path)

    def broken_run_one(operation: Any) -> Any:
        raise Interrupt("a bug in the writer itself")

    async def story() -> list[Any]:
        first = asyncio.ensure_future(held.writer.run(held.hold))
        await asyncio.get_running_loop().run_in_executor(None, held.started.wait, 10)
        held.writer._run_one = broken_run_one  # type: ignore[method-assign]
        queued = [asyncio.ensure_future(held.writer.run(insert(name))) for name in ("a", "b")]
        await asyncio.sleep(0.05)
        held.release()
        results = await asyncio.wait_for(asyncio.gather(first, *queued, return_exceptions=True), 5)
        await asyncio.wait_for(held.writer.close(), 5)  # returns: no thread is waited for
        return results

    results = run_sync(story())

    assert results[0] == "first"
    assert all(isinstance(error, sqlite3.OperationalError) and "writer stopped" in str(error)
               for error in results[1:])
    with pytest.raises(sqlite3.ProgrammingError):
        run_sync(held.writer.run(insert("later")))
    with closing(sqlite3.connect(path, isolation_level=None, timeout=0.1)) as other:
        other.execute("BEGIN IMMEDIATE")  # not locked by a transaction left open
        other.execute("ROLLBACK")
    assert names(path) == {"first"}


def test_the_thread_start_hook_runs_on_the_writer_thread(tmp_path: Path) -> None:
    seen: list[str] = []
    db = sqlite3.connect(tmp_path / "items.db", check_same_thread=False, isolation_level=None)
    db.execute("CREATE TABLE items (name TEXT PRIMARY KEY)")
    writer = SqliteWriter(db, on_thread_start=lambda: seen.append(threading.current_thread().name))

    run_sync(writer.run(insert("a")))
    run_sync(writer.run(insert("b")))
    run_sync(writer.close())

    assert seen == ["sqlite-writer"]
