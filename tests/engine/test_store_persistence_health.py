"""/healthz says whether the challenge store keeps its data across a restart (issue 7, item 2).

Lockout streaks, password and SMS counters live in the store: a Redis without persistence
forgets them on restart, and an operator should be able to see that. `store.persistent` is
true (append-only file or RDB snapshots), false (neither, or the memory store) or "unknown"
(the server refuses to say: CONFIG or INFO disabled by an ACL, or it does not answer);
`store.persistence` names the mode. The existing `kind` and `healthy` fields are unchanged.
Each Redis case runs a redis-server of the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.sms.recording import RecordingSmsGateway
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import START
from tests.engine.redis_process import RedisProcess
from tests.engine.service import make_settings


def healthz_store(tmp_path: Path, loop: LoopThread, redis_url: str = "") -> tuple[int, dict[str, Any]]:
    app = create_app(make_settings(tmp_path, redis_url=redis_url), clock=FrozenClock(START),
                     gateway=RecordingSmsGateway())
    with ServiceClient(app, loop) as client:
        response = client.get("/healthz")
    return response.status_code, response.json()["store"]


@pytest.fixture
def redis_with(tmp_path: Path) -> Iterator[Any]:
    """Starts a redis-server of the test's own with extra arguments; stops it after the test."""
    started: list[RedisProcess] = []

    def start(*args: str) -> RedisProcess:
        server = RedisProcess(tmp_path / f"redis-{len(started)}", args).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def redis_health(tmp_path: Path, loop: LoopThread, server: RedisProcess) -> dict[str, Any]:
    status, store = healthz_store(tmp_path, loop, server.url)
    assert status == 200
    return store


def test_the_memory_store_does_not_persist(tmp_path: Path, loop_thread: LoopThread) -> None:
    status, store = healthz_store(tmp_path, loop_thread)

    assert status == 200
    assert store == {"kind": "memory", "healthy": True, "persistent": False, "persistence": "none"}


@pytest.mark.slow
def test_a_redis_without_persistence_is_reported_as_such(tmp_path: Path, loop_thread: LoopThread,
                                                         redis_with: Any) -> None:
    store = redis_health(tmp_path, loop_thread, redis_with())  # --save "" --appendonly no

    assert store == {"kind": "redis", "healthy": True, "persistent": False, "persistence": "none"}


@pytest.mark.slow
@pytest.mark.parametrize(("args", "mode"), [
    (("--appendonly", "yes", "--appendfsync", "everysec"), "aof"),
    (("--save", "60 1"), "rdb"),
    (("--appendonly", "yes", "--save", "60 1"), "aof"),
])
def test_a_redis_that_writes_to_disk_is_reported_persistent(tmp_path: Path, loop_thread: LoopThread, redis_with: Any,
                                                            args: Sequence[str], mode: str) -> None:
    store = redis_health(tmp_path, loop_thread, redis_with(*args))

    assert store == {"kind": "redis", "healthy": True, "persistent": True, "persistence": mode}


@pytest.mark.slow
def test_an_append_only_redis_is_persistent_even_when_config_is_refused(tmp_path: Path, loop_thread: LoopThread,
                                                                        redis_with: Any) -> None:
    server = redis_with("--appendonly", "yes")
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "default", "-config")

    store = redis_health(tmp_path, loop_thread, server)

    assert (store["persistent"], store["persistence"]) == (True, "aof")


@pytest.mark.slow
@pytest.mark.parametrize("refused", [("-config",), ("-config", "-info")])
def test_a_redis_that_will_not_say_is_reported_unknown(tmp_path: Path, loop_thread: LoopThread, redis_with: Any,
                                                       refused: Sequence[str]) -> None:
    server = redis_with("--save", "60 1")  # persistent, but without CONFIG nobody can tell
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "default", *refused)

    store = redis_health(tmp_path, loop_thread, server)

    assert store == {"kind": "redis", "healthy": True, "persistent": "unknown", "persistence": "unknown"}


@pytest.mark.slow
def test_a_frozen_redis_is_unhealthy_and_its_persistence_unknown(tmp_path: Path, loop_thread: LoopThread,
                                                                 redis_with: Any) -> None:
    server = redis_with("--appendonly", "yes")
    server.freeze()

    status, store = healthz_store(tmp_path, loop_thread, server.url)

    assert status == 503
    assert store == {"kind": "redis", "healthy": False, "persistent": "unknown", "persistence": "unknown"}
