"""Rule settings and secrets (issue 9): the admin API, what rules read, versions, storage at rest.

The leak test (a secret absent from every answer, trace, record and log) is in
tests/engine/test_no_secrets_in_logs.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.app import create_app
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import US_IP, admin_auth, auth, evaluate_body, make_settings

SECRET = "hunter2-Tr0ub4dor-settings-secret"
READS = '''"""Reads the settings."""


def rule(user, context):
    context.claims["https://example.com/region"] = context.settings["region"]
    context.claims["https://example.com/limits"] = context.settings.get("limits", "none")
    context.claims["https://example.com/missing"] = context.settings.get("nope", "default")
    context.claims["https://example.com/has"] = "region" in context.settings
    context.claims["https://example.com/keys"] = sorted(context.settings.keys())
    context.claims["https://example.com/count"] = len(context.settings)
    context.claims["https://example.com/iterated"] = sorted(key for key in context.settings)
    context.claims["https://example.com/secret_length"] = len(context.settings.get("api_key", ""))
'''
MISSING = '"""Reads a key nobody set."""\n\n\ndef rule(user, context):\n    context.settings["absent"]\n'
CATCHES = '''"""A missing key is a KeyError, like a dict."""


def rule(user, context):
    try:
        context.settings["absent"]
    except KeyError:
        context.claims["https://example.com/caught"] = True
'''
WRITES = '"""Tries to write."""\n\n\ndef rule(user, context):\n    context.settings["region"] = "x"\n'
REPLACES = '"""Tries to replace."""\n\n\ndef rule(user, context):\n    context.settings = {}\n'


@pytest.fixture
def client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with ServiceClient(create_app(make_settings(tmp_path, {"50-reads": READS})), loop_thread) as service:
        yield service


def call(client: ServiceClient, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return client.request(method, path, json=body, headers=admin_auth() if headers is None else headers)


def evaluate(client: ServiceClient) -> dict[str, Any]:
    response = client.post("/v1/evaluate", json=evaluate_body(US_IP), headers=auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def put(client: ServiceClient, key: str, value: Any, secret: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"value": value} if secret is None else {"value": value, "secret": secret}
    response = call(client, "PUT", f"/admin/rules/settings/{key}", body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_put_list_and_delete_a_setting_each_make_a_new_version(client: ServiceClient) -> None:
    first = call(client, "GET", "/admin/rules").json()["version"]
    assert call(client, "GET", "/admin/rules/settings").json() == {"settings": [], "version": first}
    answer = put(client, "region", "eu-west")
    assert answer["key"] == "region" and answer["secret"] is False
    assert answer["previous_version"] == first and answer["version"] != first
    secret = put(client, "api_key", SECRET, secret=True)
    assert secret["secret"] is True and SECRET not in json.dumps(secret)
    listing = call(client, "GET", "/admin/rules/settings").json()
    assert listing["version"] == secret["version"] == call(client, "GET", "/admin/rules").json()["version"]
    assert [(s["key"], s["secret"], s.get("value", "<absent>")) for s in listing["settings"]] == [
        ("api_key", True, "<absent>"), ("region", False, "eu-west")]
    assert all(s["updated_at"].endswith("+00:00") for s in listing["settings"])
    one = call(client, "GET", "/admin/rules/settings/api_key").json()
    assert one == {"key": "api_key", "secret": True, "updated_at": listing["settings"][0]["updated_at"]}
    assert call(client, "GET", "/admin/rules/settings/region").json()["value"] == "eu-west"
    deleted = call(client, "DELETE", "/admin/rules/settings/region")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["previous_version"] == secret["version"]
    assert [s["key"] for s in call(client, "GET", "/admin/rules/settings").json()["settings"]] == ["api_key"]
    missing = call(client, "DELETE", "/admin/rules/settings/region")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert call(client, "GET", "/admin/rules/settings/region").status_code == 404


def test_rules_read_settings_like_a_read_only_dict(client: ServiceClient) -> None:
    put(client, "region", "eu-west")
    put(client, "limits", {"per_day": 5, "tiers": ["a", "b"], "on": True, "none": None})
    put(client, "api_key", SECRET, secret=True)
    claims = evaluate(client)["claims"]
    assert claims["https://example.com/region"] == "eu-west"
    assert claims["https://example.com/limits"] == {"per_day": 5, "tiers": ["a", "b"], "on": True, "none": None}
    assert claims["https://example.com/missing"] == "default"
    assert claims["https://example.com/has"] is True
    assert claims["https://example.com/keys"] == ["api_key", "limits", "region"]
    assert claims["https://example.com/count"] == 3
    assert claims["https://example.com/iterated"] == ["api_key", "limits", "region"]
    assert claims["https://example.com/secret_length"] == len(SECRET)


def test_a_missing_key_raises_key_error_and_writes_are_refused(client: ServiceClient) -> None:
    put(client, "region", "eu-west")
    caught = call(client, "POST", "/admin/rules/dry-run", {"rules": {"60-catches": CATCHES}, **evaluate_body()})
    assert caught.json()["claims"]["https://example.com/caught"] is True
    for source, words in ((MISSING, "KeyError"), (WRITES, "read-only"), (REPLACES, "read-only")):
        dry = call(client, "POST", "/admin/rules/dry-run", {"rules": {"60-bad": source}, **evaluate_body()})
        if dry.status_code == 422:  # caught when the set loads (the rule lint)
            assert dry.json()["errors"][0]["rule"] == "60-bad"
            continue
        result = dry.json()
        assert result["decision"] == "deny" and result["reason"] == "rule_failed", result
        assert words in (result["trace"][-1]["error"] or ""), result["trace"][-1]


def test_rules_without_settings_see_an_empty_mapping(tmp_path: Path, loop_thread: LoopThread) -> None:
    with ServiceClient(create_app(make_settings(tmp_path, {"50-reads": CATCHES})), loop_thread) as service:
        assert evaluate(service)["claims"] == {"https://example.com/caught": True}


@pytest.mark.parametrize("key", ["1abc", "_x", "a b", "a" * 65, "é", "a:b", "a%2Fb", "a%00"])
def test_a_bad_key_is_a_400_naming_key(client: ServiceClient, key: str) -> None:
    for method in ("PUT", "DELETE", "GET"):
        response = call(client, method, f"/admin/rules/settings/{key}", {"value": 1})
        assert response.status_code == 400, (method, key, response.text)
        assert response.json() | {"message": ""} == {"error": "invalid_request", "field": "key", "message": ""}


@pytest.mark.parametrize("path", ["/admin/rules/settings/a/b", "/admin/rules/settings/..%2Fx",
                                  "/admin/rules/settings/../x"])
def test_a_path_trick_is_a_400(client: ServiceClient, path: str) -> None:
    for method in ("PUT", "DELETE"):
        response = call(client, method, path, {"value": 1})
        assert response.status_code in (400, 404), response.text
        if response.status_code == 400:
            assert response.json()["field"] in ("key", "id")
    assert call(client, "GET", "/admin/rules/settings").json()["settings"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({}, "value"),
    ({"secret": True}, "value"),
    ({"value": 1, "extra": 2}, "extra"),
    ({"value": 1, "secret": "yes"}, "secret"),
    ({"value": 1, "secret": True}, "value"),
    ({"value": "", "secret": True}, "value"),
    ({"value": ["x"], "secret": True}, "value"),
    ({"value": "x" * 5000}, "value"),
    ({"value": {"a": [[[[[[[[[[1]]]]]]]]]]}}, "value"),
    ([1], None),
])
def test_bodies_are_strict(client: ServiceClient, body: Any, field: str | None) -> None:
    response = call(client, "PUT", "/admin/rules/settings/k", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json().get("field") == field


def test_null_is_a_value(client: ServiceClient) -> None:
    put(client, "nothing", None)
    assert call(client, "GET", "/admin/rules/settings/nothing").json()["value"] is None


def test_at_most_100_settings(client: ServiceClient) -> None:
    for index in range(100):
        put(client, f"k{index}", index)
    response = call(client, "PUT", "/admin/rules/settings/one-more", {"value": 1})
    assert response.status_code == 400 and response.json()["field"] == "key"
    put(client, "k5", "replacing one is fine")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/rules/settings"), ("GET", "/admin/rules/settings/k"),
    ("PUT", "/admin/rules/settings/k"), ("DELETE", "/admin/rules/settings/k"),
    ("PUT", "/admin/rules/settings/a/b"),
])
@pytest.mark.parametrize("headers", [{}, admin_auth("wrong-token-0123456789abcdef"), auth()])
def test_every_settings_route_needs_the_admin_token(client: ServiceClient, method: str, path: str,
                                                    headers: dict[str, str]) -> None:
    response = call(client, method, path, {"value": "x"}, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert call(client, "GET", "/admin/rules/settings").json()["settings"] == []


def test_rollback_restores_the_settings_of_that_version(client: ServiceClient) -> None:
    first = put(client, "region", "eu-west")["version"]
    put(client, "region", "us-east")
    put(client, "api_key", SECRET, secret=True)
    assert evaluate(client)["claims"]["https://example.com/region"] == "us-east"
    versions = call(client, "GET", "/admin/rules/versions").json()["versions"]
    assert [v["by"] for v in versions][:3] == ["settings", "settings", "settings"]
    rolled = call(client, "POST", "/admin/rules/rollback", {"version": first})
    assert rolled.status_code == 200 and rolled.json()["version"] == first
    assert evaluate(client)["claims"]["https://example.com/region"] == "eu-west"
    assert [s["key"] for s in call(client, "GET", "/admin/rules/settings").json()["settings"]] == ["region"]


def test_a_rule_change_keeps_the_settings(client: ServiceClient) -> None:
    put(client, "region", "eu-west")
    log_only = '"""Log."""\n\n\ndef rule(user, context):\n    context.log("x")\n'
    assert call(client, "PUT", "/admin/rules/60-log", {"source": log_only}).status_code == 200
    assert evaluate(client)["claims"]["https://example.com/region"] == "eu-west"
    assert call(client, "POST", "/admin/rules/reload").status_code == 200
    assert evaluate(client)["claims"]["https://example.com/region"] == "eu-west"


def test_settings_survive_a_restart_encrypted_at_rest(tmp_path: Path, loop_thread: LoopThread) -> None:
    settings = make_settings(tmp_path, {"50-reads": READS})
    with ServiceClient(create_app(settings), loop_thread) as first:
        put(first, "region", "eu-central-plaintext-marker")
        version = put(first, "api_key", SECRET, secret=True)["version"]
    with ServiceClient(create_app(settings), loop_thread) as second:
        answer = evaluate(second)
        assert answer["rule_set"]["version"] == version  # the same version: the digest is deterministic
        assert answer["claims"]["https://example.com/region"] == "eu-central-plaintext-marker"
        assert answer["claims"]["https://example.com/secret_length"] == len(SECRET)
        assert [v["by"] for v in call(second, "GET", "/admin/rules/versions").json()["versions"]][0] == "settings"
    stored = json.loads((tmp_path / "rules" / "settings.json").read_text())
    assert set(stored["settings"]) == {"api_key", "region"}
    for path in (tmp_path / "rules").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert SECRET.encode() not in text, path
            assert b"eu-central-plaintext-marker" not in text, path


def test_the_version_is_not_a_plain_hash_of_the_values(tmp_path: Path, loop_thread: LoopThread) -> None:
    """Two services with different secret keys and the same settings run different versions:
    the digest is a MAC under the keyring, not a hash anyone can recompute from a guess."""
    import dataclasses
    import base64

    from engine.config import SecretsSettings

    versions = []
    for index, key in enumerate((bytes(range(32)), bytes(range(1, 33)))):
        home = tmp_path / str(index)
        home.mkdir()
        settings = dataclasses.replace(make_settings(home, {"50-reads": READS}),
                                       secrets=SecretsSettings(key=base64.b64encode(key).decode()))
        with ServiceClient(create_app(settings), loop_thread) as service:
            versions.append(put(service, "api_key", "1234", secret=True)["version"])
    assert versions[0] != versions[1]


def test_a_tampered_settings_file_stops_startup(tmp_path: Path, loop_thread: LoopThread) -> None:
    from engine.pipeline import RuleSetRejected

    settings = make_settings(tmp_path, {"50-reads": READS})
    with ServiceClient(create_app(settings), loop_thread) as first:
        put(first, "api_key", SECRET, secret=True)
    path = tmp_path / "rules" / "settings.json"
    stored = json.loads(path.read_text())
    stored["settings"]["other"] = stored["settings"].pop("api_key")  # moved to another key
    path.write_text(json.dumps(stored))
    with pytest.raises(RuleSetRejected, match="settings.json"):
        create_app(settings)


def test_settings_run_on_the_worker_pool_too(tmp_path: Path, loop_thread: LoopThread) -> None:
    settings = make_settings(tmp_path, {"50-reads": READS}, isolation="process")
    with ServiceClient(create_app(settings), loop_thread) as pooled:
        put(pooled, "region", "eu-west")
        put(pooled, "api_key", SECRET, secret=True)
        claims = evaluate(pooled)["claims"]
        assert claims["https://example.com/region"] == "eu-west"
        assert claims["https://example.com/secret_length"] == len(SECRET)


def test_fixtures_and_the_cli_read_the_folder_settings(tmp_path: Path, loop_thread: LoopThread,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from engine.rules_cli import test_rules

    gate = '"""Open only in open mode."""\n\n\ndef rule(user, context):\n    if context.settings.get("mode") != "open":\n        context.deny("closed")\n'
    settings = make_settings(tmp_path, {"50-gate": gate})
    with ServiceClient(create_app(settings), loop_thread) as service:
        put(service, "mode", "open")
        (tmp_path / "rules" / "tests").mkdir()
        (tmp_path / "rules" / "tests" / "gate.yaml").write_text(
            "- name: open mode lets users in\n  user: {user_id: u-1}\n  decision: allow\n")
        assert put(service, "other", 1)["version"]  # the fixture runs on the candidate, with its settings
    assert test_rules(settings, None) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
