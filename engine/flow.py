"""The login state machine. Today: evaluating the rules for a user and a request (`evaluate`).

    evaluate(request)
      signals.collect(user, context, geo, now)   GeoIP country, risk signals -> plain payload
      pipeline.evaluate(payload)                 rules in order, in the sandbox -> outcome
      policy.decide(outcome, enrolled, mfa)      allow | mfa (ordered factors) | deny
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from engine import policy, signals
from engine.clock import Clock
from engine.config import MfaSettings
from engine.errors import SandboxUnavailable
from engine.geo import GeoLocator
from engine.pipeline import Evaluation, Pipeline
from sandbox import errors as sandbox_errors

log = logging.getLogger("engine.flow")


@dataclass(frozen=True, slots=True)
class EvaluateRequest:
    """A validated body of POST /v1/evaluate (engine/http/schema.py)."""

    user: dict[str, Any]
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EvaluateResult:
    decision: policy.Decision
    evaluation: Evaluation


class Flow:
    def __init__(self, pipeline: Pipeline, geo: GeoLocator, clock: Clock, mfa: MfaSettings) -> None:
        self.pipeline = pipeline
        self.geo = geo
        self.clock = clock
        self.mfa = mfa

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        payload = signals.collect(request.user, request.context, self.geo, self.clock.now())
        try:
            evaluation = await self.pipeline.evaluate(payload)
        except sandbox_errors.SandboxUnavailable as exc:
            raise SandboxUnavailable("the rule sandbox is saturated; retry shortly") from exc
        decision = policy.decide(evaluation.outcome, request.user.get("factors"), self.mfa)
        log.info("evaluate decision=%s user_id=%s rule_set=%s", decision.decision, request.user["user_id"],
                 evaluation.version)
        return EvaluateResult(decision, evaluation)
