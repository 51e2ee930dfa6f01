"""The audit trail over HTTP (GET /admin/audit), on both directory backends: what a login story, its
failures and the administrators' changes write, in order; filters, cursors under concurrent writes,
bad parameters; expiry past audit.retention_days; two instances on one PostgreSQL directory."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import audit
from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import AuditSettings, ConfigError, DirectorySettings, load_settings
from engine.sms.recording import RecordingSmsGateway
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import DE_IP, START, US_IP, LoginService, start_service, totp_now
from tests.engine.service import admin_auth, make_settings
from tests.postgres_db import empty, postgres_database

__all__ = ["postgres_database"]  # the fixture

PHONE = "+14155550123"
ADMIN_ADDRESS = "127.0.0.1"  # httpx's ASGI transport is the admin's peer
BLOCKING_RULE = {"10-blocked": '''"""Refuse blocked users."""


def rule(user, context):
    if user.app_metadata.get("blocked") is True:
        context.deny("this account is blocked")
'''}


def service_on(backend: str, request: pytest.FixtureRequest, tmp_path: Path, loop: LoopThread,
               **settings: Any) -> Iterator[LoginService]:
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_database")
        empty(url)  # the app migrates it when it starts
        yield from start_service(tmp_path, loop, "memory", directory_url=url, **settings)
        return
    yield from start_service(tmp_path, loop, "memory", **settings)


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from service_on(request.param, request, tmp_path, loop_thread)


def trail(service: LoginService, **query: Any) -> httpx.Response:
    return service.client.get("/admin/audit", params=query, headers=admin_auth())


def events(service: LoginService, **query: Any) -> list[dict[str, Any]]:
    """Every event the query selects, newest first, through all its pages."""
    found: list[dict[str, Any]] = []
    while True:
        answer = trail(service, **query)
        assert answer.status_code == 200, answer.text
        found += answer.json()["events"]
        if answer.json()["next_cursor"] is None:
            return found
        query["cursor"] = answer.json()["next_cursor"]


def story(service: LoginService, user_id: str) -> list[tuple[str, str]]:
    """The user's events, oldest first, as (type, actor)."""
    return [(event["type"], event["actor"]) for event in reversed(events(service, user_id=user_id))]


def test_a_login_story_writes_its_events_in_order(service: LoginService) -> None:
    user = service.create_user()
    first = service.first_login_enrolling_otp()  # enrollment finishes the first login
    assert service.login(password="wrong password").status_code == 401
    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required"
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": first["factor_id"]})
    wrong = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": first["factor_id"],
                                            "code": "000000", "context": {"ip": DE_IP}})
    assert wrong.status_code == 401
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": first["factor_id"],
                                           "code": totp_now(first["secret"], service.clock.now())})
    assert done.status_code == 200, done.text

    assert story(service, user["user_id"]) == [
        ("user.created", "admin"),
        ("factor.enrolled", "user"), ("recovery_codes.generated", "user"),
        ("factor.verified", "user"), ("login.succeeded", "user"),
        ("login.failed", "user"),
        ("factor.challenged", "user"), ("factor.failed", "user"),
        ("factor.verified", "user"), ("login.succeeded", "user"),
    ]
    newest = events(service, user_id=user["user_id"])
    succeeded, verified, failed, challenged = newest[0], newest[1], newest[2], newest[3]
    assert succeeded["decision_id"] == verified["decision_id"] == challenged["decision_id"] == login["decision_id"]
    assert succeeded["ip"] == verified["ip"] == challenged["ip"] == failed["ip"] == DE_IP
    assert succeeded["details"] == {"amr": ["pwd", "otp"], "client_id": "app-1"}
    assert verified["details"] == {"factor_id": first["factor_id"], "factor_type": "otp"}
    assert challenged["details"] == {"factor_id": first["factor_id"], "factor_type": "otp", "sent": False}
    assert failed["details"] == {"factor_id": first["factor_id"], "factor_type": "otp", "reason": "invalid_code"}
    assert newest[4]["details"] == {"client_id": "app-1", "reason": "wrong_password"} and newest[4]["ip"] == US_IP
    assert newest[-1]["ip"] == ADMIN_ADDRESS and newest[-1]["details"] == {"username": "alice"}
    assert newest[-1]["at"] == START.isoformat() and succeeded["at"] == (START + timedelta(seconds=30)).isoformat()


def test_an_sms_challenge_says_it_was_sent_and_a_recovery_code_is_a_verified_factor(service: LoginService) -> None:
    user = service.create_user()
    first = service.first_login_enrolling_sms(phone=PHONE)
    login = service.login(ip=DE_IP).json()
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": first["factor_id"]})
    recovered = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": "recovery",
                                                "code": first["recovery_codes"][0]})
    assert recovered.status_code == 200, recovered.text

    newest = events(service, user_id=user["user_id"])
    assert [event["type"] for event in newest[:3]] == ["login.succeeded", "factor.verified", "factor.challenged"]
    assert newest[1]["details"] == {"factor_id": "recovery", "factor_type": "recovery"}
    assert newest[2]["details"] == {"factor_id": first["factor_id"], "factor_type": "sms", "sent": True}
    enrolled = next(event for event in newest if event["type"] == "factor.enrolled")
    assert enrolled["details"]["phone"] == "+1 *** *** 0123"


def test_failed_logins_carry_their_reason(request: pytest.FixtureRequest, tmp_path: Path,
                                          loop_thread: LoopThread) -> None:
    for service in service_on("sqlite", request, tmp_path, loop_thread, rules=BLOCKING_RULE,
                              login={"failures_per_username": 2}):
        blocked = service.create_user(username="bob", app_metadata={"blocked": True})
        denied = service.login(username="bob")
        assert denied.status_code == 403
        assert service.login(username="mallory").status_code == 401
        assert [service.login(password="guess").status_code for _ in range(4)] == [401, 401, 429, 429]

        by_type = events(service, type="login.failed")
        assert [(e["user_id"], e["details"]["reason"]) for e in reversed(by_type)] == [
            (blocked["user_id"], "denied"), (None, "unknown_user"), (None, "unknown_user"), (None, "unknown_user")]
        assert by_type[-1]["decision_id"] == denied.json()["decision_id"]
        assert by_type[-1]["details"]["deny_reason"] == "this account is blocked"
        assert "mallory" not in str(by_type)  # a username typed is no user's, and may be a password
        locks = events(service, type="lockout")
        assert len(locks) == 1, "one event per lock, not per refused attempt"
        assert locks[0]["actor"] == "system" and locks[0]["user_id"] is None and locks[0]["ip"] == US_IP
        assert locks[0]["details"]["scope"] == "password" and locks[0]["details"]["retry_after_seconds"] > 0


def test_a_second_factor_lockout_is_written_once_and_the_refused_logins_say_why(
        request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in service_on("sqlite", request, tmp_path, loop_thread, mfa={"lockout_threshold": 2}):
        user = service.create_user()
        first = service.first_login_enrolling_otp()
        login = service.login(ip=DE_IP).json()
        verify = {"challenge_id": login["challenge_id"], "factor_id": first["factor_id"], "code": "000000",
                  "context": {"ip": DE_IP}}
        assert [service.post("/v1/mfa/verify", verify).status_code for _ in range(3)] == [401, 429, 429]
        assert service.login(ip=DE_IP).status_code == 429

        newest = events(service, user_id=user["user_id"])
        assert [event["type"] for event in newest[:3]] == ["login.failed", "lockout", "factor.failed"]
        assert newest[0]["details"]["reason"] == "factor_locked"
        assert newest[1]["details"] == {"scope": "factor", "retry_after_seconds": 900}
        assert newest[1]["actor"] == "system" and newest[1]["ip"] == DE_IP


def test_admin_changes_are_written_with_the_admin_as_actor(service: LoginService) -> None:
    user = service.create_user(phone_number=PHONE)
    user_path = f"/admin/users/{user['user_id']}"
    admin = admin_auth()
    assert service.client.request("PATCH", user_path, headers=admin,
                                  json={"email": "alice@example.com", "password": "a new long passphrase"}
                                  ).status_code == 200
    factor = service.post(f"{user_path}/factors", {"type": "sms", "phone_number": PHONE}, admin).json()
    assert service.client.request("DELETE", f"{user_path}/factors/{factor['id']}", headers=admin).status_code == 204
    assert service.post(f"{user_path}/reset-mfa", {}, admin).status_code == 200
    assert service.client.request("DELETE", f"{user_path}/remembered-browsers", headers=admin).status_code == 204
    assert service.client.request("DELETE", user_path, headers=admin).status_code == 204
    rule = '"""Allow."""\n\n\ndef rule(user, context):\n    pass\n'
    assert service.client.request("PUT", "/admin/rules/90-noop", headers=admin, json={"source": rule}).status_code == 200
    assert service.client.request("PUT", "/admin/rules/settings/partner_key", headers=admin,
                                  json={"value": "s3cret-partner-key-0123", "secret": True}).status_code == 200

    changes = events(service, user_id=user["user_id"])
    assert [(e["type"], e["actor"], e["ip"]) for e in reversed(changes)] == [
        ("user.created", "admin", ADMIN_ADDRESS), ("user.updated", "admin", ADMIN_ADDRESS),
        ("factor.added", "admin", ADMIN_ADDRESS), ("factor.removed", "admin", ADMIN_ADDRESS),
        ("mfa.reset", "admin", ADMIN_ADDRESS), ("remembered_browser.revoked", "admin", ADMIN_ADDRESS),
        ("user.deleted", "admin", ADMIN_ADDRESS)]
    details = [e["details"] for e in reversed(changes)]
    assert details[1] == {"fields": ["email", "password"]}
    assert details[2] == {"factor_id": factor["id"], "factor_type": "sms", "phone": "+1 *** *** 0123"}
    assert details[3] == {"factor_id": factor["id"]} and details[5] == {"count": 0}
    assert details[6] == {"username": "alice"}
    rules = events(service, type="rules.changed")
    assert [(e["actor"], e["ip"], e["user_id"]) for e in rules] == [("admin", ADMIN_ADDRESS, None)] * 2
    assert rules[1]["details"]["change"] == "put" and rules[1]["details"]["rules"] == ["90-noop"]
    assert rules[1]["details"]["settings"] == []
    assert rules[0]["details"]["change"] == "settings" and rules[0]["details"]["settings"] == ["partner_key"]
    assert rules[0]["details"]["previous_version"] == rules[1]["details"]["version"]


def test_filters_select_by_user_type_and_time(service: LoginService) -> None:
    alice = service.create_user()
    service.clock.advance(60)
    bob = service.create_user(username="bob")
    service.clock.advance(60)
    service.login(username="bob", password="wrong")
    later = START + timedelta(seconds=120)

    assert [e["type"] for e in events(service, user_id=bob["user_id"])] == ["login.failed", "user.created"]
    assert [e["user_id"] for e in events(service, type="user.created")] == [bob["user_id"], alice["user_id"]]
    assert [e["user_id"] for e in events(service, since=START.isoformat().replace("+00:00", "Z"),
                                         until=later.isoformat().replace("+00:00", "Z"))] == [bob["user_id"],
                                                                                             alice["user_id"]]
    assert [e["type"] for e in events(service, since="2026-11-27T10:02:00+00:00")] == ["login.failed"]
    # An offset pasted into the URL unencoded: its `+` arrives as a space, and is read as a `+`.
    pasted = service.client.get("/admin/audit?since=2026-11-27T10:02:00+00:00", headers=admin_auth()).json()
    assert [e["type"] for e in pasted["events"]] == ["login.failed"]
    assert events(service, user_id=bob["user_id"], type="user.created", until=later.isoformat())[0]["user_id"] == \
        bob["user_id"]
    one = trail(service, limit=1).json()
    assert len(one["events"]) == 1 and one["limit"] == 1 and one["next_cursor"] is not None


@pytest.mark.parametrize(("query", "field"), [
    ("user_id=not%20an%20id", "user_id"), ("type=login", "type"), ("type=LOGIN.FAILED", "type"),
    ("since=yesterday", "since"), ("since=2026-01-01T00:00:00", "since"), ("until=2026-01-01T00:00:00+0", "until"),
    ("since=2026-01-01T00:00:00++00:00", "since"),
    ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"), ("limit=0", "limit"), ("limit=1001", "limit"),
    ("limit=%2B5", "limit"), ("cursor=abc", "cursor"), ("cursor=", "cursor"), ("page=2", "page"),
    ("user_id=usr_a&user_id=usr_b", "user_id"),
])
def test_a_bad_parameter_is_a_400_naming_it(request: pytest.FixtureRequest, tmp_path: Path,
                                            loop_thread: LoopThread, query: str, field: str) -> None:
    for service in service_on("sqlite", request, tmp_path, loop_thread):
        answer = service.client.get(f"/admin/audit?{query}", headers=admin_auth())
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_request" and answer.json()["field"] == field


def test_the_trail_needs_the_admin_token(request: pytest.FixtureRequest, tmp_path: Path,
                                        loop_thread: LoopThread) -> None:
    for service in service_on("sqlite", request, tmp_path, loop_thread):
        assert service.client.get("/admin/audit").status_code == 401
        assert service.client.get("/admin/audit", headers={"Authorization": "Bearer test-api-key-0123456789abcdef"}
                                  ).status_code == 401


def test_pages_return_every_event_once_while_others_are_written(service: LoginService) -> None:
    user = service.create_user()
    user_path = f"/admin/users/{user['user_id']}"
    for index in range(40):
        service.client.request("PATCH", user_path, headers=admin_auth(), json={"name": f"Alice {index}"})
    before = {event["id"] for event in events(service)}
    assert len(before) == 41
    stop = threading.Event()

    def write_meanwhile() -> None:
        while not stop.is_set():
            service.client.request("PATCH", user_path, headers=admin_auth(), json={"name": "Alice again"})

    writer = threading.Thread(target=write_meanwhile)
    writer.start()
    try:
        seen = [event["id"] for event in events(service, limit=3)]
    finally:
        stop.set()
        writer.join()

    assert len(seen) == len(set(seen)), "an event was returned twice"
    assert before <= set(seen), "an event that existed before the first page was skipped"
    assert len(events(service)) > 41, "the writer wrote meanwhile"


def retained_service(tmp_path: Path, loop: LoopThread, days: int) -> tuple[ServiceClient, FrozenClock]:
    clock = FrozenClock(START)
    settings = dataclasses.replace(make_settings(tmp_path), audit=AuditSettings(retention_days=days))
    return ServiceClient(create_app(settings, clock=clock, gateway=RecordingSmsGateway()), loop), clock


def stored_count(tmp_path: Path) -> int:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "mfa.db")) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])


def test_events_past_the_retention_period_are_hidden_then_deleted_a_batch_at_a_time(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    client, clock = retained_service(tmp_path, loop_thread, days=1)
    with client:
        for index in range(7):
            client.post("/admin/users", json={"username": f"user{index}", "password": "long enough password"},
                        headers=admin_auth())
        clock.advance(86_400 - 1)
        client.post("/admin/users", json={"username": "fresh", "password": "long enough password"},
                    headers=admin_auth())
        clock.advance(2)  # the first seven are now older than a day
        trail_of = client.app.state.services.audit

        shown = client.get("/admin/audit", headers=admin_auth()).json()["events"]
        assert [event["details"]["username"] for event in shown] == ["fresh"]
        assert stored_count(tmp_path) == 8
        assert loop_thread.call(trail_of.expire(batch=3)) == 3
        assert stored_count(tmp_path) == 5
        assert [loop_thread.call(trail_of.expire(batch=3)) for _ in range(3)] == [3, 1, 0]
        assert stored_count(tmp_path) == 1


def test_the_background_expiry_drains_a_backlog(tmp_path: Path, loop_thread: LoopThread) -> None:
    import asyncio

    client, clock = retained_service(tmp_path, loop_thread, days=1)
    with client:
        services = client.app.state.services
        old = [audit.event("login.failed", START, reason="unknown_user") for _ in range(1200)]
        loop_thread.call(services.directory.record_audit(old))
        clock.advance(2 * 86_400)

        async def expire_for_a_while() -> None:
            task = asyncio.create_task(services.audit.run_expiry(interval_seconds=0.01))
            for _ in range(500):
                await asyncio.sleep(0.01)
                if stored_count(tmp_path) == 0:
                    break
            task.cancel()

        loop_thread.call(expire_for_a_while())
        assert stored_count(tmp_path) == 0


def test_retention_zero_keeps_everything(tmp_path: Path, loop_thread: LoopThread) -> None:
    client, clock = retained_service(tmp_path, loop_thread, days=0)
    with client:
        client.post("/admin/users", json={"username": "alice", "password": "long enough password"},
                    headers=admin_auth())
        clock.advance(100 * 365 * 86_400)
        assert loop_thread.call(client.app.state.services.audit.expire()) == 0
        assert len(client.get("/admin/audit", headers=admin_auth()).json()["events"]) == 1


def test_the_retention_setting_is_checked_at_startup() -> None:
    assert load_settings(None, environ={}).audit.retention_days == 365
    assert load_settings(None, environ={"MFA_AUDIT__RETENTION_DAYS": "30"}).audit.retention_days == 30
    for bad, message in (("-1", "must be 0..36500"), ("36501", "must be 0..36500"), ("a year", "must be an integer")):
        with pytest.raises(ConfigError, match=f"audit.retention_days: {message}"):
            load_settings(None, environ={"MFA_AUDIT__RETENTION_DAYS": bad})


def test_every_instance_on_one_postgresql_directory_sees_every_event(tmp_path: Path, loop_thread: LoopThread,
                                                                     postgres_database: str) -> None:
    empty(postgres_database)
    settings = dataclasses.replace(make_settings(tmp_path), directory=DirectorySettings(url=postgres_database))
    first = ServiceClient(create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway()), loop_thread)
    second = ServiceClient(create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway()), loop_thread)
    with first, second:
        created = first.post("/admin/users", json={"username": "alice", "password": "long enough password"},
                             headers=admin_auth()).json()
        seen = second.get("/admin/audit", params={"user_id": created["user_id"]}, headers=admin_auth()).json()
    assert [event["type"] for event in seen["events"]] == ["user.created"]
