"""Several instances on one Redis (issue 8): two live service processes, each with its own rules
folder and SQLite file, on a redis-server of the test's own; a change on one runs on the other
within a second, rollbacks likewise, and a Redis restarted empty still converges."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.engine.live_process import ServerProcess, write_config
from tests.engine.redis_process import RedisProcess, redis_process  # noqa: F401 - the fixture
from tests.engine.service import admin_auth, auth, evaluate_body

pytestmark = pytest.mark.slow

DENY_ALL = '"""Deny everyone."""\n\n\ndef rule(user, context):\n    context.deny("maintenance")\n'
LOG_ONLY = '"""Say hello."""\n\n\ndef rule(user, context):\n    context.log("hello")\n'
SYNC_SECONDS = 1.0


def start_instance(tmp_path: Path, name: str, redis_url: str, rules: dict[str, str] | None = None) -> ServerProcess:
    home = tmp_path / name
    home.mkdir()
    server = ServerProcess(home, write_config(home, rules, store={"redis_url": redis_url}))
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def instances(tmp_path: Path, redis_process: RedisProcess) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with contextlib.ExitStack() as stack:
        first = start_instance(tmp_path, "a", redis_process.url)
        stack.callback(first.stop)
        second = start_instance(tmp_path, "b", redis_process.url)
        stack.callback(second.stop)
        yield first, second


def within(seconds: float, check: Callable[[], bool]) -> float:
    """Seconds until `check()` holds; fails the test if it does not within `seconds`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.01)
    return time.monotonic() - started


def decision(server: ServerProcess) -> tuple[str, str]:
    answer = httpx.post(server.url + "/v1/evaluate", json=evaluate_body(), headers=auth(), timeout=5).json()
    return answer["decision"], answer["rule_set"]["version"]


def admin(server: ServerProcess, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=admin_auth(), timeout=5)


def put_deny_all(server: ServerProcess) -> str:
    response = admin(server, "PUT", "/admin/rules/20-deny-all", {"source": DENY_ALL})
    assert response.status_code == 200, response.text
    return str(response.json()["version"])


def test_both_instances_start_on_one_version_and_show_it(
        instances: tuple[ServerProcess, ServerProcess], redis_process: RedisProcess) -> None:
    first, second = instances
    healths = [httpx.get(server.url + "/healthz").json()["rule_set"] for server in instances]
    with redis_process.client() as client:
        shared = client.hget("mfa:rules:active", "version")
    assert shared is not None  # the first instance seeded the empty Redis from its folder
    for health in healths:
        assert health["sync"] == {"kind": "redis", "shared_version": shared.decode(), "in_sync": True}
        assert health["version"] == shared.decode()
    listing = admin(second, "GET", "/admin/rules").json()
    assert listing["version"] == shared.decode() and listing["sync"]["in_sync"] is True


def test_a_rule_uploaded_on_one_instance_decides_on_the_other_within_a_second(
        instances: tuple[ServerProcess, ServerProcess], tmp_path: Path) -> None:
    first, second = instances
    version = put_deny_all(first)
    within(SYNC_SECONDS, lambda: decision(second) == ("deny", version))
    assert (tmp_path / "b" / "rules" / "20-deny-all.py").read_text(encoding="utf-8") == DENY_ALL
    listing = admin(second, "GET", "/admin/rules").json()
    assert listing["version"] == version and listing["sync"]["shared_version"] == version
    assert [entry["by"] for entry in admin(second, "GET", "/admin/rules/versions").json()["versions"]][0] == "sync"


def test_a_rollback_on_one_instance_runs_on_the_other_within_a_second(
        instances: tuple[ServerProcess, ServerProcess], tmp_path: Path) -> None:
    first, second = instances
    original = decision(first)[1]
    version = put_deny_all(first)
    within(SYNC_SECONDS, lambda: decision(second)[1] == version)
    response = admin(first, "POST", "/admin/rules/rollback", {"version": original})
    assert response.status_code == 200 and response.json()["version"] == original
    within(SYNC_SECONDS, lambda: decision(second) == ("allow", original))
    assert not (tmp_path / "b" / "rules" / "20-deny-all.py").exists()


def test_a_change_based_on_an_old_version_is_a_conflict_not_a_lost_update(
        instances: tuple[ServerProcess, ServerProcess], redis_process: RedisProcess) -> None:
    first, second = instances
    version = put_deny_all(first)
    with redis_process.client() as client:  # as if the second had not yet heard of the change
        client.hset("mfa:rules:active", "version", "0" * 16)
    response = admin(second, "PUT", "/admin/rules/30-log", {"source": LOG_ONLY})
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert decision(second)[1] == version


def test_while_redis_is_down_instances_serve_and_refuse_changes_then_converge_on_an_empty_redis(
        instances: tuple[ServerProcess, ServerProcess], redis_process: RedisProcess) -> None:
    first, second = instances
    version = put_deny_all(first)
    within(SYNC_SECONDS, lambda: decision(second)[1] == version)
    port = redis_process.port
    redis_process.close()
    refused = admin(second, "PUT", "/admin/rules/30-log", {"source": LOG_ONLY})
    assert refused.status_code == 503 and refused.json()["error"] == "store_unavailable"
    assert decision(first) == ("deny", version) and decision(second) == ("deny", version)
    within(3.0, lambda: "rules_sync_unavailable" in first.log())  # logged once, not at every check

    redis_process.start(port)  # a new, empty redis-server on the same port

    def reseeded() -> bool:
        with redis_process.client() as client:
            return client.hget("mfa:rules:active", "version") == version.encode()
    within(3.0, reseeded)
    changed = admin(second, "PUT", "/admin/rules/30-log", {"source": LOG_ONLY})
    assert changed.status_code == 200, changed.text
    within(SYNC_SECONDS, lambda: decision(first)[1] == changed.json()["version"])
    assert first.log().count("rules_sync_unavailable") == 1 and "rules_sync_restored" in first.log()


def test_a_flushed_redis_is_seeded_again_and_changes_still_reach_every_instance(
        instances: tuple[ServerProcess, ServerProcess], redis_process: RedisProcess) -> None:
    first, second = instances
    original = decision(first)[1]
    with redis_process.client() as client:
        client.flushall()
    version = put_deny_all(second)  # an empty store accepts a change: it is a seed
    within(SYNC_SECONDS, lambda: decision(first) == ("deny", version))
    redis_process.restart()
    response = admin(second, "POST", "/admin/rules/rollback", {"version": original})
    assert response.status_code == 200, response.text
    within(SYNC_SECONDS, lambda: decision(first) == ("allow", original))


def test_at_startup_the_version_in_redis_wins_over_the_folder(
        instances: tuple[ServerProcess, ServerProcess], redis_process: RedisProcess, tmp_path: Path) -> None:
    first, _ = instances
    version = put_deny_all(first)
    third = start_instance(tmp_path, "c", redis_process.url, {"10-allow": LOG_ONLY, "40-extra": LOG_ONLY})
    try:
        assert httpx.get(third.url + "/healthz").json()["rule_set"]["version"] == version  # before serving
        assert decision(third) == ("deny", version)
        assert not (tmp_path / "c" / "rules" / "40-extra.py").exists()
        assert (tmp_path / "c" / "rules" / "20-deny-all.py").is_file()
    finally:
        third.stop()


def test_a_follower_does_not_rerun_fixtures_the_publisher_ran(
        instances: tuple[ServerProcess, ServerProcess], tmp_path: Path) -> None:
    # The second instance's folder holds a fixture the change fails; the first has none. The
    # publisher's checks decide for the fleet: a follower that refused would split it.
    first, second = instances
    (tmp_path / "b" / "rules" / "tests").mkdir()
    (tmp_path / "b" / "rules" / "tests" / "everyone.yaml").write_text(
        "- name: everyone may log in\n  user: {user_id: u-1}\n  context: {ip: 203.0.113.7}\n  decision: allow\n",
        encoding="utf-8")
    version = put_deny_all(first)
    within(SYNC_SECONDS, lambda: decision(second) == ("deny", version))
    refused = admin(second, "PUT", "/admin/rules/30-log", {"source": LOG_ONLY})  # its own changes: checked
    assert refused.status_code == 422 and "everyone may log in" in refused.text


def test_a_shared_set_that_does_not_compile_here_is_refused_and_shown_out_of_sync(
        instances: tuple[ServerProcess, ServerProcess], redis_process: RedisProcess) -> None:
    first, second = instances
    running = decision(second)[1]
    entry = {"version": "badbadbadbadbad0", "activated_at": "2026-01-01T00:00:00+00:00", "by": "put",
             "rules": [{"id": "10-broken", "enabled": True, "source": "import os\n"}]}
    with redis_process.client() as client:
        client.hset("mfa:rules:active", mapping={"version": entry["version"], "set": orjson.dumps(entry)})
        client.publish("mfa:rules:changed", entry["version"])

    def shown_out_of_sync() -> bool:
        return httpx.get(second.url + "/healthz").json()["rule_set"]["sync"] == {
            "kind": "redis", "shared_version": entry["version"], "in_sync": False}
    within(SYNC_SECONDS, shown_out_of_sync)
    assert decision(second)[1] == running
    assert "rules_sync_rejected version=badbadbadbadbad0" in second.log()


def test_without_redis_an_instance_shows_a_local_rule_set(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, write_config(tmp_path))
    try:
        server.wait_ready()
        assert httpx.get(server.url + "/healthz").json()["rule_set"]["sync"] == {"kind": "local"}
        assert admin(server, "GET", "/admin/rules").json()["sync"] == {"kind": "local"}
        assert put_deny_all(server)
    finally:
        server.stop()
