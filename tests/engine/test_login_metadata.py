"""Rules that remember, over the real HTTP stack on both challenge stores: a login's metadata
changes are saved only when it completes (after its second factor), the next login's rules see
them, the admin API shows them; a denied, failed or abandoned login saves nothing; /v1/evaluate
hands them back to the caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from engine.stores.challenges import CHALLENGE_KEY
from tests.conftest import LoopThread
from tests.engine.login_harness import REDIS_URL, DE_IP, US_IP, LoginService, start_service, totp_now
from tests.engine.service import admin_auth, auth, evaluate_body

REMEMBER = '''"""Count a user's logins in app_metadata; a second factor outside the US."""


def rule(user, context):
    visits = user.app_metadata.get("visits", 0)
    context.claims["https://example.com/visits"] = visits
    context.set_app_metadata("visits", visits + 1)
    context.setUserMetadata("last_country", context.connection.ip_country)
    if context.request.device_id == "blocked":
        context.deny("blocked device")
    if context.request.device_id == "huge":
        context.set_user_metadata("blob", "x" * 20000)
    if context.connection.ip_country != "US":
        context.multifactor.enable()
'''
VISITS = "https://example.com/visits"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param, rules={"10-remember": REMEMBER})


def stored(service: LoginService, user_id: str) -> dict[str, Any]:
    response = service.client.get(f"/admin/users/{user_id}", headers=admin_auth())
    assert response.status_code == 200, response.text
    return {"app_metadata": response.json()["app_metadata"], "user_metadata": response.json()["user_metadata"]}


def logged_in(response: Any, service: LoginService) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "authenticated", response.text
    return service.decode(response.json()["token"])


def user_with_sms(service: LoginService) -> tuple[str, str]:
    """alice, one login from home (visits 1), and a phone enrolled with that login's token."""
    user = service.create_user(app_metadata={"plan": "pro"})
    first = service.login(ip=US_IP)
    assert logged_in(first, service)[VISITS] == 0
    sms_id, _ = service.enroll_sms(first.json()["token"])
    return user["user_id"], sms_id


def test_changes_wait_for_the_factor_a_wrong_code_saves_nothing_the_right_one_saves_them(
    service: LoginService,
) -> None:
    user_id, sms_id = user_with_sms(service)
    assert stored(service, user_id) == {"app_metadata": {"plan": "pro", "visits": 1},
                                        "user_metadata": {"last_country": "US"}}

    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required"
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": sms_id})
    code = service.sms.last_code_for("+14155550123")
    assert code is not None
    wrong = "000000" if code != "000000" else "111111"
    refused = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": sms_id,
                                              "code": wrong})
    assert refused.status_code == 401
    assert stored(service, user_id) == {"app_metadata": {"plan": "pro", "visits": 1},
                                        "user_metadata": {"last_country": "US"}}

    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": sms_id, "code": code})
    assert logged_in(done, service)[VISITS] == 1
    assert stored(service, user_id) == {"app_metadata": {"plan": "pro", "visits": 2},
                                        "user_metadata": {"last_country": "DE"}}

    # The next login's rules read what the last one saved.
    assert logged_in(service.login(ip=US_IP), service)[VISITS] == 2
    assert stored(service, user_id) == {"app_metadata": {"plan": "pro", "visits": 3},
                                        "user_metadata": {"last_country": "US"}}


def test_with_an_authenticator_app_too(service: LoginService) -> None:
    user = service.create_user()
    first = logged_in(service.login(ip=US_IP), service)
    assert first[VISITS] == 0
    token = service.login(ip=US_IP).json()["token"]
    started = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": token}).json()
    confirmed = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"],
                                                        "code": totp_now(started["secret"], service.clock.now())})
    assert confirmed.status_code == 200, confirmed.text
    service.clock.advance(30)

    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_required"
    assert stored(service, user["user_id"])["app_metadata"] == {"visits": 2}
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": started["factor_id"],
                                           "code": totp_now(started["secret"], service.clock.now())})

    assert logged_in(done, service)[VISITS] == 2
    assert stored(service, user["user_id"])["app_metadata"] == {"visits": 3}


def test_an_abandoned_login_saves_nothing(service: LoginService) -> None:
    user_id, _ = user_with_sms(service)

    assert service.login(ip=DE_IP).json()["status"] == "mfa_required"
    assert service.login(ip=DE_IP).json()["status"] == "mfa_required"

    assert stored(service, user_id)["app_metadata"] == {"plan": "pro", "visits": 1}


def test_a_denied_login_saves_nothing(service: LoginService) -> None:
    user = service.create_user()

    denied = service.login(ip=US_IP, device_id="blocked")

    assert denied.status_code == 403
    assert denied.json()["error"] == "access_denied"
    assert stored(service, user["user_id"]) == {"app_metadata": {}, "user_metadata": {}}


def test_oversized_metadata_fails_the_rule_closed_a_clean_403_and_nothing_is_saved(service: LoginService) -> None:
    user = service.create_user()

    refused = service.login(ip=US_IP, device_id="huge")

    assert refused.status_code == 403
    assert refused.json()["error"] == "access_denied"
    assert "xxxx" not in refused.text
    assert stored(service, user["user_id"]) == {"app_metadata": {}, "user_metadata": {}}
    # The trace names the refusal, not the value.
    record = service.client.get(f"/admin/decisions/{refused.json()['decision_id']}", headers=admin_auth())
    assert record.status_code == 200, record.text
    errors = [rule.get("error") for rule in record.json()["rules"]]
    assert errors == ["ValueError: user_metadata would take 20031 bytes as JSON, more than 16384 (line 12)"]


def test_a_login_that_ends_by_enrolling_a_factor_saves_its_changes_then(service: LoginService) -> None:
    user = service.create_user()

    login = service.login(ip=DE_IP).json()
    assert login["status"] == "mfa_enrollment_required"
    started = service.post("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": login["enrollment_token"]}).json()
    assert stored(service, user["user_id"]) == {"app_metadata": {}, "user_metadata": {}}
    done = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"],
                                                   "code": totp_now(started["secret"], service.clock.now())})

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "authenticated"
    assert stored(service, user["user_id"]) == {"app_metadata": {"visits": 1},
                                                "user_metadata": {"last_country": "DE"}}


def test_evaluate_hands_the_changes_to_the_caller_and_none_when_denied(service: LoginService) -> None:
    body = evaluate_body(US_IP, app_metadata={"visits": 41})

    answer = service.client.post("/v1/evaluate", json=body, headers=auth()).json()
    blocked = evaluate_body(US_IP, app_metadata={"visits": 41})
    blocked["context"]["device_id"] = "blocked"
    denied = service.client.post("/v1/evaluate", json=blocked, headers=auth()).json()

    assert answer["metadata_updates"] == {"app_metadata": {"visits": 42}, "user_metadata": {"last_country": "US"}}
    assert denied["decision"] == "deny"
    assert denied["metadata_updates"] == {"app_metadata": {}, "user_metadata": {}}


def test_pending_changes_wait_in_the_challenge_as_json(service: LoginService, request: pytest.FixtureRequest) -> None:
    user_id, _ = user_with_sms(service)

    login = service.login(ip=DE_IP).json()

    if request.node.callspec.params["service"] == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        data = json.loads(client.hget(CHALLENGE_KEY.format(login["challenge_id"]), "data") or b"{}")
        client.close()
        assert data["metadata_updates"] == {"app_metadata": {"visits": 2}, "user_metadata": {"last_country": "DE"}}
    assert stored(service, user_id)["app_metadata"] == {"plan": "pro", "visits": 1}


def test_the_admin_api_holds_stored_metadata_to_the_same_16_kib(service: LoginService) -> None:
    # {"blob":"..."}: 11 bytes around the text.
    exact = service.post("/admin/users", {"username": "bob", "password": "correct horse battery staple",
                                          "user_metadata": {"blob": "x" * (16_384 - 11)}}, admin_auth())
    over = service.post("/admin/users", {"username": "carol", "password": "correct horse battery staple",
                                         "app_metadata": {"blob": "é" * 8_187}}, admin_auth())
    changed = service.client.request("PATCH", f"/admin/users/{exact.json()['user_id']}", headers=admin_auth(),
                                     json={"user_metadata": {"blob": "x" * (16_384 - 10)}})

    assert exact.status_code == 201, exact.text
    assert (over.status_code, over.json()["error"], over.json()["field"]) == (400, "invalid_request", "app_metadata")
    assert over.json()["message"] == "must be at most 16384 bytes as JSON"
    assert (changed.status_code, changed.json()["field"]) == (400, "user_metadata")


def test_a_decision_record_keeps_no_metadata_values(service: LoginService) -> None:
    user_with_sms(service)

    login = service.login(ip=DE_IP).json()
    record = service.client.get(f"/admin/decisions/{login['decision_id']}", headers=admin_auth())

    assert record.status_code == 200, record.text
    assert "metadata" not in record.text and "last_country" not in record.text and "visits" not in record.text
