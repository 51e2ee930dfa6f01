"""`rules.watch: true`: hand edits of the rules folder go through the reload path of a running service."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.app import create_app
from engine.config import Settings
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import US_IP, admin_auth, auth, evaluate_body, make_settings

DENY_ALL = '"""Deny everyone."""\n\n\ndef rule(user, context):\n    context.deny("maintenance")\n'
BROKEN = '"""Half-typed."""\n\n\ndef rule(user, context):\n    context.deny("secret-words-in-the-source" +\n'
SETTLE_SECONDS = 0.5  # the watcher starts with the lifespan; give it time to arm before editing


def watched_settings(tmp_path: Path, watch: bool = True) -> Settings:
    settings = make_settings(tmp_path, rules_settings={"watch": watch})
    shutil.rmtree(tmp_path / "rules" / "tests")  # no fixtures: a deny-all rule is a legal set here
    return settings


@pytest.fixture
def watched(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with ServiceClient(create_app(watched_settings(tmp_path)), loop_thread) as service:
        time.sleep(SETTLE_SECONDS)
        yield service


def decide(client: ServiceClient) -> dict[str, Any]:
    response = client.post("/v1/evaluate", json=evaluate_body(US_IP), headers=auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def eventually(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def write(path: Path, text: str) -> None:
    # As an editor that saves in place would; the engine's own writes are rename-based.
    path.write_text(text, encoding="utf-8")


def test_an_edited_rule_file_decides_within_two_seconds(watched: ServiceClient, tmp_path: Path) -> None:
    before = decide(watched)
    assert before["decision"] == "allow"
    started = time.monotonic()
    write(tmp_path / "rules" / "05-maintenance.py", DENY_ALL)
    assert eventually(lambda: decide(watched)["decision"] == "deny", seconds=2.0)
    assert time.monotonic() - started < 2.0
    after = decide(watched)
    assert after["rule_set"]["version"] != before["rule_set"]["version"]
    listing = watched.get("/admin/rules", headers=admin_auth()).json()
    assert listing["version"] == after["rule_set"]["version"]
    versions = watched.get("/admin/rules/versions", headers=admin_auth()).json()["versions"]
    assert versions[0]["by"] == "reload"


def test_a_broken_edit_is_logged_with_its_errors_and_the_old_set_keeps_deciding(
        watched: ServiceClient, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.rule_watch")
    version = decide(watched)["rule_set"]["version"]
    write(tmp_path / "rules" / "05-maintenance.py", BROKEN)
    assert eventually(lambda: any(r.message.startswith("rules_watch_error") for r in caplog.records))
    errors = [r.message for r in caplog.records if r.message.startswith("rules_watch_error")]
    assert errors and all(line.startswith("rules_watch_error rule=05-maintenance line=") for line in errors)
    assert not any("secret-words" in r.getMessage() for r in caplog.records)
    answer = decide(watched)
    assert (answer["decision"], answer["rule_set"]["version"]) == ("allow", version)
    write(tmp_path / "rules" / "05-maintenance.py", DENY_ALL)  # fixed: the next save goes live
    assert eventually(lambda: decide(watched)["decision"] == "deny")


def test_a_change_through_the_api_is_not_reloaded_again_by_the_watcher(
        watched: ServiceClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.rule_watch")
    put = watched.request("PUT", "/admin/rules/05-maintenance", json={"source": DENY_ALL, "enabled": False},
                          headers=admin_auth())
    assert put.status_code == 200, put.text
    time.sleep(1.5)  # longer than a watch batch: a loop would have shown by now
    versions = watched.get("/admin/rules/versions", headers=admin_auth()).json()["versions"]
    assert [entry["by"] for entry in versions[:2]] == ["put", "startup"]
    assert not any(r.message.startswith("rules_watch_reloaded") for r in caplog.records)


def test_the_engines_own_files_are_not_watched(watched: ServiceClient, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.rule_watch")
    folder = tmp_path / "rules"
    write(folder / ".versions.json", "not json")  # a reload would fail on it: it must not start one
    write(folder / ".05-maintenance.py.x1.tmp", DENY_ALL)
    write(folder / "notes.txt", "scratch")
    time.sleep(1.0)
    assert decide(watched)["decision"] == "allow"
    assert not [r for r in caplog.records if r.message.startswith(("rules_watch_reloaded", "rules_watch_rejected",
                                                                    "rules_watch_failed"))]


def test_without_watch_an_edit_waits_for_a_reload(tmp_path: Path, loop_thread: LoopThread) -> None:
    with ServiceClient(create_app(watched_settings(tmp_path, watch=False)), loop_thread) as service:
        write(tmp_path / "rules" / "05-maintenance.py", DENY_ALL)
        time.sleep(1.0)
        assert decide(service)["decision"] == "allow"
        assert service.post("/admin/rules/reload", headers=admin_auth()).status_code == 200
        assert decide(service)["decision"] == "deny"
