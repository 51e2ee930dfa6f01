"""SqliteWriter: one thread runs a SQLite connection's writes and commits concurrent ones together.

Each commit under `synchronous = FULL` waits for an fsync (milliseconds on a real disk). Run
on the event loop, that wait stopped every request; one transaction per write also paid one
fsync per write. Here the thread takes every pending operation, runs them in one
`BEGIN IMMEDIATE` transaction, each inside its own SAVEPOINT (an operation that raises rolls
back its own writes only), commits once, and only then answers each caller: an awaited write
is on disk when the await returns, and a batch of N concurrent writes costs one fsync.

Errors reach the caller as the operation raised them. When BEGIN or COMMIT fails (a lock held
past busy_timeout by another process, I/O error, disk full), nothing of the batch was written
and every operation that had not failed on its own raises that error. A caller that stops
waiting (a request cancelled at shutdown) does not withdraw its write: once queued it commits
with its batch, as a write run on the caller's thread would have finished. If the thread itself
fails (a bug), it rolls back, closes the connection (no lock left on the file for other
processes) and fails every write queued or to come, rather than leave their callers waiting.
"""

from __future__ import annotations

import asyncio
import copy
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Operation(Generic[T]):
    function: Callable[[sqlite3.Connection], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


@dataclass(frozen=True, slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class SqliteWriter:
    """Owns `db` (autocommit: isolation_level=None) from the first `run` on; `close` closes it.

    `lock`, when given, is held while a batch runs: an in-memory database has no second
    connection to read from, so its readers take the same lock and never see a batch half done.
    """

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock | None = None,
                 on_thread_start: Callable[[], None] | None = None) -> None:
        """`on_thread_start` runs first on the writer thread (app.py: leave a CPU the event-loop
        thread, which starts this one, may be pinned to)."""
        self._db = db
        self._on_thread_start = on_thread_start
        self._batch_lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._queue: queue.SimpleQueue[_Operation[Any] | asyncio.Future[None]] = queue.SimpleQueue()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._batch: list[_Operation[Any] | asyncio.Future[None]] = []  # taken off the queue, not yet answered

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """`function(db)`'s result once its transaction has committed; what it raised, with its
        own writes rolled back. It runs on the writer thread, inside a transaction: it must not
        BEGIN, COMMIT or ROLLBACK itself."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        operation = _Operation(function, loop, future)
        with self._state_lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if self._thread is None:  # started on the first write: a read-only user needs no thread
                self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
                self._thread.start()
            self._queue.put(operation)
        return await future

    async def close(self) -> None:
        """Runs every write queued before it, then closes the connection."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            if self._thread is None:
                self._db.close()
                return
            done = asyncio.get_running_loop().create_future()
            self._queue.put(done)
        await done

    def _serve(self) -> None:
        try:
            if self._on_thread_start is not None:
                self._on_thread_start()
            self._serve_batches()
        except BaseException as exc:  # noqa: BLE001 - a bug here must not leave callers waiting forever
            self._stop_after_failure(exc)

    def _serve_batches(self) -> None:
        while True:
            batch = self._batch = [self._queue.get()]
            while True:  # everything that queued up while the last commit waited on the disk
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            operations = [item for item in batch if isinstance(item, _Operation)]
            if operations:
                with self._batch_lock:
                    self._settle(operations, self._commit(operations))
            if len(operations) < len(batch):  # close() queued its future last
                self._db.close()
                closed = next(item for item in batch if not isinstance(item, _Operation))
                closed.get_loop().call_soon_threadsafe(_resolve, closed, _Outcome())
                return

    def _stop_after_failure(self, exc: BaseException) -> None:
        """The thread is ending on an error of its own: release the database (an open
        transaction would keep the file locked for every other process) and fail every write
        queued or still to come, so no caller waits for a thread that is gone."""
        with self._state_lock:
            self._closed = True
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
        except sqlite3.Error:
            pass
        stopped = sqlite3.OperationalError(f"the directory's writer stopped ({type(exc).__name__})")
        waiting = list(self._batch)
        while True:
            try:
                waiting.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for item in waiting:  # an operation of the batch that was answered already stays answered
            if isinstance(item, _Operation):
                self._settle([item], [_failure(stopped)])
            else:
                item.get_loop().call_soon_threadsafe(_resolve, item, _Outcome())

    def _commit(self, operations: list[_Operation[Any]]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for operation in operations:
                outcome = self._run_one(operation)
                outcomes.append(outcome)
                if not self._db.in_transaction:
                    # SQLite rolled the whole transaction back (I/O error, disk full): the
                    # operations before this one are gone too; those after it start anew.
                    assert outcome.error is not None
                    done = len(outcomes)
                    # An operation that had failed on its own keeps its own error.
                    undone = [o if o.error is not None else _failure(outcome.error) for o in outcomes]
                    return undone + self._commit(operations[done:])
            self._db.execute("COMMIT")
        except Exception as exc:  # BEGIN, SAVEPOINT or COMMIT: nothing of the batch was written
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is broken: what follows will say so to its callers
            return [outcome if outcome.error is not None else _failure(exc) for outcome in outcomes] + \
                [_failure(exc) for _ in operations[len(outcomes):]]
        return outcomes

    def _run_one(self, operation: _Operation[Any]) -> _Outcome:
        self._db.execute("SAVEPOINT operation")
        try:
            value = operation.function(self._db)
        except BaseException as exc:  # noqa: BLE001 - whatever it raised, only its own writes are undone
            if self._db.in_transaction:
                self._db.execute("ROLLBACK TO operation")
                self._db.execute("RELEASE operation")
            return _Outcome(error=exc)
        self._db.execute("RELEASE operation")
        return _Outcome(value)

    @staticmethod
    def _settle(operations: list[_Operation[Any]], outcomes: list[_Outcome]) -> None:
        """One wake-up per event loop for the whole batch, not one per operation."""
        by_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = \
            defaultdict(list)
        for operation, outcome in zip(operations, outcomes, strict=True):
            by_loop[operation.loop].append((operation.future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, settled)
            except RuntimeError:  # that loop has closed: nobody awaits these any more
                pass


def _failure(error: BaseException) -> _Outcome:
    """Each caller raises its own copy: one exception raised in several tasks would gather all
    their tracebacks."""
    return _Outcome(error=copy.copy(error))


def _resolve_all(settled: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, outcome in settled:
        _resolve(future, outcome)


def _resolve(future: asyncio.Future[Any], outcome: _Outcome) -> None:
    if future.done():  # the caller went away (the write stands), or it was answered already
        return
    if outcome.error is not None:
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome.value)
