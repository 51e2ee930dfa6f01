"""Reload under load: concurrent /v1/evaluate while uploads and rollbacks repeat through the admin API.

Every evaluation must answer 2xx and name a version that was active at some moment between its
request and its answer. The windows come from the admin answers: activation k (`version`,
`previous_version`) may have swapped in as early as its request was sent and was certainly
replaced once activation k+1's answer arrived.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine.app import create_app
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import admin_auth, auth, evaluate_body, make_settings

CONCURRENCY = 8
MAX_EVALUATIONS = 3000  # the bound of the load generator, whatever the speed of the machine
CHANGES = 15  # each an upload then a rollback
LOG_ONLY = '"""Say hello {index}."""\n\n\ndef rule(user, context):\n    context.log("hello {index}")\n'


@dataclass(frozen=True, slots=True)
class Timed:
    sent: float
    answered: float
    status: int
    version: str | None
    previous_version: str | None = None


def was_active(version: str | None, sent: float, answered: float, initial: str, changes: list[Timed]) -> bool:
    """True when `version` was active at some moment of [sent, answered] (see the module docstring)."""
    windows = [(float("-inf"), changes[0].answered if changes else float("inf"), initial)]
    for index, change in enumerate(changes):
        ends = changes[index + 1].answered if index + 1 < len(changes) else float("inf")
        windows.append((change.sent, ends, change.version or ""))
    return any(name == version and start <= answered and sent <= end for start, end, name in windows)


async def evaluate_until(http: httpx.AsyncClient, done: asyncio.Event, answers: list[Timed]) -> None:
    while not done.is_set() and len(answers) < MAX_EVALUATIONS:
        sent = time.monotonic()
        response = await http.post("/v1/evaluate", json=evaluate_body(), headers=auth())
        version = response.json().get("rule_set", {}).get("version") if response.status_code == 200 else None
        answers.append(Timed(sent, time.monotonic(), response.status_code, version))
        # In-process rules over ASGITransport never suspend: without this one task would run the
        # whole bound before the changes got a turn (a socket would interleave them).
        await asyncio.sleep(0)


async def change_repeatedly(http: httpx.AsyncClient, initial: str) -> list[Timed]:
    changes = []
    for index in range(CHANGES):
        for method, path, body in (("PUT", "/admin/rules/60-log", {"source": LOG_ONLY.format(index=index)}),
                                   ("POST", "/admin/rules/rollback", {"version": initial})):
            sent = time.monotonic()
            response = await http.request(method, path, json=body, headers=admin_auth())
            answer = response.json()
            changes.append(Timed(sent, time.monotonic(), response.status_code, answer.get("version"),
                                 answer.get("previous_version")))
            await asyncio.sleep(0.01)  # let evaluations land between the two changes of a pair
    return changes


@pytest.mark.parametrize("isolation", ["inprocess", pytest.param("process", marks=pytest.mark.slow)])
def test_evaluations_under_repeated_changes_all_answer_on_the_version_active_then(
        tmp_path: Path, loop_thread: LoopThread, isolation: str) -> None:
    # A load generator is one user: the per-user fair share (default 1 at a time) would answer 429.
    settings = make_settings(tmp_path, isolation=isolation, sandbox={"max_concurrent_per_user": 0})
    with ServiceClient(create_app(settings), loop_thread) as service:
        initial = service.get("/admin/rules", headers=admin_auth()).json()["version"]

        async def run() -> tuple[list[Timed], list[Timed]]:
            answers: list[Timed] = []
            done = asyncio.Event()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                                         base_url="http://engine.test") as http:
                load = [asyncio.create_task(evaluate_until(http, done, answers)) for _ in range(CONCURRENCY)]
                try:
                    changes = await change_repeatedly(http, initial)
                finally:
                    done.set()
                    await asyncio.gather(*load)
            return answers, changes

        answers, changes = loop_thread.call(run(), timeout=120)

    assert [change.status for change in changes] == [200] * len(changes)
    chain = [initial] + [change.version for change in changes]
    assert [change.previous_version for change in changes] == chain[:-1]  # one serial history, nothing lost
    assert len({change.version for change in changes}) == CHANGES + 1  # every upload was a new version
    assert len(answers) >= 100, "the load generator barely ran"
    assert [answer.status for answer in answers if not 200 <= answer.status < 300] == []
    stray = [answer for answer in answers
             if not was_active(answer.version, answer.sent, answer.answered, initial, changes)]
    assert stray == []
    assert len({answer.version for answer in answers}) >= 3, "evaluations did not span the changes"


def test_the_window_check_refuses_a_version_outside_its_window() -> None:
    changes = [Timed(1.0, 2.0, 200, "b", "a"), Timed(3.0, 4.0, 200, "a", "b")]
    assert was_active("a", 0.0, 0.5, "a", changes)
    assert was_active("b", 1.5, 1.6, "a", changes)
    assert not was_active("b", 4.5, 5.0, "a", changes)  # replaced by the rollback answered at 4.0
    assert not was_active("a", 2.1, 2.9, "a", changes)  # between b's answer and the rollback's request
    assert not was_active("c", 0.0, 9.0, "a", changes)
