"""`mfa-engine demo reset` removes what the README quickstart creates, and nothing else (issue 9, item 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.demo import QUICKSTART_FILES

REPO = Path(__file__).resolve().parents[2]


def run(site: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=site, input=password, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "config.yaml").write_text(
        "rules: {dir: rules}\ndirectory: {url: 'sqlite:///var/mfa.db'}\n"
        "login: {password_time_cost: 1, password_memory_kib: 8192, password_parallelism: 1}\n")
    return tmp_path


def add(site: Path, username: str, *options: str) -> None:
    added = run(site, "users", "add", username, *options, password="correct horse battery staple\n")
    assert added.returncode == 0, added.stderr


def usernames(site: Path) -> list[str]:
    return [line.split()[1] for line in run(site, "users", "list").stdout.splitlines()]


def test_it_removes_the_demo_user_and_the_quickstart_files_and_says_so(site: Path) -> None:
    add(site, "alice", "--email", "alice@example.com", "--phone", "+14155550123")
    add(site, "bob", "--email", "bob@example.com")
    for name in QUICKSTART_FILES:
        (site / name).write_text("{}")
    (site / "var" / "console.log").write_text("SMS to +1*******0123: 123456 is your code\n")

    result = run(site, "demo", "reset")

    assert result.returncode == 0, result.stderr
    assert "removed the demo user alice (usr_" in result.stdout
    assert f"removed {site / 'var' / 'enroll.json'}" in result.stdout
    assert not any((site / name).exists() for name in QUICKSTART_FILES)
    assert (site / "var" / "console.log").exists() and (site / "var" / "mfa.db").exists()
    assert usernames(site) == ["bob"]
    assert f"using config {site / 'config.yaml'} (found in the current directory)" in result.stderr


def test_on_a_fresh_site_it_removes_nothing_and_says_so(site: Path) -> None:
    first = run(site, "demo", "reset")
    assert (first.returncode, first.stdout) == (0, "no demo data to remove\n")
    add(site, "alice", "--email", "alice@example.com")
    assert run(site, "demo", "reset").returncode == 0
    assert run(site, "demo", "reset").stdout == "no demo data to remove\n"


@pytest.mark.parametrize("options", [(), ("--email", "alice@corp.example")], ids=["no-email", "another-email"])
def test_a_user_alice_that_is_not_the_demos_is_refused_and_nothing_is_removed(site: Path,
                                                                               options: tuple[str, ...]) -> None:
    add(site, "alice", *options)
    (site / "var" / "done.json").write_text("{}")
    result = run(site, "demo", "reset", "--config", str(site / "config.yaml"))
    assert result.returncode == 1
    assert "demo reset refused: the user alice (usr_" in result.stderr
    assert result.stdout == ""
    assert usernames(site) == ["alice"] and (site / "var" / "done.json").exists()


def test_a_production_config_is_refused(site: Path) -> None:
    add(site, "alice", "--email", "alice@example.com")
    production = site / "production.yaml"
    production.write_text((site / "config.yaml").read_text() + "environment: production\n"
                          "api: {keys: [a-real-api-key-0123456789abcdef]}\n"
                          "admin: {token: a-real-admin-token-0123456789abcdef}\n"
                          "secrets: {key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=}\n"
                          "tokens: {signing_key: a-real-signing-key-0123456789abcdef-0123456789}\n"
                          "sms: {gateway: webhook, webhook: {url: 'https://sms.example/send', "
                          "secret: a-webhook-secret-0123456789abcdef}}\n")
    result = run(site, "--config", str(production), "demo", "reset")
    assert result.returncode == 1, result.stderr
    assert "demo reset refused: environment is production" in result.stderr
    assert usernames(site) == ["alice"]
