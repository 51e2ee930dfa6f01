"""POST /v1/evaluate with the shipped rules: what it asks of a user is never weaker than a rule asked.

Applications that run their own login act on this answer, so it must carry the same
guarantees as /v1/login (issue 6, items 2 and 11). Both runners.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.app import create_app
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import US_IP, auth, evaluate_body, make_settings


@pytest.fixture(params=["inprocess", "process"])
def client(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    app = create_app(make_settings(tmp_path, isolation=request.param))
    with ServiceClient(app, loop_thread) as service:
        yield service


def evaluate(client: ServiceClient, factors: list[str], **context: Any) -> dict[str, Any]:
    request = evaluate_body(US_IP, factors=factors)
    request["context"].update(context)
    response = client.post("/v1/evaluate", json=request, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_user_who_has_a_factor_is_never_sent_straight_to_enrollment(client: ServiceClient) -> None:
    body = evaluate(client, ["sms"], action="transaction")  # rule 30 asks for the authenticator
    assert body["decision"] == "mfa"
    assert body["reason"] == "verify_then_enroll"
    assert body["enrollment_required"] is False
    assert body["factors"] == [{"type": "sms", "default": True}]
    assert body["enroll_after"] == ["otp"]


def test_a_new_device_does_not_widen_the_authenticator_a_transaction_asked_for(client: ServiceClient) -> None:
    body = evaluate(client, ["otp", "sms"], action="transaction", device_id="dev-2")  # rules 30 and 40
    assert body["decision"] == "mfa"
    assert body["factors"] == [{"type": "otp", "default": True}]
    assert body["provider"] == "otp"
    assert body["provider_set_by"] == "30-step-up-transactions"


def test_without_a_restriction_the_answer_says_any_and_names_no_rule(client: ServiceClient) -> None:
    body = evaluate(client, ["otp", "sms"], device_id="dev-2")
    assert (body["provider"], body["provider_set_by"], body["enroll_after"]) == ("any", None, [])
