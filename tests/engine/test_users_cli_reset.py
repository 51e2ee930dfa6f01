"""`mfa-engine users reset-mfa` does what `POST /admin/users/{id}/reset-mfa` does: one implementation
(engine/user_admin.py), so the lockout streak in the shared store is cleared too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.redis_process import RedisProcess, free_port, redis_process  # noqa: F401 - the fixture

FAILURES_KEY = "mfa:failures:{}"  # engine/stores/challenges.py


def users(config: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", "users", "--config", str(config), *args],
                          input=password, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


def write_config(tmp_path: Path, redis_url: str) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"rules: {{dir: rules}}\ndirectory: {{url: 'sqlite:///users.db'}}\nstore: {{redis_url: '{redis_url}'}}\n"
        "login: {password_time_cost: 1, password_memory_kib: 8192, password_parallelism: 1}\n")
    return config


def add_alice(config: Path) -> str:
    added = users(config, "add", "alice", password="s3cret-passphrase\n")
    assert added.returncode == 0, added.stderr
    found = re.search(r"created (usr_\S+)", added.stdout)
    assert found is not None
    return found[1]


@pytest.mark.slow
def test_cli_reset_mfa_clears_a_lockout_in_redis(tmp_path: Path, redis_process: RedisProcess) -> None:  # noqa: F811
    config = write_config(tmp_path, redis_process.url)
    user_id = add_alice(config)
    with redis_process.client() as client:
        # A permanent lock: the streak at MAX_CONSECUTIVE_FAILURES, as 100 wrong codes leave it.
        client.hset(FAILURES_KEY.format(user_id), mapping={"count": 100, "locked_until": 4_000_000_000})
        client.expire(FAILURES_KEY.format(user_id), 3600)
        client.hset(FAILURES_KEY.format("usr_someone-else"), mapping={"count": 3})

        reset = users(config, "reset-mfa", "alice")

        assert reset.returncode == 0, reset.stderr
        assert "removed every factor and recovery code of alice" in reset.stdout
        assert "cleared the lockout streak in the shared store" in reset.stdout
        assert client.exists(FAILURES_KEY.format(user_id)) == 0
        assert client.hget(FAILURES_KEY.format("usr_someone-else"), "count") == b"3"


@pytest.mark.slow
def test_cli_reset_mfa_with_redis_down_fails_before_touching_the_directory(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    add_alice(config)
    down = write_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0")

    reset = users(down, "reset-mfa", "alice")

    assert reset.returncode == 1
    assert "store_unavailable" in reset.stderr
    assert "removed" not in reset.stdout


@pytest.mark.slow
def test_cli_reset_mfa_without_redis_says_there_is_no_shared_lockout_to_clear(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    add_alice(config)

    reset = users(config, "reset-mfa", "alice")

    assert reset.returncode == 0, reset.stderr
    assert "no shared store (store.redis_url is empty)" in reset.stdout
