"""Decision traces: every /v1/evaluate and /v1/login answer names a decision an admin can read back."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import ConfigError, DecisionsSettings, StoreSettings, load_settings
from engine.sms.recording import RecordingSmsGateway
from engine.stores.memory import MemoryChallengeStore
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import REDIS_URL, START, LoginService, start_service, totp_now
from tests.engine.service import (
    ADMIN_TOKEN,
    API_KEY,
    DE_IP,
    SECRET_KEY,
    SIGNING_KEY,
    US_IP,
    admin_auth,
    auth,
    evaluate_body,
    make_settings,
)

PASSWORD = "tr0ub4dor-and-3-horses"
PHONE = "+14155550123"
DECISION_FIELDS = {"decision_id", "time", "endpoint", "user_id", "client_id", "rule_set", "rules", "signals",
                   "decision", "reason", "factors", "default_factor_source"}


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param)


@pytest.fixture
def memory_service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, "memory")


def read_decision(service: LoginService, decision_id: str, token: str = ADMIN_TOKEN) -> Any:
    return service.client.get(f"/admin/decisions/{decision_id}", headers=admin_auth(token))


def record_of(service: LoginService, answer: Mapping[str, Any]) -> dict[str, Any]:
    assert len(answer["decision_id"]) == 22, answer
    response = read_decision(service, answer["decision_id"])
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert DECISION_FIELDS <= record.keys()
    return record


def test_an_evaluation_answers_with_a_decision_id_whose_record_explains_it(service: LoginService) -> None:
    answer = service.post("/v1/evaluate", evaluate_body(DE_IP, user_id="u-42", factors=["otp", "sms"])).json()
    record = record_of(service, answer)
    assert record["decision_id"] == answer["decision_id"]
    assert record["endpoint"] == "evaluate"
    assert record["user_id"] == "u-42"
    assert record["client_id"] == "app-1"
    assert record["rule_set"] == answer["rule_set"]
    assert record["time"] == START.isoformat()
    assert record["decision"] == answer["decision"] == "mfa"
    assert record["reason"] == answer["reason"]
    assert record["factors"] == answer["factors"] == [{"type": "otp", "default": True},
                                                      {"type": "sms", "default": False}]
    assert record["default_factor_source"] == "rule"
    # first_login_to_client and travel_kmh: unknown without known_client_ids and last_login_geo.
    assert record["signals"] == {"ip_country": "DE", "action": "login", "first_login": False,
                                 "first_login_to_client": None, "new_device": False, "new_country": True,
                                 "travel_kmh": None, "impossible_travel": None, "triggers": []}
    assert [rule["rule"] for rule in record["rules"]] == [rule["rule"] for rule in answer["trace"]]
    outside_home = next(rule for rule in record["rules"] if rule["rule"] == "20-require-mfa-outside-home")
    assert outside_home["outcome"] == "ok"
    assert outside_home["logs"] == ["login from DE needs a second factor"]
    assert isinstance(outside_home["duration_us"], int)


def test_a_rule_that_names_the_provider_is_in_the_record(service: LoginService) -> None:
    body = evaluate_body(US_IP)
    body["context"]["action"] = "transaction"
    record = record_of(service, service.post("/v1/evaluate", body).json())
    assert record["provider"] == "otp"
    assert record["provider_set_by"] == "30-step-up-transactions"
    assert record["signals"]["action"] == "transaction"


def test_every_kind_of_login_answer_carries_a_decision_id_with_its_record(service: LoginService) -> None:
    created = service.create_user()
    user_id = created["user_id"]

    enrollment = service.login().json()
    assert enrollment["status"] == "mfa_enrollment_required"
    record = record_of(service, enrollment)
    assert (record["endpoint"], record["user_id"], record["client_id"]) == ("login", user_id, "app-1")
    assert record["decision"] == "mfa" and record["enrollment_required"] is True
    assert record["signals"]["first_login"] is True

    service.first_login_enrolling_otp()
    authenticated = service.login(ip=US_IP).json()
    assert authenticated["status"] == "authenticated"
    assert record_of(service, authenticated)["decision"] == "allow"

    challenge = service.login(ip=DE_IP).json()
    assert challenge["status"] == "mfa_required"
    record = record_of(service, challenge)
    assert record["decision"] == "mfa"
    assert record["factors"][0] == {"type": "otp", "default": True}
    assert record["default_factor_source"] == challenge["default_factor_source"]

    assert service.client.request("PATCH", f"/admin/users/{user_id}", json={"app_metadata": {"blocked": True}},
                                  headers=admin_auth()).status_code == 200
    denied = service.login(ip=US_IP)
    assert denied.status_code == 403
    body = denied.json()
    assert body["error"] == "access_denied"
    assert body["reason"] == "this account is blocked; contact your administrator"
    record = record_of(service, body)
    assert (record["decision"], record["reason"]) == ("deny", body["reason"])
    assert [rule["rule"] for rule in record["rules"]] == ["10-deny-blocked-users"]

    ids = {enrollment["decision_id"], authenticated["decision_id"], challenge["decision_id"], body["decision_id"]}
    assert len(ids) == 4


def test_answers_before_the_rules_ran_carry_no_decision_id(service: LoginService) -> None:
    service.create_user()
    wrong = service.login(password="not the password")
    assert wrong.status_code == 401
    assert "decision_id" not in wrong.json()


@pytest.mark.parametrize("decision_id", ["AAAAAAAAAAAAAAAAAAAAAA", "short", "A" * 23, "AAAAAAAAAAAAAAAAAAAA.A",
                                         "..%2F..%2Fetc%2Fpasswd", "mfa:decision:x"])
def test_unknown_or_malformed_decision_ids_are_not_found(memory_service: LoginService, decision_id: str) -> None:
    response = read_decision(memory_service, decision_id)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_reading_a_decision_needs_the_admin_token(memory_service: LoginService) -> None:
    answer = memory_service.post("/v1/evaluate", evaluate_body()).json()
    path = f"/admin/decisions/{answer['decision_id']}"
    assert memory_service.client.get(path).status_code == 401
    assert memory_service.client.get(path, headers=admin_auth("wrong-admin-token-0123456789")).status_code == 401
    assert memory_service.client.get(path, headers=auth(API_KEY)).status_code == 401
    assert memory_service.client.get(path, headers=admin_auth()).status_code == 200


def test_a_record_is_kept_for_the_ttl_and_then_forgotten_in_memory(memory_service: LoginService) -> None:
    answer = memory_service.post("/v1/evaluate", evaluate_body()).json()
    memory_service.clock.advance(DecisionsSettings().ttl_seconds - 1)
    assert read_decision(memory_service, answer["decision_id"]).status_code == 200
    memory_service.clock.advance(1)
    assert read_decision(memory_service, answer["decision_id"]).status_code == 404


def test_a_record_in_redis_expires_with_the_ttl(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in start_service(tmp_path, loop_thread, "redis"):
        answer = service.post("/v1/evaluate", evaluate_body()).json()
        client = redis.Redis.from_url(REDIS_URL)
        try:
            ttl = client.ttl(f"mfa:decision:{answer['decision_id']}")
        finally:
            client.close()
        assert DecisionsSettings().ttl_seconds - 5 <= ttl <= DecisionsSettings().ttl_seconds


def test_the_memory_log_drops_the_oldest_record_past_its_bound(tmp_path: Path, loop_thread: LoopThread) -> None:
    settings = dataclasses.replace(make_settings(tmp_path), decisions=DecisionsSettings(max_in_memory=3))
    with ServiceClient(create_app(settings, clock=FrozenClock(START)), loop_thread) as client:
        ids = [client.post("/v1/evaluate", json=evaluate_body(), headers=auth()).json()["decision_id"]
               for _ in range(4)]
        found = [client.get(f"/admin/decisions/{decision_id}", headers=admin_auth()).status_code for decision_id in ids]
    assert found == [404, 200, 200, 200]


def test_no_password_code_secret_token_or_phone_number_appears_in_a_record(service: LoginService) -> None:
    secrets: list[str] = [PASSWORD, PHONE, API_KEY, ADMIN_TOKEN, SECRET_KEY, SIGNING_KEY]
    decision_ids: list[str] = []

    service.create_user(password=PASSWORD, phone_number=PHONE, email="alice@example.com")
    first_login = service.login(password=PASSWORD).json()
    decision_ids.append(first_login["decision_id"])
    first = service.first_login_enrolling_otp_with(PASSWORD)
    secrets += [first["secret"], first["token"], *first["recovery_codes"]]
    enrolled = service.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": PHONE, "user_token": first["token"]})
    enrollment_code = service.sms.last_code_for(PHONE)
    assert enrollment_code is not None
    secrets.append(enrollment_code)
    service.post("/v1/mfa/enroll/confirm", {"enrollment_id": enrolled.json()["enrollment_id"],
                                            "code": enrollment_code})

    login = service.login(password=PASSWORD, ip=DE_IP).json()
    decision_ids.append(login["decision_id"])
    secrets.append(login["challenge_id"])
    sms_factor = next(f for f in login["factors"] if f["type"] == "sms")
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": sms_factor["id"]})
    code = service.sms.last_code_for(PHONE)
    assert code is not None
    secrets.append(code)
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": sms_factor["id"],
                                           "code": code}).json()
    secrets.append(done["token"])
    service.clock.advance(30)
    secrets.append(totp_now(first["secret"], service.clock.now()))
    home = service.login(password=PASSWORD, ip=US_IP).json()
    assert home["status"] == "authenticated"
    decision_ids.append(home["decision_id"])
    secrets.append(home["token"])

    records = [read_decision(service, decision_id).text for decision_id in decision_ids]
    assert all('"decision_id"' in record for record in records)
    for record in records:
        for secret in secrets:
            assert secret not in record
        assert "alice@example.com" not in record


class HangingDecisionLog:
    async def put(self, decision_id: str, record: Mapping[str, Any], now: float) -> None:
        await asyncio.sleep(3600)

    async def get(self, decision_id: str, now: float) -> dict[str, Any] | None:
        return None

    async def close(self) -> None:
        return None


def _login_after_creating_user(client: ServiceClient) -> Any:
    created = client.post("/admin/users", json={"username": "alice", "password": PASSWORD}, headers=admin_auth())
    assert created.status_code == 201, created.text
    return client.post("/v1/login", json={"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                          "context": {"ip": US_IP, "device_id": "dev-1"}}, headers=auth())


def test_a_login_answers_when_the_decision_store_is_down(
    tmp_path: Path, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the Redis of the decision log refuses every connection, while
    # the challenge store (kept in memory here) works.
    settings = make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway(),
                     store=MemoryChallengeStore())
    caplog.set_level(logging.WARNING, logger="engine.decisions")
    with ServiceClient(app, loop_thread) as client:
        login = _login_after_creating_user(client)
        assert login.status_code == 200, login.text
        assert login.json()["status"] == "mfa_enrollment_required"
        decision_id = login.json()["decision_id"]
        unreadable = client.get(f"/admin/decisions/{decision_id}", headers=admin_auth())
    assert unreadable.status_code == 503
    assert unreadable.json()["error"] == "store_unavailable"
    assert any(record.getMessage().startswith(f"decision_record_failed decision_id={decision_id} endpoint=login")
               for record in caplog.records)


def test_a_login_waits_for_a_hanging_decision_store_no_longer_than_the_store_timeout(
    tmp_path: Path, loop_thread: LoopThread
) -> None:
    base = make_settings(tmp_path)
    settings = dataclasses.replace(base, store=StoreSettings(timeout_ms=200))
    app = create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway(),
                     decisions=HangingDecisionLog())
    with ServiceClient(app, loop_thread) as client:
        started = time.monotonic()
        login = _login_after_creating_user(client)
        elapsed = time.monotonic() - started
        assert login.status_code == 200, login.text
        assert client.get(f"/admin/decisions/{login.json()['decision_id']}", headers=admin_auth()).status_code == 404
    assert elapsed < 3


def test_a_frozen_redis_holds_an_answer_no_longer_than_the_store_timeout(tmp_path: Path, loop_thread: LoopThread) -> None:
    # A socket that completes the TCP handshake (the backlog) and never answers: a hung Redis.
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(16)
        base = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{frozen.getsockname()[1]}/0")
        settings = dataclasses.replace(base, store=dataclasses.replace(base.store, timeout_ms=200))
        app = create_app(settings, clock=FrozenClock(START), gateway=RecordingSmsGateway(),
                         store=MemoryChallengeStore())
        with ServiceClient(app, loop_thread) as client:
            started = time.monotonic()
            answer = client.post("/v1/evaluate", json=evaluate_body(), headers=auth())
            elapsed = time.monotonic() - started
    assert answer.status_code == 200
    assert "decision_id" in answer.json()
    assert elapsed < 2


@pytest.mark.parametrize(("text", "message"), [
    ("decisions: {ttl_seconds: 59}\n", "decisions.ttl_seconds: must be 60..2592000"),
    ("decisions: {ttl_seconds: 2592001}\n", "decisions.ttl_seconds: must be 60..2592000"),
    ("decisions: {max_in_memory: 0}\n", "decisions.max_in_memory: must be 1..1000000"),
    ("decisions: {max_records: 5}\n", "decisions.max_records: unknown key"),
])
def test_decision_settings_out_of_range_stop_startup(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert message in str(error.value)


def test_decision_settings_default_to_a_day_and_ten_thousand_records(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("{}\n", encoding="utf-8")
    assert load_settings(path, environ={}).decisions == DecisionsSettings(ttl_seconds=86_400, max_in_memory=10_000)
    overridden = load_settings(path, environ={"MFA_DECISIONS__TTL_SECONDS": "172800"})
    assert overridden.decisions.ttl_seconds == 172_800
