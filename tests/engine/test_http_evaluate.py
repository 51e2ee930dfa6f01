"""The HTTP contract of POST /v1/evaluate and GET /healthz, through the real ASGI stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.app import create_app
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import CA_IP, DE_IP, FR_IP, UNKNOWN_IP, US_IP, auth, evaluate_body, make_settings


@pytest.fixture(params=["inprocess", "process"])
def client(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    app = create_app(make_settings(tmp_path, isolation=request.param))
    with ServiceClient(app, loop_thread) as service:
        yield service


def test_a_login_from_home_is_allowed_with_the_roles_claim(client: ServiceClient) -> None:
    response = client.post("/v1/evaluate", json=evaluate_body(US_IP, app_metadata={"roles": ["staff", "admin"]}),
                           headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "allow"
    assert body["factors"] == []
    assert body["claims"] == {"https://mfa-engine.example/roles": ["admin", "staff"]}
    assert [t["rule"] for t in body["trace"]] == [
        "10-deny-blocked-users", "20-require-mfa-outside-home", "30-step-up-transactions",
        "40-new-device-or-country", "50-roles-claim",
    ]
    assert all(t["outcome"] == "ok" for t in body["trace"])
    assert len(body["rule_set"]["version"]) == 16


def test_canada_counts_as_home(client: ServiceClient) -> None:
    assert client.post("/v1/evaluate", json=evaluate_body(CA_IP), headers=auth()).json()["decision"] == "allow"


@pytest.mark.parametrize("ip", [DE_IP, FR_IP])
def test_a_login_from_abroad_needs_a_second_factor_authenticator_app_first(client: ServiceClient, ip: str) -> None:
    body = client.post("/v1/evaluate", json=evaluate_body(ip, factors=["sms", "otp"]), headers=auth()).json()
    assert body["decision"] == "mfa"
    assert body["factors"] == [{"type": "otp", "default": True}, {"type": "sms", "default": False}]
    assert body["default_factor_source"] == "rule"
    country = "DE" if ip == DE_IP else "FR"
    assert body["trace"][1]["logs"] == [f"login from {country} needs a second factor"]


def test_an_address_geoip_does_not_know_needs_a_second_factor(client: ServiceClient) -> None:
    body = client.post("/v1/evaluate", json=evaluate_body(UNKNOWN_IP), headers=auth()).json()
    assert body["decision"] == "mfa"
    assert body["trace"][1]["logs"] == ["login from an unknown country needs a second factor"]


def test_factors_the_user_has_not_enrolled_are_dropped(client: ServiceClient) -> None:
    body = client.post("/v1/evaluate", json=evaluate_body(DE_IP, factors=["sms"]), headers=auth()).json()
    assert body["factors"] == [{"type": "sms", "default": True}]


def test_mfa_without_any_enrolled_factor_asks_for_enrollment(client: ServiceClient) -> None:
    body = client.post("/v1/evaluate", json=evaluate_body(DE_IP, factors=[]), headers=auth()).json()
    assert body["decision"] == "mfa"
    assert body["enrollment_required"] is True
    assert body["factors"] == []


def test_a_new_device_needs_a_second_factor_and_the_trace_says_why(client: ServiceClient) -> None:
    request = evaluate_body(US_IP)
    request["context"]["device_id"] = "dev-2"
    body = client.post("/v1/evaluate", json=request, headers=auth()).json()
    assert body["decision"] == "mfa"
    assert body["trace"][3]["logs"] == ["risk signals: new device"]


def test_a_blocked_user_is_denied_and_later_rules_do_not_run(client: ServiceClient) -> None:
    body = client.post("/v1/evaluate", json=evaluate_body(US_IP, app_metadata={"blocked": True}),
                       headers=auth()).json()
    assert body["decision"] == "deny"
    assert body["reason"] == "this account is blocked; contact your administrator"
    assert body["claims"] == {}
    assert [t["rule"] for t in body["trace"]] == ["10-deny-blocked-users"]


def test_a_transaction_needs_a_fresh_authenticator_code(client: ServiceClient) -> None:
    request = evaluate_body(US_IP)
    request["context"]["action"] = "transaction"
    body = client.post("/v1/evaluate", json=request, headers=auth()).json()
    assert body["decision"] == "mfa"
    assert body["factors"] == [{"type": "otp", "default": True}]


@pytest.mark.parametrize("headers", [{}, auth("wrong-key-0123456789abcdef"), {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}])
def test_evaluate_needs_a_valid_api_key(client: ServiceClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/evaluate", json=evaluate_body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "user"),
        ({"user": {}}, "user.user_id"),
        ({"user": {"user_id": 7}}, "user.user_id"),
        ({"user": {"user_id": "u", "logins_count": -1}}, "user.logins_count"),
        ({"user": {"user_id": "u", "logins_count": True}}, "user.logins_count"),
        ({"user": {"user_id": "u", "factors": ["push"]}}, "user.factors[0]"),
        ({"user": {"user_id": "u", "app_metadata": []}}, "user.app_metadata"),
        ({"user": {"user_id": "u", "created_at": "yesterday"}}, "user.created_at"),
        ({"user": {"user_id": "u", "created_at": "2026-01-01T00:00:00"}}, "user.created_at"),
        ({"user": {"user_id": "u", "phone_number": "555-1234"}}, "user.phone_number"),
        ({"user": {"user_id": "u", "shoe_size": 44}}, "user.shoe_size"),
        ({"user": {"user_id": "u"}, "context": {"ip": "999.1.1.1"}}, "context.ip"),
        ({"user": {"user_id": "u"}, "context": {"action": "DROP TABLE"}}, "context.action"),
        ({"user": {"user_id": "u"}, "context": []}, "context"),
        ({"user": {"user_id": "u"}, "extra": 1}, "extra"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field(client: ServiceClient, body: dict[str, object], field: str) -> None:
    response = client.post("/v1/evaluate", json=body, headers=auth())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", b"\xff\xfe", b"[" * 2000 + b"]" * 2000])
def test_a_body_that_is_not_a_json_object_gets_a_400(client: ServiceClient, raw: bytes) -> None:
    response = client.post("/v1/evaluate", content=raw, headers=auth() | {"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_json", "invalid_request"}


def test_a_body_over_the_limit_gets_a_413(client: ServiceClient) -> None:
    body = evaluate_body(user_metadata={"blob": "x" * 70_000})
    response = client.post("/v1/evaluate", json=body, headers=auth())
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_a_streamed_body_over_the_limit_gets_a_413_without_a_content_length(client: ServiceClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"user": {"user_id": "u", "user_metadata": {"blob": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}}'

    response = client.post("/v1/evaluate", content=chunks(), headers=auth() | {"content-type": "application/json"})
    assert response.status_code == 413


def test_a_body_that_is_not_json_media_gets_a_415(client: ServiceClient) -> None:
    response = client.post("/v1/evaluate", content=b"user=alice", headers=auth() | {
        "content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_unknown_routes_and_methods_answer_with_json_errors(client: ServiceClient) -> None:
    assert client.get("/v1/nothing").json()["error"] == "not_found"
    response = client.get("/v1/evaluate")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_healthz_reports_the_rule_set_version_and_the_sandbox_pool(client: ServiceClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert len(body["rule_set"]["version"]) == 16
    assert body["rule_set"]["rules"][0] == "10-deny-blocked-users"
    assert body["sandbox"]["isolation"] in {"inprocess", "process"}
    assert body["sandbox"]["healthy"] is True
