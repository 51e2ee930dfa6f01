"""GET /metrics (issue 12): its token contract, and counters that move with what the service does.

The exposition is read back with prometheus_client's own parser after real logins through the
HTTP stack, so a name, a label or a batch that never reaches the text fails here.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.app import create_app
from engine.config import MetricsSettings
from engine.errors import StoreUnavailable
from engine.metrics import RULE_BUCKETS_US, Metrics, add_observations
from engine.stores.challenges import ChallengeStore, Counter
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import (
    ADMIN_TOKEN,
    API_KEY,
    METRICS_TOKEN,
    admin_auth,
    auth,
    evaluate_body,
    make_settings,
    metrics_auth,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
README = Path(__file__).resolve().parents[2] / "README.md"


def scrape(client: ServiceClient) -> Samples:
    response = client.get("/metrics", headers=metrics_auth())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, "memory")


# The contract: no token configured, no endpoint; configured, nothing but that token opens it.

def test_metrics_without_a_token_configured_is_a_404_whatever_is_presented(tmp_path: Path,
                                                                           loop_thread: LoopThread) -> None:
    settings = dataclasses.replace(make_settings(tmp_path, {}), metrics=MetricsSettings(token=""))
    with ServiceClient(create_app(settings), loop_thread) as client:
        for headers in ({}, metrics_auth(), metrics_auth(""), admin_auth()):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404
            assert response.json() == {"error": "not_found", "message": "no such endpoint"}
            assert response.headers["x-request-id"]


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", f"Bearer {METRICS_TOKEN}x",
                                           f"Bearer {METRICS_TOKEN[:-1]}", f"Basic {METRICS_TOKEN}",
                                           f"Bearer {API_KEY}", f"Bearer {ADMIN_TOKEN}"])
def test_metrics_refuses_anything_but_its_own_token_with_a_json_401(service: LoginService,
                                                                     authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = service.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert "metrics.token" in response.json()["message"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-request-id"]
    assert "mfa_" not in response.text


def test_metrics_with_its_token_is_the_prometheus_text_format(service: LoginService) -> None:
    response = service.client.get("/metrics", headers={"Authorization": f"bearer \t{METRICS_TOKEN} "})
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"mfa_logins", "mfa_rule_duration_seconds", "mfa_sandbox_worker_kills", "mfa_store_errors"} <= names
    assert "_created" not in response.text  # one process or several: the same series


# What the counters say after the service did something.

def test_a_login_story_moves_the_login_verify_challenge_sms_and_rule_counters(service: LoginService) -> None:
    before = scrape(service.client)
    service.create_user()
    assert service.login(password="wrong password").status_code == 401
    first = service.first_login_enrolling_otp()  # mfa_enrollment_required
    service.enroll_sms(first["token"])  # one SMS, to a US number
    login = service.login(ip=DE_IP).json()  # outside home: a factor
    assert login["status"] == "mfa_required", login
    otp = next(f for f in login["factors"] if f["type"] == "otp")
    sms = next(f for f in login["factors"] if f["type"] == "sms")
    assert service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"],
                                              "factor_id": otp["id"]}).status_code == 200
    assert service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"],
                                              "factor_id": sms["id"]}).status_code == 200
    code = totp_now(first["secret"], service.clock.now())
    wrong = "000000" if code != "000000" else "111111"
    assert service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": otp["id"],
                                           "code": wrong}).status_code == 401
    assert service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": otp["id"],
                                           "code": code}).status_code == 200
    assert service.post("/v1/mfa/challenge", {"challenge_id": "no-such-challenge-00", "factor_id": otp["id"]},
                        ).status_code == 401

    after = scrape(service.client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mfa_logins_total", outcome="invalid_credentials") == 1
    assert moved("mfa_logins_total", outcome="mfa_enrollment_required") == 1
    assert moved("mfa_logins_total", outcome="mfa_required") == 1
    assert moved("mfa_logins_total", outcome="authenticated") == 0
    assert moved("mfa_verifications_total", factor="otp", result="invalid") == 1
    assert moved("mfa_verifications_total", factor="otp", result="ok") == 1
    assert moved("mfa_challenges_total", factor="otp", result="ready") == 1
    assert moved("mfa_challenges_total", factor="sms", result="sent") == 1
    assert moved("mfa_challenges_total", factor="unknown", result="invalid_challenge") == 1
    assert moved("mfa_sms_sent_total", gateway="recording", country="US") == 2  # enrollment + challenge
    # Two logins reached the rules (the wrong password did not): every repository rule ran twice.
    for rule in ("10-deny-blocked-users", "20-require-mfa-outside-home", "50-roles-claim"):
        assert moved("mfa_rule_duration_seconds_count", rule=rule) == 2
        assert moved("mfa_rule_duration_seconds_bucket", rule=rule, le="+Inf") == 2
        assert moved("mfa_rule_duration_seconds_sum", rule=rule) > 0
    assert not [key for key in after if key[0] == "mfa_rule_failures_total"]


def test_a_password_lockout_is_counted_with_its_login(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in start_service(tmp_path, loop_thread, "memory", login={"failures_per_username": 2}):
        service.create_user()
        answers = [service.login(password="wrong password").status_code for _ in range(3)]
        assert answers == [401, 401, 429]
        samples = scrape(service.client)
        assert value(samples, "mfa_lockouts_total", kind="password") == 1
        assert value(samples, "mfa_logins_total", outcome="too_many_attempts") == 1
        assert value(samples, "mfa_logins_total", outcome="invalid_credentials") == 2


def test_a_factor_lockout_is_counted_at_the_verify_it_refuses(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in start_service(tmp_path, loop_thread, "memory", mfa={"lockout_threshold": 2}):
        service.create_user()
        first = service.first_login_enrolling_otp()
        login = service.login(ip=DE_IP).json()
        otp = next(f for f in login["factors"] if f["type"] == "otp")
        wrong = "000000" if totp_now(first["secret"], service.clock.now()) != "000000" else "111111"
        statuses = [service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": otp["id"],
                                                    "code": wrong}).status_code for _ in range(3)]
        assert statuses == [401, 429, 429]  # the failure that reaches the threshold is answered locked
        samples = scrape(service.client)
        assert value(samples, "mfa_lockouts_total", kind="factor") == 2
        assert value(samples, "mfa_verifications_total", factor="otp", result="locked") == 2
        assert value(samples, "mfa_verifications_total", factor="otp", result="invalid") == 1


class UnavailableStore:
    """The real store, except that rate-limit counters cannot be reached (Redis down)."""

    def __init__(self, store: ChallengeStore) -> None:
        self._store = store

    async def take(self, counters: list[Counter], timestamp: float) -> int:
        raise StoreUnavailable("the challenge store is unavailable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_store_that_does_not_answer_is_counted(tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in start_service(tmp_path, loop_thread, "memory", wrap_store=UnavailableStore):  # type: ignore[arg-type]
        service.create_user()
        response = service.login()
        assert response.status_code == 503 and response.json()["error"] == "store_unavailable"
        samples = scrape(service.client)
        assert value(samples, "mfa_store_errors_total") == 1
        assert value(samples, "mfa_logins_total", outcome="store_unavailable") == 1


CATASTROPHIC = '"""Backtracks for ever in C, out of reach of the step budget."""\n\n\ndef rule(user, context):\n' \
               '    re.match("(a+)+b", "a" * 40)\n'


def test_a_killed_worker_a_failed_rule_and_the_queue_wait_are_counted(tmp_path: Path,
                                                                         loop_thread: LoopThread) -> None:
    settings = make_settings(tmp_path, {"10-hang": CATASTROPHIC}, isolation="process", sandbox={"workers": 1})
    with ServiceClient(create_app(settings), loop_thread) as client:
        answer = client.post("/v1/evaluate", json=evaluate_body(), headers=auth())
        assert answer.status_code == 200 and answer.json()["decision"] == "deny", answer.text
        samples = scrape(client)
    assert value(samples, "mfa_sandbox_worker_kills_total") == 1
    assert value(samples, "mfa_rule_failures_total", rule="10-hang", outcome="killed") == 1
    assert value(samples, "mfa_rule_duration_seconds_count", rule="10-hang") == 1
    assert value(samples, "mfa_rule_duration_seconds_sum", rule="10-hang") >= 0.3  # past the rule's deadline
    assert value(samples, "mfa_sandbox_queue_seconds_count") == 1


# The batching writes what observe() would have written.

def test_batched_observations_expose_exactly_what_observing_each_value_does() -> None:
    generator = random.Random(12)
    values = [generator.choice([0, 1, 10, 11, 25, 999, 1_000, 1_001, 2_000_000]) for _ in range(200)]
    values += [generator.randrange(0, 3_000_000) for _ in range(2_000)]
    registries = CollectorRegistry(), CollectorRegistry()
    observed, batched = (Histogram("h_seconds", "h", ["rule"], buckets=[b / 1e6 for b in RULE_BUCKETS_US],
                                   registry=registry).labels("10-a") for registry in registries)
    for duration_us in values:
        observed.observe(duration_us / 1e6)
    add_observations(batched, RULE_BUCKETS_US, list(values[:700]), scale=1e-6)
    add_observations(batched, RULE_BUCKETS_US, list(values[700:]), scale=1e-6)

    def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        text = generate_latest(registry).decode()
        return [(s.name, s.labels, round(s.value, 6)) for f in text_string_to_metric_families(text)
                for s in f.samples if not s.name.endswith("_created")]

    assert samples(registries[0]) == samples(registries[1])


def test_a_scrape_sees_the_evaluations_just_made_and_batches_stay_bounded() -> None:
    from sandbox.runner import ProgramTrace

    metrics = Metrics()
    trace = (ProgramTrace("10-a", "ok", 40, None, ()), ProgramTrace("20-b", "error", 7, "boom", ()))
    for _ in range(600):
        metrics.observe_trace(trace)
    assert len(metrics._traces) < 256  # written in batches as they fill
    metrics.flush()
    text = metrics.exposition().decode()
    parsed = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text)
              for s in f.samples}
    assert parsed[("mfa_rule_duration_seconds_count", (("rule", "10-a"),))] == 600
    assert parsed[("mfa_rule_duration_seconds_bucket", (("le", "5e-05"), ("rule", "10-a")))] == 600
    assert parsed[("mfa_rule_duration_seconds_bucket", (("le", "2.5e-05"), ("rule", "10-a")))] == 0
    assert parsed[("mfa_rule_failures_total", (("outcome", "error"), ("rule", "20-b")))] == 600


def test_a_scrape_under_workers_lists_every_family_before_it_has_counted(tmp_path: Path) -> None:
    def families(metrics: Metrics) -> dict[str, str]:
        return {family.name: family.type for family in text_string_to_metric_families(metrics.exposition().decode())}

    # The files of `serve --workers` processes that have not counted anything yet (an empty directory).
    several = families(Metrics(multiprocess_dir=str(tmp_path)))
    assert several == families(Metrics()) and len(several) == 11, several


def test_every_metric_is_documented_in_the_deployment_guide_and_the_readme(service: LoginService) -> None:
    text = service.client.get("/metrics", headers=metrics_auth()).text
    names = {family.name + ("_total" if family.type == "counter" else "")
             for family in text_string_to_metric_families(text)}
    assert len(names) == 11
    for document in (DOCS, README):
        written = document.read_text(encoding="utf-8")
        assert not [name for name in sorted(names) if f"`{name}`" not in written], document


def test_traces_of_two_rule_sets_in_one_batch_are_counted_by_rule() -> None:
    from sandbox.runner import ProgramTrace

    metrics = Metrics()
    old = (ProgramTrace("10-a", "ok", 40, None, ()), ProgramTrace("20-b", "ok", 7, None, ()))
    new = (ProgramTrace("10-a", "ok", 30, None, ()), ProgramTrace("30-c", "ok", 3000, None, ()))
    for _ in range(5):
        metrics.observe_trace(old)
    metrics.observe_trace(new)  # a swap mid-batch: not every trace names the same rules
    metrics.flush()
    parsed = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(metrics.exposition().decode()) for s in f.samples}
    counts = {rule: parsed[("mfa_rule_duration_seconds_count", (("rule", rule),))] for rule in ("10-a", "20-b", "30-c")}
    assert counts == {"10-a": 6, "20-b": 5, "30-c": 1}
    assert parsed[("mfa_rule_duration_seconds_sum", (("rule", "10-a"),))] == pytest.approx(230e-6)
