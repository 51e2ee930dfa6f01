"""Rule settings and secrets across instances (issue 9 on issue 8's shared Redis): two live service
processes on a redis-server of the test's own. A setting PUT, deleted or rolled back on one
instance is what the other's rules read within the follower's interval; no setting, secret or
not, is stored in plaintext in Redis or in either instance's files; an instance whose secret key
cannot open the shared settings keeps serving its own set and shows itself out of sync."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.live_process import ServerProcess, write_config
from tests.engine.redis_process import RedisProcess, redis_process  # noqa: F401 - the fixture
from tests.engine.service import auth, evaluate_body
from tests.engine.test_rule_sync_live import SYNC_SECONDS, admin, start_instance, within

pytestmark = pytest.mark.slow

SECRET = 'hunter2-"Tr0ub4dor"\\live-secret-\u00e9-7f3a'  # a quote, a backslash, non-ASCII: escaped forms differ
REGION = "eu-central-plaintext-marker-91c2"
OLD_REGION = "us-east-plaintext-marker-5d0e"
READS = '''"""Reads the settings, and tries to leak the secret."""


def rule(user, context):
    context.claims["https://example.com/region"] = context.settings.get("region")
    context.claims["https://example.com/secret_length"] = len(context.settings.get("api_key", ""))
    context.claims["https://example.com/leak"] = "key:" + context.settings.get("api_key", "")
    context.log("api_key=" + context.settings.get("api_key", "none"))
    try:
        context.settings["region"]
    except KeyError:
        context.claims["https://example.com/missing"] = True
'''
LEAKS = '''"""Hands the secret back (redacted before anything is recorded), never the region."""


def rule(user, context):
    secret = context.settings.get("api_key", "")
    context.claims["https://example.com/leak"] = "key:" + secret
    context.log("api_key=" + secret)
    if context.settings.get("region") is None:
        context.deny("no region")
'''


def forms(text: str) -> list[bytes]:
    """`text` as it could sit in a store: raw, JSON-escaped (ASCII or not), base64 (standard and URL-safe)."""
    raw = text.encode()
    return [raw, json.dumps(text)[1:-1].encode(), json.dumps(text, ensure_ascii=False)[1:-1].encode(),
            base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


@contextlib.contextmanager
def two_instances(tmp_path: Path, redis_url: str,
                  rules: dict[str, str]) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with contextlib.ExitStack() as stack:
        first = start_instance(tmp_path, "a", redis_url, rules)
        stack.callback(first.stop)
        second = start_instance(tmp_path, "b", redis_url, rules)
        stack.callback(second.stop)
        yield first, second


def evaluate(server: ServerProcess) -> httpx.Response:
    response = httpx.post(server.url + "/v1/evaluate", json=evaluate_body(), headers=auth(), timeout=5)
    assert response.status_code == 200, response.text
    return response


def claims(server: ServerProcess) -> dict[str, Any]:
    return evaluate(server).json()["claims"]  # type: ignore[no-any-return]


def put(server: ServerProcess, key: str, value: Any, secret: bool = False) -> str:
    response = admin(server, "PUT", f"/admin/rules/settings/{key}", {"value": value, "secret": secret})
    assert response.status_code == 200, response.text
    return str(response.json()["version"])


def health(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(server.url + "/healthz", timeout=5).json()["rule_set"]  # type: ignore[no-any-return]


def test_settings_put_deleted_and_rolled_back_on_one_instance_are_read_on_the_other(
        tmp_path: Path, redis_process: RedisProcess) -> None:
    with two_instances(tmp_path, redis_process.url, {"50-reads": READS}) as (first, second):
        assert claims(second)["https://example.com/missing"] is True  # no settings yet
        before = put(first, "region", OLD_REGION)
        within(SYNC_SECONDS, lambda: claims(second)["https://example.com/region"] == OLD_REGION)
        put(first, "region", REGION)
        version = put(first, "api_key", SECRET, secret=True)

        def follows() -> bool:
            seen = claims(second)
            return bool(seen["https://example.com/region"] == REGION
                        and seen["https://example.com/secret_length"] == len(SECRET))
        within(SYNC_SECONDS, follows)
        assert health(first)["version"] == health(second)["version"] == version
        assert health(second)["sync"] == {"kind": "redis", "shared_version": version, "in_sync": True}

        # The secret reached B's rules, and nothing of B hands it back.
        answer = evaluate(second)
        assert answer.json()["rule_set"]["version"] == version
        assert answer.json()["claims"]["https://example.com/leak"] != "key:" + SECRET
        answers = [answer.text, httpx.get(second.url + "/healthz", timeout=5).text]
        answers += [admin(second, "GET", path).text for path in (
            "/admin/rules", "/admin/rules/settings", "/admin/rules/settings/api_key", "/admin/rules/versions",
            f"/admin/decisions/{answer.json()['decision_id']}")]
        dry = admin(second, "POST", "/admin/rules/dry-run", evaluate_body())
        assert dry.status_code == 200, dry.text
        answers.append(dry.text)
        for text in answers:
            assert not any(form in text.encode() for form in forms(SECRET)), text
        for server in (first, second):
            assert not any(form in server.log().encode() for form in forms(SECRET))
        listed = admin(second, "GET", "/admin/rules/settings").json()
        assert listed["version"] == version
        assert [(s["key"], s["secret"], s.get("value")) for s in listed["settings"]] == [
            ("api_key", True, None), ("region", False, REGION)]

        deleted = admin(first, "DELETE", "/admin/rules/settings/region")
        assert deleted.status_code == 200, deleted.text

        def deleted_there() -> bool:
            seen = claims(second)
            return seen["https://example.com/region"] is None and seen.get("https://example.com/missing") is True
        within(SYNC_SECONDS, deleted_there)
        assert claims(second)["https://example.com/secret_length"] == len(SECRET)  # the secret stays
        assert health(first)["version"] == health(second)["version"] == deleted.json()["version"]

        rolled = admin(first, "POST", "/admin/rules/rollback", {"version": before})
        assert rolled.status_code == 200 and rolled.json()["version"] == before, rolled.text

        def rolled_back() -> bool:
            seen = claims(second)
            return bool(seen["https://example.com/region"] == OLD_REGION
                        and seen["https://example.com/secret_length"] == 0)
        within(SYNC_SECONDS, rolled_back)
        assert health(first)["version"] == health(second)["version"] == before
        assert health(second)["sync"] == {"kind": "redis", "shared_version": before, "in_sync": True}
        assert [s["key"] for s in admin(second, "GET", "/admin/rules/settings").json()["settings"]] == ["region"]


def redis_contents(redis_process: RedisProcess) -> list[bytes]:
    """Every key of the shared Redis and every value in it, whatever its type."""
    found: list[bytes] = []
    with redis_process.client() as client:
        for key in client.scan_iter(count=1000):
            found.append(key)
            kind = client.type(key).decode()
            if kind == "string":
                found.append(client.get(key) or b"")
            elif kind == "hash":
                for field, value in client.hgetall(key).items():
                    found += [field, value]
            elif kind == "list":
                found += client.lrange(key, 0, -1)
            elif kind == "set":
                found += list(client.smembers(key))
            elif kind == "zset":
                found += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                for entry_id, fields in client.xrange(key):
                    found.append(entry_id)
                    for field, value in fields.items():
                        found += [field, value]
            else:
                pytest.fail(f"a key of type {kind} the scan cannot read: {key!r}")
    return found


def test_no_setting_is_stored_in_plaintext_in_redis_or_in_either_folder(
        tmp_path: Path, redis_process: RedisProcess) -> None:
    with two_instances(tmp_path, redis_process.url, {"50-leaks": LEAKS}) as (first, second):
        put(first, "region", REGION)
        put(first, "api_key", SECRET + "-old", secret=True)
        version = put(first, "api_key", SECRET, secret=True)
        within(SYNC_SECONDS, lambda: health(second)["version"] == version)
        for server in (first, second):  # decision records (with the rule's redacted claims and logs) in Redis too
            answer = evaluate(server).json()
            assert answer["decision"] == "allow" and answer["rule_set"]["version"] == version
        contents = redis_contents(redis_process)
        assert any(b"mfa:rules:active" == key for key in contents)
        files = [path for home in (tmp_path / "a", tmp_path / "b") for path in home.rglob("*") if path.is_file()]
        assert any(path.name == "settings.json" for path in files) and any(
            path.name == ".versions.json" for path in files)
        for plaintext in (SECRET, REGION):
            for needle in forms(plaintext):
                for value in contents:
                    assert needle not in value, (plaintext, needle, value[:200])
                for path in files:  # rules/ (rules, settings.json, .versions.json), var/ if any, SQLite, logs
                    assert needle not in path.read_bytes(), (plaintext, needle, path)


def test_an_instance_with_another_secret_key_refuses_the_shared_settings_and_shows_it(
        tmp_path: Path, redis_process: RedisProcess) -> None:
    with two_instances(tmp_path, redis_process.url, {"50-reads": READS}) as (first, second):
        running = health(second)["version"]
        first_version = put(first, "api_key", SECRET, secret=True)
        home = tmp_path / "c"
        home.mkdir()
        other_key = base64.b64encode(bytes(range(1, 33))).decode()
        third = ServerProcess(home, write_config(home, {"50-reads": READS}, store={"redis_url": redis_process.url},
                                                  secrets={"key": other_key}))
        try:
            third.wait_ready()  # at startup: the shared set does not open here; it serves its folder's
            assert health(third) | {"rules": []} == {"version": running, "rules": [], "sync": {
                "kind": "redis", "shared_version": first_version, "in_sync": False}}
            assert f"rules_sync_rejected version={first_version}" in third.log()
            version = put(first, "region", REGION)  # while running: the follower refuses it too
            within(SYNC_SECONDS, lambda: health(second)["version"] == version)

            def shown_out_of_sync() -> bool:
                return bool(health(third)["sync"] == {"kind": "redis", "shared_version": version, "in_sync": False})
            within(SYNC_SECONDS, shown_out_of_sync)
            assert health(third)["version"] == running
            seen = claims(third)
            assert seen["https://example.com/secret_length"] == 0 and seen["https://example.com/missing"] is True
            within(SYNC_SECONDS, lambda: f"rules_sync_rejected version={version}" in third.log())
            assert third.log().count(f"rules_sync_rejected version={version}") == 1  # once, not at every check
            assert third.process.poll() is None and "Traceback" not in third.log()
            assert not any(form in third.log().encode() for form in forms(SECRET))
            refused = admin(third, "PUT", "/admin/rules/settings/region", {"value": "x"})
            assert refused.status_code == 409, refused.text  # built on a version the fleet no longer runs
            assert health(second)["version"] == version
        finally:
            third.stop()
