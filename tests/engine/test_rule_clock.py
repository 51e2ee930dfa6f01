"""A clock for rule tests (issue 9, item 3): the dry run, the fixtures and `mfa-engine evaluate` take a
`now` (ISO 8601; naive means UTC), so time-of-day and weekday rules can be tested; /v1/evaluate keeps
the real clock."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import admin_auth, auth, make_settings

REPO = Path(__file__).resolve().parents[2]
# 2026-01-03 is a Saturday, 2026-01-05 a Monday.
OFFICE_HOURS = '''"""Deny at weekends and at night (UTC)."""


def rule(user, context):
    context.log(context.now.isoformat())
    if context.now.weekday() >= 5:
        context.deny("weekend")
    elif context.now.hour < 6:
        context.deny("night")
'''
USER = {"user_id": "u-1", "logins_count": 3}
SERVER_TIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    app = create_app(make_settings(tmp_path, {"10-office-hours": OFFICE_HOURS}), clock=FrozenClock(SERVER_TIME))
    with ServiceClient(app, loop_thread) as service:
        yield service


def dry_run(client: ServiceClient, **fields: Any) -> httpx.Response:
    return client.request("POST", "/admin/rules/dry-run", json={"user": USER, **fields}, headers=admin_auth())


@pytest.mark.parametrize(("now", "decision", "reason", "seen"), [
    ("2026-01-03T12:00:00+00:00", "deny", "weekend", "2026-01-03T12:00:00+00:00"),
    ("2026-01-05T03:00:00Z", "deny", "night", "2026-01-05T03:00:00+00:00"),
    ("2026-01-05T08:00:00+05:00", "deny", "night", "2026-01-05T03:00:00+00:00"),
    ("2026-01-05T03:00:00", "deny", "night", "2026-01-05T03:00:00+00:00"),  # naive: UTC
    ("2026-01-05T09:30:00.250+00:00", "allow", None, "2026-01-05T09:30:00.250000+00:00"),
])
def test_a_dry_run_decides_at_the_given_now(client: ServiceClient, now: str, decision: str, reason: str | None,
                                             seen: str) -> None:
    response = dry_run(client, now=now)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["decision"], body["reason"] if reason else None) == (decision, reason)
    assert body["trace"][0]["logs"] == [seen]


def test_a_dry_run_without_now_runs_on_the_service_clock(client: ServiceClient) -> None:
    body = dry_run(client).json()
    assert body["decision"] == "allow"
    assert body["trace"][0]["logs"] == [SERVER_TIME.isoformat()]


@pytest.mark.parametrize("now", [
    "yesterday", "2026-13-01T00:00:00Z", "", 1767225600, True, ["2026-01-05T03:00:00Z"], {"at": "x"},
    "2026-01-05T03:00:00\n+00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "1899-12-31T23:59:59Z", "2026-01-05T03:00:00Z" + " " * 100,
])
def test_an_invalid_now_is_a_400_naming_the_field(client: ServiceClient, now: Any) -> None:
    response = dry_run(client, now=now)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["error"], body["field"]) == ("invalid_request", "now")


def test_a_null_now_is_the_service_clock(client: ServiceClient) -> None:
    assert dry_run(client, now=None).json()["trace"][0]["logs"] == [SERVER_TIME.isoformat()]


@pytest.mark.parametrize(("body", "field"), [
    ({"user": USER, "now": "2026-01-03T12:00:00Z"}, "now"),
    ({"user": USER, "context": {"now": "2026-01-03T12:00:00Z"}}, "context.now"),
])
def test_v1_evaluate_refuses_a_now_and_keeps_the_real_clock(client: ServiceClient, body: dict[str, Any],
                                                            field: str) -> None:
    refused = client.request("POST", "/v1/evaluate", json=body, headers=auth())
    assert refused.status_code == 400
    assert (refused.json()["error"], refused.json()["field"]) == ("invalid_request", field)
    decided = client.request("POST", "/v1/evaluate", json={"user": USER}, headers=auth()).json()
    assert (decided["decision"], decided["trace"][0]["logs"]) == ("allow", [SERVER_TIME.isoformat()])


def write_fixture(rules: Path, text: str) -> None:
    (rules / "tests").mkdir(parents=True, exist_ok=True)
    (rules / "tests" / "10-office-hours.yaml").write_text(text)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "10-office-hours.py").write_text(OFFICE_HOURS)
    return folder


def test_fixtures_run_at_their_now_quoted_unquoted_naive_or_with_an_offset(rules: Path) -> None:
    write_fixture(rules, """\
- {name: saturday noon, user: {user_id: u-1}, now: "2026-01-03T12:00:00+00:00", decision: deny, reason: weekend}
- {name: monday 3am unquoted, user: {user_id: u-1}, now: 2026-01-05T03:00:00Z, decision: deny, reason: night}
- {name: monday 3am naive, user: {user_id: u-1}, now: "2026-01-05T03:00:00", decision: deny, reason: night}
- {name: monday 3am naive unquoted, user: {user_id: u-1}, now: 2026-01-05 03:00:00, decision: deny, reason: night}
- {name: monday 8am in Karachi, user: {user_id: u-1}, now: "2026-01-05T08:00:00+05:00", decision: deny}
- {name: monday 9am, user: {user_id: u-1}, now: "2026-01-05T09:00:00Z", decision: allow}
""")
    result = run("rules", "test", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed, 0 failed" in result.stdout


@pytest.mark.parametrize("now", ['"yesterday"', "12", '"2026-13-01T00:00:00Z"', "[1]", '"0001-01-01T00:00:00+01:00"'])
def test_a_fixture_with_an_invalid_now_fails_naming_it(rules: Path, now: str) -> None:
    write_fixture(rules, f"- {{name: bad clock, user: {{user_id: u-1}}, now: {now}, decision: allow}}\n")
    result = run("rules", "test", str(rules))
    assert result.returncode == 1
    assert "FAIL  tests/10-office-hours.yaml: bad clock: now must be an ISO 8601 date-time" in result.stdout


def test_a_rule_change_through_the_api_runs_its_fixtures_at_their_now(client: ServiceClient,
                                                                       tmp_path: Path) -> None:
    write_fixture(tmp_path / "rules", "- {name: saturday, user: {user_id: u-1}, now: 2026-01-03T12:00:00Z, "
                                      "decision: allow}\n")
    response = client.request("POST", "/admin/rules/reload", headers=admin_auth())
    assert response.status_code == 422
    assert "expected decision allow, got deny (weekend)" in response.text


def evaluate(rules: Path, *now: str) -> subprocess.CompletedProcess[str]:
    user = rules.parent / "user.json"
    user.write_text(json.dumps(USER))
    return run("evaluate", "--rules", str(rules), "--user", str(user), *now)


@pytest.mark.parametrize(("now", "reason", "seen"), [
    ("2026-01-03T12:00:00+00:00", "weekend", "2026-01-03T12:00:00+00:00"),
    ("2026-01-05T03:00:00", "night", "2026-01-05T03:00:00+00:00"),
    ("2026-01-05T08:00:00+05:00", "night", "2026-01-05T03:00:00+00:00"),
])
def test_evaluate_takes_now(rules: Path, now: str, reason: str, seen: str) -> None:
    result = evaluate(rules, "--now", now)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert (body["decision"], body["reason"], body["trace"][0]["logs"]) == ("deny", reason, [seen])


def test_evaluate_without_now_runs_on_the_real_clock(rules: Path) -> None:
    before = datetime.now(UTC)
    body = json.loads(evaluate(rules).stdout)
    assert before <= datetime.fromisoformat(body["trace"][0]["logs"][0]) <= datetime.now(UTC)


@pytest.mark.parametrize("now", ["yesterday", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_evaluate_refuses_an_invalid_now(rules: Path, now: str) -> None:
    result = evaluate(rules, "--now", now)
    assert result.returncode == 2
    assert "--now: must be an ISO 8601 date-time" in result.stderr
    assert result.stdout == ""
