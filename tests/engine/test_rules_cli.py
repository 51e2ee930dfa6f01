"""`mfa-engine rules test` and `mfa-engine evaluate`, run as a user would, and a restarted live server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.engine.live_process import ServerProcess, write_config
from tests.engine.service import ADMIN_TOKEN, API_KEY

REPO = Path(__file__).resolve().parents[2]
DENY_ALL = '"""Deny everyone."""\n\n\ndef rule(user, context):\n    context.deny("maintenance")\n'


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_rules_test_passes_the_shipped_fixtures() -> None:
    result = run("rules", "test", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass  tests/20-require-mfa-outside-home.yaml: outside the US and Canada the authenticator app comes " \
           "first" in result.stdout
    assert " 0 failed" in result.stdout


def test_rules_test_prints_each_failure_and_exits_1(tmp_path: Path) -> None:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    (tmp_path / "rules" / "60-maintenance.py").write_text(DENY_ALL)  # after 10: its denial keeps its reason
    result = run("rules", "test", str(tmp_path / "rules"))
    assert result.returncode == 1
    assert "FAIL  tests/50-roles-claim.yaml: a user with roles is let in as usual: expected decision allow, got " \
           "deny (maintenance)" in result.stdout
    assert "pass  tests/10-deny-blocked-users.yaml: a blocked user is denied even from home" in result.stdout


def test_rules_test_reports_a_broken_rule_like_check(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-bad.py").write_text("import os\n")
    result = run("rules", "test", str(tmp_path / "rules"))
    assert result.returncode == 1  # issue 8: rules test exits 1 on failure, a set that does not compile too
    assert "FAIL  10-bad: Line 1:" in result.stdout


def test_evaluate_prints_the_decision_and_trace_without_a_server(tmp_path: Path) -> None:
    (tmp_path / "user.json").write_text(json.dumps({"user_id": "u-1", "logins_count": 0, "factors": ["otp"]}))
    (tmp_path / "context.json").write_text(json.dumps({"ip": "203.0.113.7", "device_id": "dev-1"}))
    result = run("evaluate", "--rules", "rules", "--user", str(tmp_path / "user.json"),
                 "--context", str(tmp_path / "context.json"))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["decision"] == "mfa"
    assert [t["rule"] for t in body["trace"]][-1] == "50-roles-claim"
    assert body["trace"][3]["logs"] == ["risk signals: first login"]


def test_evaluate_refuses_a_user_file_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "user.json").write_text("[1]")
    result = run("evaluate", "--rules", "rules", "--user", str(tmp_path / "user.json"))
    assert result.returncode == 2
    assert "must be a JSON object" in result.stderr


def test_an_uploaded_rule_decides_after_the_server_restarts(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"user": {"user_id": "u-1", "logins_count": 3}, "context": {"ip": "203.0.113.7"}}
    server = ServerProcess(tmp_path, config)
    try:
        server.wait_ready()
        uploaded = httpx.put(f"{server.url}/admin/rules/05-maintenance", json={"source": DENY_ALL}, headers=admin)
        assert uploaded.status_code == 200, uploaded.text
    finally:
        server.stop()
    restarted = ServerProcess(tmp_path, config)
    try:
        restarted.wait_ready()
        answer = httpx.post(f"{restarted.url}/v1/evaluate", json=body,
                            headers={"Authorization": f"Bearer {API_KEY}"}).json()
        assert (answer["decision"], answer["reason"]) == ("deny", "maintenance")
        assert answer["rule_set"]["version"] == uploaded.json()["version"]
        versions = httpx.get(f"{restarted.url}/admin/rules/versions", headers=admin).json()["versions"]
        assert [v["by"] for v in versions] == ["put", "startup"]
    finally:
        restarted.stop()
