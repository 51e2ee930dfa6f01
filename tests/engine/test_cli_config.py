"""Every mfa-engine command finds its config file the same way (--config before or after the
subcommand, else $MFA_CONFIG, else ./config.yaml, else built-in defaults) and says on stderr which
one it read (issue 9, item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHEAP_ARGON2 = "login: {password_time_cost: 1, password_memory_kib: 8192, password_parallelism: 1}\n"
ONLY_RULE = '"""The only rule of this folder."""\n\n\ndef rule(user, context):\n    pass\n'


def run(*args: str, cwd: Path, config_variable: str | None = None,
        password: str = "") -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    if config_variable is not None:
        environ["MFA_CONFIG"] = config_variable
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, input=password, capture_output=True,
                          text=True, timeout=60, env=environ)


def make_config(folder: Path) -> Path:
    """A config whose directory and rules folder live in `folder`, with a user `only-here` in it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my-rules").mkdir()
    (folder / "my-rules" / "10-only-here.py").write_text(ONLY_RULE)
    config = folder / "config.yaml"
    config.write_text("rules: {dir: my-rules}\ndirectory: {url: 'sqlite:///users.db'}\n" + CHEAP_ARGON2)
    added = run("users", "add", "only-here", "--config", str(config), cwd=folder, password="s3cret-passphrase\n")
    assert added.returncode == 0, added.stderr
    return config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return make_config(tmp_path / "site")


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory without a config.yaml."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("args", [
    ["--config", "{config}", "users", "list"],
    ["users", "--config", "{config}", "list"],
    ["users", "list", "--config", "{config}"],
    ["users", "list", "--limit", "5", "--config", "{config}"],
], ids=["before-the-command", "after-the-command", "after-the-subcommand", "among-options"])
def test_users_list_reads_the_config_wherever_the_option_stands(args: list[str], config: Path,
                                                                 elsewhere: Path) -> None:
    result = run(*[arg.format(config=config) for arg in args], cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert " only-here " in result.stdout
    assert f"using config {config}" in result.stderr


def test_users_list_reads_mfa_config(config: Path, elsewhere: Path) -> None:
    result = run("users", "list", cwd=elsewhere, config_variable=str(config))
    assert result.returncode == 0, result.stderr
    assert " only-here " in result.stdout
    assert f"using config {config} (from MFA_CONFIG)" in result.stderr


def test_the_option_wins_over_mfa_config(config: Path, tmp_path: Path, elsewhere: Path) -> None:
    result = run("users", "list", "--config", str(config), cwd=elsewhere,
                 config_variable=str(tmp_path / "missing.yaml"))
    assert result.returncode == 0, result.stderr
    assert f"using config {config} (from --config)" in result.stderr


def test_a_relative_path_is_named_absolute(config: Path) -> None:
    result = run("users", "list", "--config", "config.yaml", cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert f"using config {config} (from --config)" in result.stderr


def test_without_option_or_variable_the_config_in_the_current_directory_is_read(config: Path) -> None:
    result = run("users", "list", cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert " only-here " in result.stdout
    assert f"using config {config} (found in the current directory)" in result.stderr


def test_without_any_config_the_built_in_defaults_are_named(elsewhere: Path) -> None:
    result = run("rules", "check", cwd=elsewhere)
    assert "using built-in defaults (no --config, MFA_CONFIG unset)" in result.stderr
    assert f"no config.yaml in {elsewhere}" in result.stderr


@pytest.mark.parametrize("args", [
    ["rules", "check", "--config", "{config}"],
    ["rules", "--config", "{config}", "check"],
    ["--config", "{config}", "rules", "check"],
    ["rules", "test", "--config", "{config}"],
], ids=["check-after", "check-between", "check-before", "test-after"])
def test_rules_commands_read_the_config_wherever_the_option_stands(args: list[str], config: Path,
                                                                   elsewhere: Path) -> None:
    result = run(*[arg.format(config=config) for arg in args], cwd=elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10-only-here" in result.stdout or "0 passed, 0 failed" in result.stdout
    assert f"using config {config} (from --config)" in result.stderr


def test_rules_check_reads_mfa_config(config: Path, elsewhere: Path) -> None:
    result = run("rules", "check", cwd=elsewhere, config_variable=str(config))
    assert "10-only-here" in result.stdout
    assert f"using config {config} (from MFA_CONFIG)" in result.stderr


def test_evaluate_names_its_config_on_stderr_and_keeps_stdout_json(config: Path, elsewhere: Path) -> None:
    (elsewhere / "user.json").write_text(json.dumps({"user_id": "u-1", "logins_count": 3}))
    result = run("--config", str(config), "evaluate", "--rules", str(config.parent / "my-rules"),
                 "--user", "user.json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "allow"
    assert f"using config {config} (from --config)" in result.stderr


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_serve_reads_the_config_wherever_the_option_stands(before: bool, tmp_path: Path, elsewhere: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("sandbox: {workers: 0}\n")
    args = ["--config", str(broken), "serve"] if before else ["serve", "--config", str(broken)]
    result = run(*args, cwd=elsewhere)
    assert result.returncode == 2
    assert f"using config {broken} (from --config)" in result.stderr
    assert "configuration error: sandbox.workers: must be 1..64" in result.stderr


def test_serve_reads_the_config_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("sandbox: {workers: 0}\n")
    result = run("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert f"using config {tmp_path / 'config.yaml'} (found in the current directory)" in result.stderr


def test_a_missing_config_file_is_an_error_naming_it(tmp_path: Path, elsewhere: Path) -> None:
    result = run("users", "list", "--config", str(tmp_path / "nope.yaml"), cwd=elsewhere)
    assert result.returncode == 2
    assert "cannot read the config file" in result.stderr


def test_geoip_write_demo_reads_the_config_like_every_command(config: Path, tmp_path: Path, elsewhere: Path) -> None:
    missing = run("geoip", "write-demo", str(tmp_path / "a.mmdb"), "--config", str(tmp_path / "nope.yaml"),
                  cwd=elsewhere)
    written = run("geoip", "--config", str(config), "write-demo", str(tmp_path / "b.mmdb"), cwd=elsewhere)

    assert (missing.returncode, (tmp_path / "a.mmdb").exists()) == (2, False)
    assert "cannot read the config file" in missing.stderr
    assert written.returncode == 0 and (tmp_path / "b.mmdb").exists()
    assert f"using config {config}" in written.stderr
