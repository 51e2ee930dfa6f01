"""Fair shares of the sandbox (issue 7, item 6): one user's slow rules cannot take every worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.app import create_app
from engine.errors import TooManyEvaluations
from engine.fairness import FairShares
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import US_IP, auth, evaluate_body, make_settings

# The user "slow" has rules that take a few hundred milliseconds (6 million steps), longer than
# the queue timeout; everyone else's are instant.
SLOW_FOR_ONE_USER = '''
def rule(user, context):
    if user.user_id == "slow":
        spin = 0
        for outer in range(60):
            for inner in range(100000):
                spin = spin + inner
'''


def test_a_share_is_refused_past_its_bound_and_given_back_whatever_happens() -> None:
    shares = FairShares(per_user=1, per_client=2)
    with shares.hold("alice", "app"):
        with pytest.raises(TooManyEvaluations):
            with shares.hold("alice", "other-app"):
                pass
        with shares.hold("bob", "app"):
            with pytest.raises(TooManyEvaluations):
                with shares.hold("carol", "app"):
                    pass
    with pytest.raises(RuntimeError):
        with shares.hold("alice", "app"):
            raise RuntimeError("the evaluation failed")
    assert shares.in_progress() == 0
    with shares.hold("alice", None), shares.hold(None, None):
        pass


def test_an_address_bound_holds_whatever_user_and_client_ids_the_caller_picks() -> None:
    shares = FairShares(per_user=1, per_client=0, per_address=1)
    with shares.hold("user-1", "app", "203.0.113.7"):
        with pytest.raises(TooManyEvaluations):
            with shares.hold("user-2", "other-app", "203.0.113.7"):
                pass
        with pytest.raises(TooManyEvaluations):  # the same client, another spelling of its address
            with shares.hold("user-3", None, "::ffff:203.0.113.7"):
                pass
        with shares.hold("user-4", None, "203.0.113.8"):
            pass
    with shares.hold("user-5", None, "2001:db8::1"):
        with pytest.raises(TooManyEvaluations):  # IPv6 is one subscriber per /64
            with shares.hold("user-6", None, "2001:db8::2"):
                pass


def test_requests_without_a_client_id_share_one_client_bucket() -> None:
    shares = FairShares(per_user=0, per_client=1)
    with shares.hold("user-1", None):
        with pytest.raises(TooManyEvaluations):
            with shares.hold("user-2", ""):
                pass


def test_a_bound_of_zero_is_no_bound() -> None:
    shares = FairShares(per_user=0, per_client=0)
    with shares.hold("alice", "app"), shares.hold("alice", "app"):
        assert shares.in_progress() == 0


@pytest.fixture
def client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    # Process isolation: in-process evaluations run one at a time on the event loop, so they
    # never overlap and a share is never contended.
    settings = make_settings(tmp_path, {"10-slow": SLOW_FOR_ONE_USER}, isolation="process",
                             sandbox={"workers": 2, "queue_timeout_ms": 300, "rule_timeout_ms": 3000,
                                      "pipeline_timeout_ms": 3000, "max_steps": 20_000_000})
    with ServiceClient(create_app(settings), loop_thread) as service:
        yield service


def test_one_user_flooding_the_sandbox_gets_429s_and_everyone_else_is_still_served(client: ServiceClient) -> None:
    flood = [evaluate_body(US_IP, user_id="slow")] * 8
    others = [evaluate_body(US_IP, user_id=f"user-{number}") for number in range(4)]

    answers = client.post_concurrently("/v1/evaluate", flood + others, auth())

    flooded, served = answers[:len(flood)], answers[len(flood):]
    assert [response.status_code for response in served] == [200] * len(others)
    assert sorted(response.status_code for response in flooded) == [200] + [429] * (len(flood) - 1)
    refused = next(response for response in flooded if response.status_code == 429)
    assert refused.json()["error"] == "too_many_evaluations"
    assert refused.headers["Retry-After"] == "1"


@pytest.fixture
def address_bound_client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    settings = make_settings(tmp_path, {"10-slow": SLOW_FOR_ONE_USER.replace('user.user_id == "slow"',
                                                                               'user.user_id.startswith("slow")')},
                             isolation="process",
                             sandbox={"workers": 2, "queue_timeout_ms": 300, "rule_timeout_ms": 3000,
                                      "pipeline_timeout_ms": 3000, "max_steps": 20_000_000,
                                      "max_concurrent_per_address": 1})
    with ServiceClient(create_app(settings), loop_thread) as service:
        yield service


def test_a_flood_with_a_new_user_id_each_time_is_held_by_the_address_bound(
        address_bound_client: ServiceClient) -> None:
    flood = [evaluate_body("198.51.100.9", user_id=f"slow-{number}") for number in range(8)]
    others = [evaluate_body(f"203.0.113.{10 + number}", user_id=f"user-{number}") for number in range(4)]

    answers = address_bound_client.post_concurrently("/v1/evaluate", flood + others, auth())

    assert [response.status_code for response in answers[len(flood):]] == [200] * len(others)
    assert sorted(response.status_code for response in answers[:len(flood)]) == [200] + [429] * (len(flood) - 1)
