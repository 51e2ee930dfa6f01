"""Choosing the directory's backend by `directory.url`: what the config accepts, what /healthz shows of
the directory, `mfa-engine db migrate`, and a PostgreSQL URL's password kept out of what is shown."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import ConfigError, DirectorySettings, load_settings
from engine.sms.recording import RecordingSmsGateway
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import START
from tests.engine.service import make_settings
from tests.postgres_db import empty, postgres_database

__all__ = ["postgres_database"]  # the fixture

REPO = Path(__file__).resolve().parents[2]
SECRET_PASSWORD = "n0t-in-any-0utput"


@pytest.mark.parametrize("url", ["sqlite:///var/mfa.db", "sqlite:///:memory:", "postgresql://mfa@db:5432/mfa",
                                 "postgres://mfa:pw@db/mfa?sslmode=require", "postgresql:///mfa?host=/run/postgresql"])
def test_the_directory_url_takes_a_sqlite_path_or_a_postgresql_database(url: str) -> None:
    assert load_settings(None, environ={"MFA_DIRECTORY__URL": url}).directory.url == url


@pytest.mark.parametrize(("url", "message"), [
    (f"mysql://mfa:{SECRET_PASSWORD}@db/mfa", "must be sqlite:///PATH or postgresql://"),
    (f"postgresql://mfa:{SECRET_PASSWORD}@db:port/mfa", "the port must be a number"),
    (f"postgresql://mfa:{SECRET_PASSWORD}@db:5432/", "a PostgreSQL URL names its database"),
])
def test_a_bad_directory_url_is_refused_without_echoing_it(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(None, environ={"MFA_DIRECTORY__URL": url})
    assert SECRET_PASSWORD not in str(raised.value) and "db" not in str(raised.value).split(":", 1)[1]


def healthz(tmp_path: Path, loop: LoopThread, directory_url: str | None = None) -> tuple[int, dict[str, Any]]:
    settings = make_settings(tmp_path)
    if directory_url is not None:
        settings = dataclasses.replace(settings, directory=DirectorySettings(url=directory_url, timeout_ms=2_000))
    app = create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway())
    with ServiceClient(app, loop) as client:
        response = client.get("/healthz")
    return response.status_code, response.json()


def test_healthz_shows_a_sqlite_directory_and_its_schema_version(tmp_path: Path, loop_thread: LoopThread) -> None:
    status, body = healthz(tmp_path, loop_thread)

    assert status == 200
    assert body["directory"] == {"backend": "sqlite", "healthy": True, "schema_version": 7}
    assert {"status", "rule_set", "sandbox", "store"} <= body.keys()


def test_healthz_shows_a_postgresql_directory_and_its_schema_version(tmp_path: Path, loop_thread: LoopThread,
                                                                     postgres_database: str) -> None:
    empty(postgres_database)
    status, body = healthz(tmp_path, loop_thread, postgres_database)

    assert status == 200
    assert body["directory"] == {"backend": "postgresql", "healthy": True, "schema_version": 7}


def cli(*args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO), **environ})


def test_db_migrate_creates_a_sqlite_directory_then_has_nothing_left_to_do(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("directory: {url: 'sqlite:///data/mfa.db'}\n", encoding="utf-8")

    first = cli("db", "migrate", "--config", "config.yaml", cwd=tmp_path)
    again = cli("db", "migrate", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stdout == "directory (sqlite): schema version 7; migrations applied now: 1, 2, 3, 4, 5, 6, 7\n"
    assert again.stdout == "directory (sqlite): schema version 7; migrations applied now: none\n"
    assert (tmp_path / "data" / "mfa.db").is_file()


def test_db_migrate_on_postgresql_takes_the_url_from_the_environment(tmp_path: Path,
                                                                     postgres_database: str) -> None:
    empty(postgres_database)

    first = cli("db", "migrate", cwd=tmp_path, MFA_DIRECTORY__URL=postgres_database)
    again = cli("db", "migrate", cwd=tmp_path, MFA_DIRECTORY__URL=postgres_database)

    assert first.returncode == 0, first.stderr
    assert first.stdout == "directory (postgresql): schema version 7; migrations applied now: 5, 6, 7\n"
    assert again.stdout == "directory (postgresql): schema version 7; migrations applied now: none\n"


def test_an_unreachable_postgresql_is_an_error_that_shows_the_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://mfa:{SECRET_PASSWORD}@127.0.0.1:1/mfa"
    (tmp_path / "rules").mkdir()

    migrated = cli("db", "migrate", cwd=tmp_path, MFA_DIRECTORY__URL=url, MFA_DIRECTORY__TIMEOUT_MS="2000")
    served = cli("serve", "--port", "1", cwd=tmp_path, MFA_DIRECTORY__URL=url, MFA_DIRECTORY__TIMEOUT_MS="2000")

    for result in (migrated, served):
        assert result.returncode == 1
        assert "directory_unavailable: cannot migrate the directory at postgresql://mfa:***@127.0.0.1:1/mfa" \
            in result.stderr
        assert SECRET_PASSWORD not in result.stdout + result.stderr
