"""The rule admin API (/admin/rules...), through the real ASGI stack, on a rules folder in tmp_path."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.app import create_app
from engine.config import Settings
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import DE_IP, US_IP, admin_auth, auth, evaluate_body, make_settings

SHIPPED = ["10-deny-blocked-users", "20-require-mfa-outside-home", "30-step-up-transactions",
           "40-new-device-or-country", "50-roles-claim"]
DENY_ALL = '"""Deny everyone."""\n\n\ndef rule(user, context):\n    context.deny("maintenance")\n'
LOG_ONLY = '"""Say hello."""\n\n\ndef rule(user, context):\n    context.log("hello from the draft")\n'
# A fixture the shipped rules pass and a deny-all rule fails.
HOME_FIXTURE = """\
- name: a known user at home is let in
  user: {user_id: u-1, logins_count: 3, factors: [otp], known_device_ids: [dev-1], known_countries: [US]}
  context: {ip: 203.0.113.7, device_id: dev-1}
  country: US
  decision: allow
"""


def settings_without_fixtures(tmp_path: Path) -> Settings:
    """The shipped rules without their fixtures: a deny-all rule would fail them (a test below shows it)."""
    settings = make_settings(tmp_path)
    shutil.rmtree(tmp_path / "rules" / "tests")
    (tmp_path / "rules" / "tests").mkdir()
    return settings


@pytest.fixture
def client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with ServiceClient(create_app(settings_without_fixtures(tmp_path)), loop_thread) as service:
        yield service


@pytest.fixture
def shipped(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with ServiceClient(create_app(make_settings(tmp_path)), loop_thread) as service:
        yield service


def call(client: ServiceClient, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return client.request(method, path, json=body, headers=admin_auth() if headers is None else headers)


def decide(client: ServiceClient, ip: str = US_IP) -> dict[str, Any]:
    response = client.post("/v1/evaluate", json=evaluate_body(ip), headers=auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_rejected(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "rules_rejected"
    return body["errors"]  # type: ignore[no-any-return]


def test_the_listing_is_in_pipeline_order_with_hashes_and_the_active_version(client: ServiceClient) -> None:
    body = call(client, "GET", "/admin/rules").json()
    assert [r["id"] for r in body["rules"]] == SHIPPED
    assert [r["order"] for r in body["rules"]] == [10, 20, 30, 40, 50]
    assert all(r["enabled"] and len(r["sha256"]) == 64 for r in body["rules"])
    assert body["rules"][0]["summary"].startswith("Refuse logins of users")
    assert body["version"] == decide(client)["rule_set"]["version"]
    one = call(client, "GET", "/admin/rules/50-roles-claim").json()
    assert one["id"] == "50-roles-claim" and "def rule" in one["source"]


def test_a_put_rule_decides_at_once_and_is_written_to_the_folder(client: ServiceClient, tmp_path: Path) -> None:
    before = call(client, "GET", "/admin/rules").json()["version"]
    response = call(client, "PUT", "/admin/rules/05-maintenance", {"source": DENY_ALL})
    assert response.status_code == 200, response.text
    assert response.json()["previous_version"] == before
    evaluated = decide(client)
    assert evaluated["decision"] == "deny" and evaluated["reason"] == "maintenance"
    assert evaluated["rule_set"]["version"] == response.json()["version"]
    assert (tmp_path / "rules" / "05-maintenance.py").read_text() == DENY_ALL
    assert not [p for p in (tmp_path / "rules").iterdir() if p.name.endswith(".tmp")]


def test_a_disabled_rule_is_listed_but_does_not_run(client: ServiceClient, tmp_path: Path) -> None:
    call(client, "PUT", "/admin/rules/05-maintenance", {"source": DENY_ALL, "enabled": False})
    assert decide(client)["decision"] == "allow"
    listed = {r["id"]: r["enabled"] for r in call(client, "GET", "/admin/rules").json()["rules"]}
    assert listed["05-maintenance"] is False
    assert "05-maintenance" in (tmp_path / "rules" / "disabled.txt").read_text()
    assert call(client, "PATCH", "/admin/rules/05-maintenance", {"enabled": True}).status_code == 200
    assert decide(client)["decision"] == "deny"
    assert not (tmp_path / "rules" / "disabled.txt").exists()


def test_delete_removes_the_rule_and_its_file(client: ServiceClient, tmp_path: Path) -> None:
    response = call(client, "DELETE", "/admin/rules/50-roles-claim")
    assert response.status_code == 200, response.text
    assert decide(client)["claims"] == {}
    assert not (tmp_path / "rules" / "50-roles-claim.py").exists()
    assert call(client, "GET", "/admin/rules/50-roles-claim").status_code == 404
    assert call(client, "DELETE", "/admin/rules/50-roles-claim").status_code == 404


def test_apply_with_replace_makes_exactly_this_set(client: ServiceClient, tmp_path: Path) -> None:
    response = call(client, "POST", "/admin/rules", {"rules": {"10-log": LOG_ONLY}, "replace": True})
    assert response.status_code == 200, response.text
    assert [r["id"] for r in call(client, "GET", "/admin/rules").json()["rules"]] == ["10-log"]
    assert sorted(p.name for p in (tmp_path / "rules").glob("*.py")) == ["10-log.py"]
    merged = call(client, "POST", "/admin/rules", {"rules": {"20-log": LOG_ONLY}})
    assert merged.status_code == 200
    assert [r["id"] for r in call(client, "GET", "/admin/rules").json()["rules"]] == ["10-log", "20-log"]


@pytest.mark.parametrize(("source", "line", "words"), [
    ('"""Broken."""\n\ndef rule(user, context)\n    pass\n', 3, "SyntaxError"),
    ('"""Opens files."""\n\n\ndef rule(user, context):\n    open("/etc/passwd")\n', 5, "open"),
    ('"""Imports."""\nimport os\n\n\ndef rule(user, context):\n    pass\n', 2, "import"),
])
def test_a_broken_rule_is_rejected_with_its_line_and_the_active_set_is_untouched(
        client: ServiceClient, tmp_path: Path, source: str, line: int, words: str) -> None:
    before = call(client, "GET", "/admin/rules").json()
    errors = assert_rejected(call(client, "PUT", "/admin/rules/05-bad", {"source": source}))
    assert [(e["rule"], e["line"]) for e in errors] == [("05-bad", line)]
    assert words.lower() in errors[0]["message"].lower()
    assert call(client, "GET", "/admin/rules").json() == before
    assert not (tmp_path / "rules" / "05-bad.py").exists()
    assert decide(client)["rule_set"]["version"] == before["version"]


def test_every_error_of_every_rule_is_reported(client: ServiceClient) -> None:
    errors = assert_rejected(call(client, "POST", "/admin/rules", {"rules": {
        "05-one": "def rule(user, context):\n    open('x')\n", "06-two": "import os\n"}}))
    assert {e["rule"] for e in errors} == {"05-one", "06-two"}


def test_a_mistake_against_the_rule_api_is_a_422_naming_the_line_and_the_real_name(
        client: ServiceClient, tmp_path: Path) -> None:
    source = ('"""Other-product habits."""\n\n\ndef rule(user, context):\n    client = context.clientID\n'
              '    context.multifactor = {"provider": "any", "allowRememberBrowser": False}\n')
    errors = assert_rejected(call(client, "PUT", "/admin/rules/05-habits", {"source": source}))
    assert errors == [
        {"rule": "05-habits", "line": 5,
         "message": "context.clientID is not part of the rule API; did you mean context.client.client_id?"},
        {"rule": "05-habits", "line": 6,
         "message": "context.multifactor is read-only in the rule API; did you mean context.multifactor.enable(...)?"},
    ]
    assert not (tmp_path / "rules" / "05-habits.py").exists()


def test_a_rule_that_fails_its_fixture_is_rejected(client: ServiceClient, tmp_path: Path) -> None:
    (tmp_path / "rules" / "tests" / "home.yaml").write_text(HOME_FIXTURE)
    errors = assert_rejected(call(client, "PUT", "/admin/rules/05-maintenance", {"source": DENY_ALL}))
    assert errors == [{"rule": "tests/home.yaml", "line": None,
                       "message": "a known user at home is let in: expected decision allow, got deny (maintenance)"}]
    assert decide(client)["decision"] == "allow"


def test_the_shipped_fixtures_guard_the_shipped_rules(shipped: ServiceClient) -> None:
    errors = assert_rejected(call(shipped, "DELETE", "/admin/rules/10-deny-blocked-users"))
    assert {e["rule"] for e in errors} == {"tests/10-deny-blocked-users.yaml"}
    assert call(shipped, "PUT", "/admin/rules/60-log", {"source": LOG_ONLY}).status_code == 200


@pytest.mark.parametrize("path", ["/admin/rules/not-an-id", "/admin/rules/5-x", "/admin/rules/10-Upper",
                                  "/admin/rules/..%2Fx", "/admin/rules/a%2Fb", "/admin/rules/10-a/b"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_a_bad_rule_id_in_the_path_is_a_400_naming_the_id(client: ServiceClient, path: str, method: str) -> None:
    body = {"source": LOG_ONLY} if method == "PUT" else {"enabled": True} if method == "PATCH" else None
    response = call(client, method, path, body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "id"


@pytest.mark.parametrize("rule_id", ["../x", "a/b", "x", "10-A", "10_a", ""])
def test_a_bad_rule_id_in_a_body_is_a_400_naming_rules(client: ServiceClient, rule_id: str) -> None:
    for path in ("/admin/rules", "/admin/rules/dry-run"):
        body: dict[str, Any] = {"rules": {rule_id: LOG_ONLY}}
        if path.endswith("dry-run"):
            body |= evaluate_body(US_IP)
        response = call(client, "POST", path, body)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "rules"


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", "/admin/rules/05-x", {}, "source"),
    ("PUT", "/admin/rules/05-x", {"source": 5}, "source"),
    ("PUT", "/admin/rules/05-x", {"source": LOG_ONLY, "extra": 1}, "extra"),
    ("PUT", "/admin/rules/05-x", {"source": LOG_ONLY, "enabled": "yes"}, "enabled"),
    ("PATCH", "/admin/rules/10-deny-blocked-users", {}, "enabled"),
    ("PATCH", "/admin/rules/10-deny-blocked-users", {"enabled": True, "source": "x"}, "source"),
    ("POST", "/admin/rules", {"rules": []}, "rules"),
    ("POST", "/admin/rules", {"rules": {}, "replace": 1}, "replace"),
    ("POST", "/admin/rules/rollback", {}, "version"),
    ("POST", "/admin/rules/rollback", {"version": "x", "by": "me"}, "by"),
    ("POST", "/admin/rules/dry-run", {"context": {}}, "user"),
    ("POST", "/admin/rules/dry-run", {"user": {"user_id": "u"}, "context": {"ip": "nope"}}, "context.ip"),
])
def test_bodies_are_strict(client: ServiceClient, method: str, path: str, body: Any, field: str) -> None:
    response = call(client, method, path, body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/rules"), ("GET", "/admin/rules/10-deny-blocked-users"), ("PUT", "/admin/rules/05-x"),
    ("PATCH", "/admin/rules/10-deny-blocked-users"), ("DELETE", "/admin/rules/10-deny-blocked-users"),
    ("POST", "/admin/rules"), ("POST", "/admin/rules/reload"), ("GET", "/admin/rules/versions"),
    ("POST", "/admin/rules/rollback"), ("POST", "/admin/rules/dry-run"), ("GET", "/admin/rules/a%2Fb"),
])
@pytest.mark.parametrize("headers", [{}, admin_auth("wrong-token-0123456789abcdef"), auth()])
def test_every_rule_route_needs_the_admin_token(client: ServiceClient, method: str, path: str,
                                                headers: dict[str, str]) -> None:
    response = call(client, method, path, {"source": DENY_ALL}, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert decide(client)["decision"] == "allow"


def test_versions_are_newest_first_and_rollback_is_a_new_activation(client: ServiceClient,
                                                                    tmp_path: Path) -> None:
    first = call(client, "GET", "/admin/rules").json()["version"]
    changed = call(client, "PUT", "/admin/rules/05-maintenance", {"source": DENY_ALL}).json()["version"]
    versions = call(client, "GET", "/admin/rules/versions").json()["versions"]
    assert [(v["version"], v["by"]) for v in versions] == [(changed, "put"), (first, "startup")]
    assert versions[0]["rules"] == ["05-maintenance", *SHIPPED]
    assert versions[0]["activated_at"].endswith("+00:00")
    rolled = call(client, "POST", "/admin/rules/rollback", {"version": first})
    assert rolled.json() == {"version": first, "previous_version": changed}
    assert decide(client)["decision"] == "allow"
    assert not (tmp_path / "rules" / "05-maintenance.py").exists()
    assert call(client, "GET", "/admin/rules/versions").json()["versions"][0]["by"] == "rollback"
    missing = call(client, "POST", "/admin/rules/rollback", {"version": "0123456789abcdef"})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_reload_reads_the_folder_and_refuses_a_broken_edit(client: ServiceClient, tmp_path: Path) -> None:
    (tmp_path / "rules" / "05-maintenance.py").write_text(DENY_ALL)
    reloaded = call(client, "POST", "/admin/rules/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert decide(client)["decision"] == "deny"
    (tmp_path / "rules" / "06-broken.py").write_text("import os\n")
    errors = assert_rejected(call(client, "POST", "/admin/rules/reload"))
    assert errors[0]["rule"] == "06-broken"
    assert call(client, "GET", "/admin/rules").json()["version"] == reloaded.json()["version"]


def test_a_dry_run_decides_with_logs_and_timings_and_activates_nothing(client: ServiceClient,
                                                                       tmp_path: Path) -> None:
    before = call(client, "GET", "/admin/rules").json()
    history = call(client, "GET", "/admin/rules/versions").json()
    body = {"rules": {"05-maintenance": DENY_ALL, "60-log": LOG_ONLY}, **evaluate_body(DE_IP)}
    response = call(client, "POST", "/admin/rules/dry-run", body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["decision"] == "deny" and result["reason"] == "maintenance"
    assert result["rule_set"]["version"] != before["version"]
    assert [t["rule"] for t in result["trace"]] == ["05-maintenance"]  # a deny ends the pipeline
    logged = call(client, "POST", "/admin/rules/dry-run", {"rules": {"60-log": LOG_ONLY}, **evaluate_body()}).json()
    assert [t["rule"] for t in logged["trace"]] == [*SHIPPED, "60-log"]
    assert logged["trace"][-1]["logs"] == ["hello from the draft"]
    assert all(isinstance(t["duration_us"], int) for t in logged["trace"])
    assert call(client, "GET", "/admin/rules").json() == before
    assert call(client, "GET", "/admin/rules/versions").json() == history
    assert not (tmp_path / "rules" / "05-maintenance.py").exists()
    assert decide(client)["decision"] == "allow"
    alone = call(client, "POST", "/admin/rules/dry-run", evaluate_body(DE_IP)).json()
    assert alone["decision"] == "mfa" and alone["rule_set"]["version"] == before["version"]
    broken = call(client, "POST", "/admin/rules/dry-run", {"rules": {"05-x": "import os\n"}, **evaluate_body()})
    assert assert_rejected(broken)[0]["rule"] == "05-x"


def test_a_restart_comes_back_on_the_latest_version_with_its_history(tmp_path: Path,
                                                                     loop_thread: LoopThread) -> None:
    settings = settings_without_fixtures(tmp_path)
    with ServiceClient(create_app(settings), loop_thread) as first:
        call(first, "PUT", "/admin/rules/05-maintenance", {"source": DENY_ALL})
        call(first, "PATCH", "/admin/rules/50-roles-claim", {"enabled": False})
        version = call(first, "GET", "/admin/rules").json()["version"]
    with ServiceClient(create_app(settings), loop_thread) as second:
        assert decide(second)["decision"] == "deny"
        assert decide(second)["rule_set"]["version"] == version
        listed = {r["id"]: r["enabled"] for r in call(second, "GET", "/admin/rules").json()["rules"]}
        assert listed["50-roles-claim"] is False
        versions = call(second, "GET", "/admin/rules/versions").json()["versions"]
        assert [v["by"] for v in versions] == ["patch", "put", "startup"]  # the restart adds nothing
        assert versions[0]["version"] == version
        first_version = versions[-1]["version"]
        assert call(second, "POST", "/admin/rules/rollback", {"version": first_version}).status_code == 200
        assert decide(second)["decision"] == "allow"
    history = json.loads((tmp_path / "rules" / ".versions.json").read_text())
    assert history[-1]["by"] == "rollback" and "def rule" in history[0]["rules"][0]["source"]


def test_with_worker_processes_fixtures_and_dry_runs_run_in_the_pool(tmp_path: Path,
                                                                     loop_thread: LoopThread) -> None:
    with ServiceClient(create_app(make_settings(tmp_path, isolation="process")), loop_thread) as pooled:
        errors = assert_rejected(call(pooled, "PUT", "/admin/rules/60-maintenance", {"source": DENY_ALL}))
        assert {e["rule"] for e in errors} >= {"tests/50-roles-claim.yaml"}
        assert call(pooled, "PUT", "/admin/rules/60-log", {"source": LOG_ONLY}).status_code == 200
        dry = call(pooled, "POST", "/admin/rules/dry-run", {"rules": {"60-maintenance": DENY_ALL}, **evaluate_body()})
        assert dry.json()["decision"] == "deny"
        assert decide(pooled)["trace"][-1]["logs"] == ["hello from the draft"]


@pytest.fixture
def pooled(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with ServiceClient(create_app(make_settings(tmp_path, isolation="process")), loop_thread) as service:
        yield service


def test_two_changes_at_once_both_take_effect_neither_is_lost(pooled: ServiceClient,
                                                               loop_thread: LoopThread) -> None:
    # Each change runs the fixtures on the worker pool (it awaits) under the lock; the second must build on the first.
    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pooled.app),
                                     base_url="http://engine.test") as http:
            return list(await asyncio.gather(*(
                http.put(f"/admin/rules/{rule_id}", json={"source": LOG_ONLY}, headers=admin_auth())
                for rule_id in ("60-first", "61-second"))))

    answers = loop_thread.call(both())

    assert [answer.status_code for answer in answers] == [200, 200]
    listed = [rule["id"] for rule in call(pooled, "GET", "/admin/rules").json()["rules"]]
    assert {"60-first", "61-second"} <= set(listed)
    versions = {answer.json()["version"] for answer in answers} | {answer.json()["previous_version"] for answer in answers}
    assert len(versions) == 3  # a chain: v0 -> v1 -> v2, not two changes of v0


def test_a_rule_near_the_source_size_limit_can_be_uploaded(client: ServiceClient) -> None:
    padding = "# " + "x" * 78 + "\n"
    source = LOG_ONLY + padding * (60_000 // len(padding))
    assert len(source.encode()) > 60_000
    assert call(client, "PUT", "/admin/rules/60-big", {"source": source}).status_code == 200
    too_big = LOG_ONLY + padding * (70_000 // len(padding))
    errors = assert_rejected(call(client, "PUT", "/admin/rules/60-big", {"source": too_big}))
    assert errors[0]["rule"] == "60-big"


@pytest.mark.parametrize("rule_id", ["9" * 5000 + "-x", "10-" + "a" * 65, "1234567890-x"])
def test_a_rule_id_too_long_to_be_one_is_a_400_not_a_500(client: ServiceClient, rule_id: str) -> None:
    source = 'def rule(user, context):\n    pass\n'
    answers = [
        client.request("PUT", f"/admin/rules/{rule_id}", json={"source": source}, headers=admin_auth()),
        client.post("/admin/rules", json={"rules": {rule_id: source}}, headers=admin_auth()),
        client.post("/admin/rules/dry-run", json={"rules": {rule_id: source}, "user": {"user_id": "u-1"},
                                                  "context": {}}, headers=admin_auth()),
    ]
    assert [answer.status_code for answer in answers] == [400, 400, 400]
