"""`mfa-engine serve --workers N`: several server processes on one port, sharing Redis and one directory.

Which worker answered a connection is read from /proc: the server side of a connection is a
socket one worker holds, so nothing new is exposed by the service for the test.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.engine.live_process import REPO, RawConnection, ServerProcess, write_config
from tests.engine.login_harness import totp_now
from tests.engine.service import ADMIN_TOKEN, API_KEY

# This test's own database (it deletes the engine's keys after); TEST_WORKERS_REDIS_URL lets
# parallel runs use one each, as TEST_REDIS_URL and TEST_LOGIN_REDIS_URL do for the others.
REDIS_URL = os.environ.get("TEST_WORKERS_REDIS_URL", "redis://127.0.0.1:6379/7")
ALWAYS_MFA = '''"""Every login needs a second factor."""


def rule(user, context):
    context.multifactor.enable()
'''
ALLOW = '''"""Let everyone in."""


def rule(user, context):
    pass
'''
PASSWORD = "correct horse battery staple"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    yield from live_redis(REDIS_URL)


def live_redis(url: str) -> Iterator[redis.Redis]:
    """A client of the Redis database live servers share (fail under REQUIRE_REDIS, else skip
    when it is down); the engines' keys there are deleted afterwards."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (REQUIRE_REDIS=1) but unreachable: {exc}")
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    try:
        yield client
    finally:
        for key in client.scan_iter("mfa:*"):
            client.delete(key)
        client.close()


def children(pid: int) -> list[int]:
    """Every thread's children (a sandbox worker may be started from a thread other than the main one)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def answering_pid(connection: RawConnection, server_port: int, candidates: list[int]) -> int:
    """The process holding the server side of `connection`: found by its socket's inode."""
    client_port = connection.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local_port, remote_port) == (server_port, client_port):
            inode = fields[9]
    assert inode is not None, "the server side of the connection is not in /proc/net/tcp"
    for pid in candidates:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:  # a descriptor closed meanwhile
                continue
    raise AssertionError(f"no worker holds socket {inode}")


def evaluate_body(index: int) -> dict[str, object]:
    return {"user": {"user_id": f"u-{index}", "username": f"user-{index}", "factors": []},
            "context": {"ip": "203.0.113.7", "device_id": "dev-1"}}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_workers_answer_on_one_port_and_share_challenges_and_rule_changes(
        tmp_path: Path, shared_redis: redis.Redis) -> None:
    config = write_config(tmp_path, {"10-always-mfa": ALWAYS_MFA},
                          store={"redis_url": REDIS_URL}, sandbox={"isolation": "process", "workers": 1})
    server = ServerProcess(tmp_path, config, [sys.executable, "-m", "engine", "serve", "--workers", "2", "--config"])
    connections: list[RawConnection] = []
    try:
        server.wait_ready(timeout=30)
        # uvicorn starts its workers with multiprocessing's spawn (its resource tracker is a child too).
        workers = [pid for pid in children(server.process.pid) if "spawn_main" in command_line(pid)]
        assert len(workers) == 2
        # Connections are spread by the kernel: open them until both workers hold some.
        by_worker: dict[int, list[RawConnection]] = {}
        for index in range(64):
            connection = RawConnection(server.port)
            connections.append(connection)
            for request in range(3):  # keep-alive: the same worker answers each request of a connection
                response = connection.request("POST", "/v1/evaluate", AUTH, evaluate_body(index * 3 + request))
                assert response.status == 200, response.body
                assert response.json()["decision"] == "mfa"
            by_worker.setdefault(answering_pid(connection, server.port, workers), []).append(connection)
            if len(by_worker) == 2 and index >= 8:
                break
        assert len(by_worker) == 2, f"one worker answered all {len(connections)} connections"
        first, second = (pool[0] for pool in by_worker.values())

        # Each worker runs its own sandbox pool: one sandbox.worker process below each.
        for pid in by_worker:
            assert ["sandbox.worker" in command_line(child) for child in children(pid)].count(True) == 1

        # A login's challenge created by one worker is verified by the other (Redis holds it).
        secret = base64.b32encode(secrets.token_bytes(20)).decode()
        user = first.request("POST", "/admin/users", ADMIN, {"username": "alice", "password": PASSWORD}).json()
        assert first.request("POST", f"/admin/users/{user['user_id']}/factors", ADMIN,
                             {"type": "otp", "secret": secret}).status == 201
        login = first.request("POST", "/v1/login", AUTH, {"username": "alice", "password": PASSWORD,
                                                          "client_id": "app-1", "context": {"ip": "203.0.113.7", "device_id": "d"}})
        assert login.status == 200 and login.json()["status"] == "mfa_required", login.body
        factor = next(f for f in login.json()["factors"] if f["type"] == "otp")
        verify = second.request("POST", "/v1/mfa/verify", AUTH, {
            "challenge_id": login.json()["challenge_id"], "factor_id": factor["id"],
            "code": totp_now(secret, datetime.now(UTC)), "client_id": "app-1"})
        assert verify.status == 200 and verify.json()["status"] == "authenticated", verify.body

        # A rule change on one worker: both run it within a second, and the shared folder's
        # history records it once (the other worker does not write it again).
        put = first.request("PUT", "/admin/rules/10-always-mfa", ADMIN, {"source": ALLOW})
        assert put.status == 200, put.body
        version = put.json()["version"]
        deadline = time.monotonic() + 2
        while second.request("GET", "/healthz", {}).json()["rule_set"]["version"] != version:
            assert time.monotonic() < deadline, "the second worker did not follow the change"
            time.sleep(0.02)
        time.sleep(0.2)
        history = json.loads((tmp_path / "rules" / ".versions.json").read_text())
        assert [entry["by"] for entry in history if entry["version"] == version] == ["put"]
        assert second.request("POST", "/v1/evaluate", AUTH, evaluate_body(0)).json()["decision"] == "allow"
    finally:
        for connection in connections:
            connection.close()
        server.stop()
    assert server.process.returncode == 0, server.log()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived the server"


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_several_workers_without_redis_are_refused_with_exit_2(tmp_path: Path, how: str) -> None:
    config = write_config(tmp_path)
    command = [sys.executable, "-m", "engine", "serve", "--config", str(config)]
    env = {"PATH": "/usr/bin:/bin"}
    if how == "flag":
        command += ["--workers", "2"]
    else:
        env["MFA_SERVER__WORKERS"] = "2"
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "configuration error: server.workers: 2 processes need store.redis_url" in result.stderr


def test_several_workers_need_a_signing_key_shared_by_all(tmp_path: Path) -> None:
    config = write_config(tmp_path, store={"redis_url": REDIS_URL}, tokens={"signing_key": ""})
    result = subprocess.run([sys.executable, "-m", "engine", "serve", "--workers", "2", "--config", str(config)],
                            cwd=REPO, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "configuration error: server.workers: 2 processes need tokens.signing_key" in result.stderr
