"""Shared fixtures: both sandbox runners behind one synchronous face, and rule payloads."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from engine.rule_host import HOST as RULE_HOST
from engine.rule_host import HOST_PATH as RULE_HOST_PATH
from sandbox.inprocess import InProcessRunner
from sandbox.limits import Limits
from sandbox.pool import WorkerPool
from sandbox.programs import ProgramSet, ProgramSource
from sandbox.runner import RunReport
from sandbox.testing import HOST as SCRATCH_HOST

T = TypeVar("T")

# Short budgets keep hostile tests fast; generous kill grace keeps a loaded CI machine
# from killing a worker that was merely slow to answer.
TEST_LIMITS = Limits(rule_timeout_ms=100, pipeline_timeout_ms=300, kill_grace_ms=400)
_versions = itertools.count()


class LoopThread:
    """An event loop on its own thread, so synchronous tests can drive async pools."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def program_set(sources: Mapping[str, str], meta: Mapping[str, Any] | None = None) -> ProgramSet:
    """A ProgramSet from {name: source}, with a fresh version each call."""
    return ProgramSet(
        f"test-{next(_versions)}",
        tuple(ProgramSource(name, source, {"rule": name, **(meta or {})}) for name, source in sources.items()),
    )


class SyncRunner:
    """Either runner, called synchronously: `run({name: source}, payload) -> RunReport`."""

    def __init__(self, runner: InProcessRunner | WorkerPool, loop: LoopThread) -> None:
        self.runner = runner
        self.isolation = runner.isolation
        self._loop = loop

    def run(self, sources: Mapping[str, str] | ProgramSet, payload: Mapping[str, Any],
            meta: Mapping[str, Any] | None = None) -> RunReport:
        programs = sources if isinstance(sources, ProgramSet) else program_set(sources, meta)
        return self._loop.call(self.runner.run(programs, dict(payload)))


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def _pool(loop_thread: LoopThread, host_path: str) -> Iterator[WorkerPool]:
    pool = WorkerPool(host_path, TEST_LIMITS, size=2)
    loop_thread.call(pool.start())
    yield pool
    loop_thread.call(pool.close())


@pytest.fixture(scope="session")
def scratch_pool(loop_thread: LoopThread) -> Iterator[WorkerPool]:
    yield from _pool(loop_thread, "sandbox.testing:HOST")


@pytest.fixture(scope="session")
def rule_pool(loop_thread: LoopThread) -> Iterator[WorkerPool]:
    yield from _pool(loop_thread, RULE_HOST_PATH)


@pytest.fixture(params=["inprocess", "process"])
def scratch_runner(request: pytest.FixtureRequest, loop_thread: LoopThread) -> SyncRunner:
    """The generic ScratchHost (`rule(data, out)`) on each runner in turn."""
    if request.param == "inprocess":
        return SyncRunner(InProcessRunner(SCRATCH_HOST, TEST_LIMITS), loop_thread)
    return SyncRunner(request.getfixturevalue("scratch_pool"), loop_thread)


@pytest.fixture(params=["inprocess", "process"])
def rule_runner(request: pytest.FixtureRequest, loop_thread: LoopThread) -> SyncRunner:
    """The real rule API (`rule(user, context)`) on each runner in turn."""
    if request.param == "inprocess":
        return SyncRunner(InProcessRunner(RULE_HOST, TEST_LIMITS), loop_thread)
    return SyncRunner(request.getfixturevalue("rule_pool"), loop_thread)


def rule_payload(user: Mapping[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """A payload as engine.signals builds it; override any part of the user or context."""
    base_context: dict[str, Any] = {
        "connection": {"ip": "203.0.113.7", "ip_country": "US",
                       "geo": {"country": "US", "city": "Springfield", "latitude": 39.8,
                               "longitude": -89.6, "accuracy_radius": 50}},
        "request": {"user_agent": "Mozilla/5.0", "device_id": "dev-1", "hostname": "login.example.com"},
        "client": {"client_id": "app-1", "name": "Example App"},
        "action": "login",
        "stats": {"logins_count": 12},
        "risk": {"first_login": False, "new_device": False, "new_country": False},
        "authentication": {"methods": [{"name": "pwd", "timestamp": "2026-11-27T10:00:00+00:00"}]},
        "now": "2026-11-27T10:00:00+00:00",
    }
    base_context.update(context)
    base_user: dict[str, Any] = {
        "user_id": "u-1", "username": "alice", "email": "alice@example.com", "email_verified": True,
        "name": "Alice Example", "phone_number_masked": "+1 *** *** 1234",
        "created_at": "2025-01-01T00:00:00+00:00", "last_login": "2026-11-20T08:00:00+00:00",
        "logins_count": 12, "app_metadata": {"roles": ["staff"], "plan": "pro"},
        "user_metadata": {"locale": "en"}, "factors": ["otp", "sms"], "groups": ["staff"],
    }
    base_user.update(user or {})
    return {"user": base_user, "context": base_context}


@pytest.fixture
def payload() -> dict[str, Any]:
    return rule_payload()
