"""Decision traces: every evaluation and login decision gets an id and a record an admin can read.

The record says why a decision was made: the rule-set version, each rule's outcome, duration
and log lines, the risk signals, the decision and its reason, the factors offered and which
layer chose the default. It is built from the evaluation and the decision only, never from the
request: no password, code, secret, token, phone number or profile field is in it. Log lines
are what the rules printed (their authors' responsibility, as in the /v1/evaluate trace).

Writing a record never fails the answer, and holds it up by `store.timeout_ms` at most: the
answer waits for its record to be stored (in Redis when it is configured, where the records of
concurrent evaluations share a pipelined write), so that an id can be read, from any instance, as
soon as its answer arrives. A log that is down or slow costs a warning, and that decision's id then
reads as unknown.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from datetime import datetime
from typing import Any, Literal

from engine.pipeline import Evaluation
from engine.policy import Decision
from engine.stores.decisions import DecisionLog

log = logging.getLogger("engine.decisions")

Endpoint = Literal["evaluate", "login", "step_up"]

# secrets.token_urlsafe(16): 128 random bits in 22 URL-safe characters. Anything else is not
# one of ours and is refused before a lookup.
DECISION_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def new_decision_id() -> str:
    return secrets.token_urlsafe(16)


def is_decision_id(text: str) -> bool:
    return DECISION_ID.fullmatch(text) is not None


def build_record(decision_id: str, endpoint: Endpoint, at: datetime, user_id: str, client_id: str | None,
                 payload: dict[str, Any], evaluation: Evaluation, decision: Decision) -> dict[str, Any]:
    """`payload` is the rules' input (engine/signals.py): only its risk signals are kept."""
    context = payload["context"]
    outcome = evaluation.outcome
    record: dict[str, Any] = {
        "decision_id": decision_id,
        "time": at.isoformat(),
        "endpoint": endpoint,
        "user_id": user_id,
        "client_id": client_id,
        "rule_set": {"version": evaluation.version},
        "rules": [trace.to_plain() for trace in evaluation.trace],
        "signals": {"ip_country": context["connection"]["ip_country"], "action": context["action"],
                    **context["risk"]},
        **decision.to_plain(),
        "provider": outcome.provider,
        "failed_rules": list(outcome.failed_rules),
    }
    if outcome.provider_set_by is not None:
        record["provider_set_by"] = outcome.provider_set_by
    return record


class DecisionRecorder:
    """Hands out decision ids and keeps their records in a DecisionLog."""

    def __init__(self, decision_log: DecisionLog, *, timeout_ms: int | None) -> None:
        """`timeout_ms` bounds each write (store.timeout_ms); None only for a log kept in this
        process, whose writes never wait: the timer costs about 4 us an evaluation."""
        self.log = decision_log
        self._timeout_seconds = None if timeout_ms is None else timeout_ms / 1000

    async def record(self, endpoint: Endpoint, at: datetime, user_id: str, client_id: str | None,
                     payload: dict[str, Any], evaluation: Evaluation, decision: Decision) -> str:
        """The new decision's id; its record is written, or a warning says why not."""
        decision_id = new_decision_id()
        record = build_record(decision_id, endpoint, at, user_id, client_id, payload, evaluation, decision)
        try:
            if self._timeout_seconds is None:
                await self.log.put(decision_id, record, at.timestamp())
            else:
                async with asyncio.timeout(self._timeout_seconds):
                    await self.log.put(decision_id, record, at.timestamp())
        except Exception as exc:  # the answer matters more than its trace: never fail a login here
            log.warning("decision_record_failed decision_id=%s endpoint=%s type=%s", decision_id, endpoint,
                        type(exc).__name__)
        return decision_id

    async def find(self, decision_id: str, now: datetime) -> dict[str, Any] | None:
        """None for an unknown, expired or malformed id (malformed ones are not looked up)."""
        if not is_decision_id(decision_id):
            return None
        return await self.log.get(decision_id, now.timestamp())
