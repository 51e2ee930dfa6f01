"""The mfa-engine command, run as a user would: a real process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_rules_check_lists_the_example_rules() -> None:
    result = run("rules", "check", "--config", "config.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"checked rules in {REPO / 'rules'}: 5 rules compile")
    assert "20-require-mfa-outside-home  on_error=deny  Require a second factor outside the US and Canada" in result.stdout


def test_rules_check_reports_every_error_as_file_line_message_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-bad.py").write_text("def rule(user, context):\n    return open('/etc/passwd')\n")
    (tmp_path / "rules" / "20-worse.py").write_text("import os\ndef rule(user, context):\n    pass\n")
    (tmp_path / "config.yaml").write_text("rules: {dir: rules}\n")
    result = run("rules", "check", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "10-bad.py:2: name 'open' is not available to rules" in lines
    assert any(line.startswith("20-worse.py:1: ") for line in lines)
    assert f"checked rules in {tmp_path / 'rules'}: " in result.stdout


def test_rules_check_reports_every_mistake_of_every_file_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-geo.py").write_text(
        '"""Geo."""\ndef rule(user, context):\n    context.idToken["https://e.example/c"] = 1\n')
    (tmp_path / "rules" / "Misnamed.py").write_text("def rule(user, context):\n    context.clientID\n")
    (tmp_path / "rules" / "20-habits.py").write_text(
        "def rule(u, ctx):\n    ctx.multifactor.enable(allowRememberBrowser=True)\n"
        "    ctx.multifactor.enable(allowRemember=True)\n    u.multifactor\n")
    result = run("rules", "check", "rules", cwd=tmp_path)
    assert result.returncode == 1
    # Every command also says on stderr which config it read ("using ..."): not an error line.
    assert [line for line in result.stderr.splitlines() if not line.startswith("using ")] == [
        "10-geo.py:3: context.idToken is not part of the rule API; did you mean context.claims?",
        "20-habits.py:3: context.multifactor.enable() has no keyword argument 'allowRemember'; did you mean "
        "allowRememberBrowser?",
        "20-habits.py:4: user.multifactor is not part of the rule API; did you mean user.factors or "
        "context.multifactor?",
        "Misnamed.py: the name must look like NN-name (digits, a dash, lower-case letters, digits, dashes)",
        "Misnamed.py:2: context.clientID is not part of the rule API; did you mean context.client.client_id?",
    ]
    assert result.stdout.startswith(f"checked rules in {tmp_path / 'rules'}: 5 errors in 3 files")


def test_rules_check_names_the_version_the_service_runs(tmp_path: Path) -> None:
    """Disabled rules and the folder's settings are part of the version, as /healthz shows it."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-ok.py").write_text('"""Fine."""\ndef rule(user, context):\n    pass\n')
    (tmp_path / "rules" / "20-off.py").write_text('"""Off."""\ndef rule(user, context):\n    pass\n')
    (tmp_path / "rules" / "disabled.txt").write_text("20-off\n")
    checked = run("rules", "check", "rules", cwd=tmp_path)
    tested = run("rules", "test", "rules", cwd=tmp_path)
    version = re.search(r"\(rule set ([0-9a-f]{16})\)", tested.stdout)
    assert checked.returncode == 0 and version is not None, checked.stderr + tested.stdout
    assert f"2 rules compile (rule set {version.group(1)})" in checked.stdout


def test_rules_check_takes_the_folder_as_an_argument(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "10-ok.py").write_text('"""Fine."""\ndef rule(user, context):\n    pass\n')
    assert run("rules", "check", str(tmp_path / "mine")).returncode == 0
    (tmp_path / "mine" / "20-bad.py").write_text("def rule(user, context):\n    eval('1')\n")
    failed = run("rules", "check", str(tmp_path / "mine"))
    assert (failed.returncode, failed.stderr.splitlines()[0].split(":")[1]) == (1, "2")


def test_rules_test_fails_with_exit_1_when_a_rule_does_not_compile(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-bad.py").write_text("def rule(user, context):\n    return open('x')\n")
    result = run("rules", "test", str(tmp_path / "rules"))
    assert result.returncode == 1
    assert "FAIL" in result.stdout


def test_a_config_error_stops_serve_with_the_dotted_path(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("sandbox: {workers: 0}\n")
    result = run("serve", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 2
    assert "configuration error: sandbox.workers: must be 1..64" in result.stderr


def test_write_demo_writes_a_database_the_engine_can_read(tmp_path: Path) -> None:
    from engine.geo import open_locator

    path = tmp_path / "demo.mmdb"
    assert run("geoip", "write-demo", str(path)).returncode == 0
    locator = open_locator(str(path))
    try:
        assert locator.lookup("8.8.8.8") is None
    finally:
        locator.close()


def test_users_add_list_and_reset_mfa_work_on_the_configured_directory(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "config.yaml").write_text(
        "rules: {dir: rules}\ndirectory: {url: 'sqlite:///users.db'}\n"
        "login: {password_time_cost: 1, password_memory_kib: 8192, password_parallelism: 1}\n")
    config = str(tmp_path / "config.yaml")

    added = subprocess.run([sys.executable, "-m", "engine", "users", "--config", config, "add", "alice",
                            "--email", "alice@example.com"], input="s3cret-passphrase\n", capture_output=True,
                           text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert added.returncode == 0, added.stderr
    assert "created usr_" in added.stdout
    assert "s3cret" not in added.stdout + added.stderr

    again = subprocess.run([sys.executable, "-m", "engine", "users", "--config", config, "add", "ALICE"],
                           input="x\n", capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert again.returncode == 1
    assert "taken" in again.stderr

    listed = run("users", "--config", config, "list")
    assert "alice  alice@example.com  logins=0" in listed.stdout

    reset = run("users", "--config", config, "reset-mfa", "alice")
    assert reset.returncode == 0
    assert "removed every factor and recovery code of alice" in reset.stdout
    assert run("users", "--config", config, "reset-mfa", "nobody").returncode == 1
