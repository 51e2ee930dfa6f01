"""The login state machine: evaluate, login (password, rules, decision), challenge, verify.

    login(username, password, client_id, context)
      directory.find_login + passwords.verify        argon2id; the same cost for unknown users
      signals.collect(user, context, geo, now)       GeoIP country, history, risk signals
      pipeline.evaluate(payload)                     the rules, in the sandbox
      policy.decide(outcome, enrolled, mfa)          allow | mfa | deny
      -> Authenticated | MfaRequired (a challenge in the store) | EnrollmentRequired
    challenge(challenge_id, factor_id)               SMS: a code generated, hashed, stored, sent
    verify(challenge_id, factor_id, code)            one atomic store step -> Authenticated, or, when
                                                     the requirement is a type the user lacks
                                                     (`verify_then_enroll`), EnrollmentRequired bound
                                                     to this verified login

A user who has a factor is never handed an enrollment token on the password alone: the
token a login issues to such a user always records (in its `amr`) the factor passed first.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from engine import offers, policy, remembered, signals, throttle
from engine.audit_trail import AuditTrail
from engine.clock import Clock
from engine.config import MfaSettings, Settings
from engine.crypto import DecryptionError, Keyring
from engine.decisions import DecisionRecorder
from engine.errors import (
    AccessDenied,
    EngineError,
    FactorUnavailable,
    InvalidChallenge,
    InvalidCode,
    InvalidCredentials,
    SandboxUnavailable,
    TooManyAttempts,
)
from engine.factors import recovery, sms, totp
from engine.geo import GeoLocator
from engine.metrics import Metrics
from engine.passwords import PasswordHasher
from engine.pipeline import Evaluation, Pipeline
from engine.request_context import note_user
from engine.sessions import (
    PASSWORD_METHOD, STEP_UP, Authenticated, Sessions, after_factor, login_data, step_up_data,
)
from engine.sms.sender import SmsSender
from engine.stores import login_events
from engine.stores.challenges import Attempt, Challenge, ChallengeFactor, ChallengeStore
from engine.stores.directory import FactorProof, FactorRecord, UserDirectory, UserRecord
from sandbox import errors as sandbox_errors

log = logging.getLogger("engine.flow")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class EvaluateRequest:
    """A validated body of POST /v1/evaluate (engine/http/schema.py)."""

    user: dict[str, Any]
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EvaluateResult:
    decision: policy.Decision
    evaluation: Evaluation
    decision_id: str


@dataclass(frozen=True, slots=True)
class LoginRequest:
    username: str
    password: str = field(repr=False)
    client_id: str
    context: dict[str, Any]
    remember_token: str | None = field(default=None, repr=False)  # engine/remembered.py


@dataclass(frozen=True, slots=True)
class MfaRequired:
    challenge_id: str
    expires_in: int
    offers: tuple[offers.Offer, ...]
    default_source: str | None
    decision_id: str | None = None  # set on the answer of /v1/login, not on a verify's follow-up
    required_by: tuple[str, ...] | None = None  # the layers that required the factor (/v1/login)

    def to_plain(self) -> dict[str, Any]:
        plain = {"status": "mfa_required", "challenge_id": self.challenge_id, "expires_in": self.expires_in,
                 "factors": [offer.to_plain(index == 0) for index, offer in enumerate(self.offers)],
                 "default_factor_source": self.default_source}
        if self.required_by is not None:
            plain["required_by"] = list(self.required_by)
        return plain if self.decision_id is None else plain | {"decision_id": self.decision_id}


@dataclass(frozen=True, slots=True)
class EnrollmentRequired:
    enrollment_token: str
    expires_in: int
    factors_allowed: tuple[str, ...]
    decision_id: str | None = None  # set on the answer of /v1/login, not on a verify's follow-up
    required_by: tuple[str, ...] | None = None  # the layers that required the factor (/v1/login)

    def to_plain(self) -> dict[str, Any]:
        plain = {"status": "mfa_enrollment_required", "enrollment_token": self.enrollment_token,
                 "expires_in": self.expires_in, "factors_allowed": list(self.factors_allowed)}
        if self.required_by is not None:
            plain["required_by"] = list(self.required_by)
        return plain if self.decision_id is None else plain | {"decision_id": self.decision_id}


@dataclass(frozen=True, slots=True)
class ChallengeStarted:
    factor_id: str
    type: str
    sent: bool

    def to_plain(self) -> dict[str, Any]:
        return {"factor_id": self.factor_id, "type": self.type, "sent": self.sent}


@dataclass(frozen=True, slots=True)
class StepUpRequest:
    """A validated body of POST /v1/step-up (engine/http/schema.py)."""

    user_token: str = field(repr=False)
    action: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StepUpOk:
    """The session is fresh enough for the action: nothing more to pass."""

    def to_plain(self) -> dict[str, Any]:
        return {"status": "ok"}


# The key under which an enrollment token's data holds the types it may enroll.
FACTORS_ALLOWED = "factors_allowed"


def new_challenge_id() -> str:
    return secrets.token_urlsafe(16)  # 128 bits


class Flow:
    def __init__(self, settings: Settings, pipeline: Pipeline, geo: GeoLocator, clock: Clock, *,
                 directory: UserDirectory, store: ChallengeStore, passwords: PasswordHasher, keyring: Keyring,
                 sessions: Sessions, sms_sender: SmsSender, decisions: DecisionRecorder, metrics: Metrics,
                 audit: AuditTrail) -> None:
        self.settings = settings
        self.mfa = settings.mfa
        self.pipeline = pipeline
        self.geo = geo
        self.clock = clock
        self.directory = directory
        self.store = store
        self.passwords = passwords
        self.keyring = keyring
        self.sessions = sessions
        self.sms_sender = sms_sender
        self.decisions = decisions
        self.metrics = metrics
        self.audit = audit
        self.remembered = remembered.RememberedBrowsers(directory, keyring, settings.mfa)

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        note_user(request.user["user_id"])
        now = self.clock.now()
        collected = signals.collect(request.user, request.context, self.geo, now, self.mfa,
                                    signals.request_history(request.user, now))
        payload = collected.payload
        evaluation = await self._run_rules(payload)
        decision = policy.decide(evaluation.outcome, request.user.get("factors"), self.mfa, collected.triggered,
                                 action=payload["context"]["action"])
        decision_id = await self.decisions.record("evaluate", now, request.user["user_id"],
                                                  request.context.get("client_id"), payload, evaluation, decision)
        log.info("evaluate decision=%s user_id=%s rule_set=%s decision_id=%s", decision.decision,
                 request.user["user_id"], evaluation.version, decision_id)
        return EvaluateResult(decision, evaluation, decision_id)

    async def login(self, request: LoginRequest) -> Authenticated | MfaRequired | EnrollmentRequired:
        try:
            answer = await self._login(request)
        except EngineError as exc:
            self.metrics.logins.inc(exc.code)
            raise
        self.metrics.logins.inc(_status_of(answer))
        return answer

    async def _login(self, request: LoginRequest) -> Authenticated | MfaRequired | EnrollmentRequired:
        now = self.clock.now()
        ip = request.context.get("ip")
        user, password_hash = await self._check_password(request, ip, now)
        note_user(user.user_id)

        factors = await self.directory.list_factors(user.user_id)
        codes_left = await self.directory.recovery_codes_left(user.user_id)
        enrolled = offers.enrolled_types(user, factors, codes_left)
        summary = await self.directory.login_summary(user.user_id, now - timedelta(days=_history_days(self.mfa)))
        # The login's own methods: the password, passed now (the body cannot carry any: schema.py).
        own = {"client_id": request.client_id,
               "authentication_methods": [{"name": PASSWORD_METHOD, "timestamp": now.isoformat()}]}
        collected = signals.collect(_rule_user(user, enrolled), request.context | own,
                                    self.geo, now, self.mfa, login_events.history_for(summary, user.logins_count))
        payload = collected.payload
        evaluation = await self._run_rules(payload)
        # A /v1/login is a login whatever context.action says: the policy applies.
        decision = policy.decide(evaluation.outcome, enrolled, self.mfa, collected.triggered)
        browser_id = await self.remembered.skip_factor(request.remember_token, user.user_id,
                                                       request.context.get("device_id"), evaluation.outcome, decision, now)
        if browser_id is not None:
            decision = remembered.skipped(decision)
        decision_id = await self.decisions.record("login", now, user.user_id, request.client_id, payload,
                                                  evaluation, decision)
        log.info("login decision=%s user_id=%s rule_set=%s provider=%s provider_set_by=%s decision_id=%s",
                 decision.decision, user.user_id, evaluation.version, evaluation.outcome.provider,
                 evaluation.outcome.provider_set_by, decision_id)
        if decision.decision == "deny":
            await self.audit.record("login.failed", now, user_id=user.user_id, ip=ip, decision_id=decision_id,
                                    reason="denied", deny_reason=decision.reason, client_id=request.client_id)
            raise AccessDenied(decision.reason or "access_denied", decision_id=decision_id,
                               required_by=decision.required_by)
        answer = await self._after_rules(request, user, factors, payload, evaluation, decision, now, password_hash,
                                         decision_id)
        if browser_id is not None and isinstance(answer, Authenticated):
            log.info("login_remembered_browser user_id=%s browser_id=%s", user.user_id, browser_id)
            answer = dataclasses.replace(answer, remembered_browser=True)
        return dataclasses.replace(answer, decision_id=decision_id, required_by=decision.required_by)

    async def _after_rules(self, request: LoginRequest, user: UserRecord, factors: list[FactorRecord],
                           payload: dict[str, Any], evaluation: Evaluation, decision: policy.Decision,
                           now: datetime, password_hash: str,
                           decision_id: str) -> Authenticated | MfaRequired | EnrollmentRequired:
        """The answer to a login the rules did not deny: a token, a challenge or an enrollment.
        `password_hash`: the user's, as this login checked it (what a remembered browser is bound to)."""
        timestamp = now.timestamp()
        ip = request.context.get("ip")
        country = payload["context"]["connection"]["ip_country"]
        data = login_data(int(timestamp), evaluation.outcome.claims, request.context.get("device_id"),
                          country, ip, evaluation.outcome.return_to,
                          evaluation.outcome.metadata_updates, mfa_epoch=user.mfa_epoch)
        # What this login teaches the triggers once it completes (engine/stores/login_events.py),
        # and the decision its audit events name.
        data |= {"client_id": request.client_id, "geo": _place(payload), "decision_id": decision_id}
        if decision.decision == "allow":
            return await self.sessions.complete(user.user_id, data, None, now)
        # Only a login that goes on to a factor may remember its browser at the verify.
        data |= self.remembered.offer(evaluation.outcome, request.context,
                                      lambda: self.remembered.user_state(user, password_hash, factors))
        return await self._ask_for_factor(user.user_id, request.client_id, factors, decision, data, timestamp)

    async def _ask_for_factor(self, user_id: str, client_id: str, factors: list[FactorRecord],
                              decision: policy.Decision, data: dict[str, Any],
                              timestamp: float) -> MfaRequired | EnrollmentRequired:
        """The challenge (or enrollment) a decision of "mfa" asks for, carrying `data` to its end."""
        locked = await self.store.lockout_remaining(user_id, timestamp, self.mfa.lockout_threshold)
        if locked:
            self.metrics.lockouts.inc("factor")
            await self.audit.record(_refused(data), _at(timestamp), user_id=user_id, ip=data.get("ip"),
                                    decision_id=data.get("decision_id"), reason="factor_locked",
                                    retry_after_seconds=locked, **_step_up_action(data))
            raise TooManyAttempts(locked, "the second factor is locked after too many failures")
        if decision.enrollment_required:
            return await self._require_enrollment(user_id, client_id, data, timestamp, decision.enroll_after)
        if decision.enroll_after:
            data["enroll_after"] = list(decision.enroll_after)
        arranged = tuple(offers.arrange(decision.factors, factors))
        return await self._require_factor(user_id, client_id, arranged, decision.default_source, data, timestamp)

    async def step_up(self, request: StepUpRequest) -> StepUpOk | MfaRequired | EnrollmentRequired:
        """The rules and the policy again for a logged-in user's `action`, with the methods their
        token carries (Sessions.resume: 401 for a token that does not stand). A factor they ask
        for is a challenge like a login's, whose verify issues a token with the fresh factor
        added and the original auth_time. A step-up is no login: the history triggers are not
        assessed (the user's history is of logins), and nothing is counted or learned."""
        now = self.clock.now()
        session = await self.sessions.resume(request.user_token, now)
        note_user(session.user.user_id)
        # A token carries no client: a step-up naming none gets a challenge bound to none ("").
        user, client_id = session.user, request.context.get("client_id") or ""
        factors = await self.directory.list_factors(user.user_id)
        enrolled = offers.enrolled_types(user, factors, await self.directory.recovery_codes_left(user.user_id))
        methods = [{"name": name, "timestamp": datetime.fromtimestamp(at, UTC).isoformat()}
                   for name, at in session.methods]
        context = request.context | {"action": request.action, "authentication_methods": methods}
        collected = signals.collect(_rule_user(user, enrolled), context, self.geo, now, self.mfa, None)
        evaluation = await self._run_rules(collected.payload)
        outcome = evaluation.outcome
        decision = policy.decide(outcome, enrolled, self.mfa, collected.triggered, action=request.action)
        decision_id = await self.decisions.record("step_up", now, user.user_id, client_id or None, collected.payload,
                                                  evaluation, decision)
        log.info("step_up decision=%s user_id=%s action=%s rule_set=%s decision_id=%s", decision.decision,
                 user.user_id, request.action, evaluation.version, decision_id)
        if decision.decision == "deny":
            await self.audit.record("step_up.failed", now, user_id=user.user_id, ip=request.context.get("ip"),
                                    decision_id=decision_id, action=request.action, reason="denied",
                                    deny_reason=decision.reason)
            raise AccessDenied(decision.reason or "access_denied", decision_id=decision_id,
                               required_by=decision.required_by)
        if decision.decision == "allow":
            return StepUpOk()
        data = step_up_data(session, outcome.claims, request.context.get("device_id"),
                            collected.payload["context"]["connection"]["ip_country"], request.context.get("ip"),
                            outcome.return_to) | {"action": request.action, "decision_id": decision_id}
        answer = await self._ask_for_factor(user.user_id, client_id, factors, decision, data, now.timestamp())
        return dataclasses.replace(answer, decision_id=decision_id, required_by=decision.required_by)

    async def _check_password(self, request: LoginRequest, ip: str | None,
                              now: datetime) -> tuple[UserRecord, str]:
        """The user whose password this is, and its hash, or InvalidCredentials / TooManyAttempts.

        The attempt is counted before argon2 runs, in one atomic step: read-then-count-later
        let 30 concurrent guesses all pass a limit of 10, each reading a count the others had
        not yet raised. A success clears the username's failures and gives the IP back its
        attempt, so a busy NAT is limited by its failures alone."""
        timestamp = now.timestamp()
        user_counter, *ip_counters = throttle.login_failures(self.settings.login, request.username, ip)
        wait = await self.store.take([user_counter, *ip_counters], timestamp)
        if wait:
            self.metrics.lockouts.inc("password")
            # No user is looked up for a throttled attempt: the key names the counters (the
            # username as typed stays in memory, out of the trail: it may be a password).
            await self.audit.lockout("password:" + "|".join(c.name for c in (user_counter, *ip_counters)), now,
                                     wait, scope="password", ip=ip)
            raise TooManyAttempts(wait)
        found = await self.directory.find_login(request.username)
        # Unknown users are verified against a dummy hash: the same cost, the same answer.
        if not await self.passwords.verify(found[1] if found else None, request.password) or found is None:
            log.info("login_failed reason=invalid_credentials ip=%s", ip)
            # Both kinds write one event: the same cost again. No username for an unknown user.
            await self.audit.record("login.failed", now, user_id=found[0].user_id if found else None, ip=ip,
                                    reason="wrong_password" if found else "unknown_user", client_id=request.client_id)
            raise InvalidCredentials("the username or password is wrong")
        await self.store.reset([user_counter.name])
        await self.store.refund(ip_counters, timestamp)
        return found

    async def _require_factor(self, user_id: str, client_id: str, arranged: tuple[offers.Offer, ...],
                              default_source: str | None, data: dict[str, Any], timestamp: float) -> MfaRequired:
        challenge = Challenge(new_challenge_id(), "login", user_id, client_id,
                              tuple(offer.factor for offer in arranged), timestamp + self.mfa.challenge_ttl_seconds,
                              data=data)
        await self.store.create(challenge, timestamp)
        return MfaRequired(challenge.challenge_id, self.mfa.challenge_ttl_seconds, arranged, default_source)

    async def _require_enrollment(self, user_id: str, client_id: str, data: dict[str, Any], timestamp: float,
                                  allowed: tuple[str, ...]) -> EnrollmentRequired:
        token = Challenge(new_challenge_id(), "enrollment", user_id, client_id, (),
                          timestamp + self.mfa.challenge_ttl_seconds, data={**data, FACTORS_ALLOWED: list(allowed)})
        await self.store.create(token, timestamp)
        return EnrollmentRequired(token.challenge_id, self.mfa.challenge_ttl_seconds, allowed)

    async def _after_existing_factor(self, challenge: Challenge, passed: ChallengeFactor,
                                     timestamp: float) -> MfaRequired | EnrollmentRequired:
        """The user passed one of their factors; the requirement is a type they lacked at login.
        If they have enrolled it since (another session), ask for it; else, and only now, let
        them enroll it, with a token whose login records the factor just passed."""
        data = after_factor(challenge.data, passed, int(timestamp))
        wanted = tuple(data.pop("enroll_after"))
        arranged = tuple(offers.arrange(wanted, await self.directory.list_factors(challenge.user_id)))
        if arranged:
            return await self._require_factor(challenge.user_id, challenge.client_id, arranged, "config", data,
                                              timestamp)
        return await self._require_enrollment(challenge.user_id, challenge.client_id, data, timestamp, wanted)

    async def challenge(self, challenge_id: str, factor_id: str, ip: str | None,
                        client_id: str | None = None) -> ChallengeStarted:
        """`client_id`, when given, must be the client the login started for (_same_client)."""
        now = self.clock.now()
        challenge = await self.store.get(challenge_id, now.timestamp())
        offered = _offered(challenge, factor_id) if challenge and challenge.kind == "login" else None
        if challenge is None or offered is None or not _same_client(challenge, client_id):
            self.metrics.challenges.inc("unknown", InvalidChallenge.code)
            raise InvalidChallenge("the challenge is unknown, expired or does not offer this factor")
        note_user(challenge.user_id)
        ip = ip or challenge.data.get("ip")
        if offered.type != "sms":
            self.metrics.challenges.inc(offered.type, "ready")
            await self.audit.record("factor.challenged", now, user_id=challenge.user_id, ip=ip,
                                    decision_id=challenge.data.get("decision_id"), factor_id=factor_id,
                                    factor_type=offered.type, sent=False)
            return ChallengeStarted(factor_id, offered.type, sent=False)  # the user reads their app or sheet
        factor = await self.directory.get_factor(factor_id)
        try:
            if factor is None or factor.phone_number is None:
                raise InvalidChallenge("the challenge is unknown, expired or does not offer this factor")
            await self.sms_sender.send_code(challenge_id, factor_id, challenge.user_id, factor.phone_number, ip, now)
        except EngineError as exc:
            self.metrics.challenges.inc("sms", exc.code)
            raise
        self.metrics.challenges.inc("sms", "sent")
        await self.audit.record("factor.challenged", now, user_id=challenge.user_id, ip=ip,
                                decision_id=challenge.data.get("decision_id"), factor_id=factor_id, factor_type="sms",
                                sent=True)
        return ChallengeStarted(factor_id, "sms", sent=True)

    async def verify(self, challenge_id: str, factor_id: str, code: str, client_id: str | None = None,
                     remember_browser: bool = False, ip: str | None = None,
                     ) -> Authenticated | MfaRequired | EnrollmentRequired:
        """`client_id`, when given, must be the client the login started for: a challenge
        finished by another client is consumed and refused. `remember_browser`: the user asks
        for a remember token, given when the login allowed it (engine/remembered.py). `ip`: the
        end user's address, for the audit trail of a refusal (a success names the login's)."""
        now = self.clock.now()
        timestamp = now.timestamp()
        factor_type = "recovery" if factor_id == offers.RECOVERY_FACTOR_ID else "unknown"
        owner = None  # the factor's user once known: whose audit trail a refused code goes to
        try:
            if factor_id == offers.RECOVERY_FACTOR_ID:
                attempt, proof = await self._recovery_attempt(challenge_id, code, timestamp)
            else:
                found = await _opened(self.directory.factor_for_code(factor_id), factor_id)
                if found is None or found[0].status != "active":
                    raise InvalidCode("the code is wrong or the challenge is no longer valid")
                factor_type = found[0].type
                attempt = self._code_attempt(challenge_id, *found, code, timestamp)
                proof = FactorProof(totp_step=attempt.totp_step)
            owner = attempt.user_id
            verdict = await self.store.verify(attempt, timestamp)
            if verdict.status == "locked":
                self.metrics.lockouts.inc("factor")
                await self.audit.lockout(f"factor:{owner}", now, verdict.retry_after, scope="factor", user_id=owner,
                                         ip=ip)
                raise TooManyAttempts(verdict.retry_after, "the second factor is locked after too many failures")
            if (verdict.status != "ok" or verdict.challenge is None or verdict.challenge.kind != "login"
                    or not _same_client(verdict.challenge, client_id)):
                log.info("verify_failed factor_type=%s", attempt.factor_type)
                raise InvalidCode("the code is wrong or the challenge is no longer valid")
            note_user(verdict.challenge.user_id)
            done = await self._finish(verdict.challenge, _offered(verdict.challenge, factor_id), proof, now)
            if remember_browser and isinstance(done, Authenticated):
                done = await self.remembered.attach(done, verdict.challenge.data, verdict.challenge.client_id, now)
        except EngineError as exc:
            self.metrics.verifications.inc(factor_type, _verify_result(exc))
            if owner is not None and isinstance(exc, InvalidCode):
                await self.audit.record("factor.failed", now, user_id=owner, ip=ip, factor_id=factor_id,
                                        factor_type=factor_type, reason="invalid_code")
            raise
        self.metrics.verifications.inc(factor_type, "ok")
        log.info("verify_succeeded user_id=%s factor_type=%s", verdict.challenge.user_id, attempt.factor_type)
        return done

    async def _finish(self, challenge: Challenge, passed: ChallengeFactor, proof: FactorProof,
                      now: datetime) -> Authenticated | MfaRequired | EnrollmentRequired:
        """The login after its challenge step passed. Only now is the proof spent (the TOTP step
        recorded, the recovery code consumed): a verify that failed its step, or lost a race
        for the challenge, uses nothing up. Spent already (the store forgot a step it had
        accepted, or another instance won): InvalidCode, no token.

        The spend is the last step that can fail: a store error after it burned a recovery code
        for a login that never happened. The follow-up challenge or enrollment token is created
        first, and deleted if the spend is refused (its id was never handed out, so one that a
        failed delete leaves behind is unreachable and expires)."""
        if not challenge.data.get("enroll_after"):
            # The spend and the login are one SQL transaction; only the token is signed after it.
            return await self.sessions.complete(challenge.user_id, challenge.data, passed, now, proof)
        follow_up = await self._after_existing_factor(challenge, passed, now.timestamp())
        if not await self.directory.spend_proof(challenge.user_id, passed.factor_id, proof, now):
            await self.store.delete(_challenge_id(follow_up))
            log.warning("verify_refused reason=proof_spent user_id=%s factor_type=%s", challenge.user_id, passed.type)
            raise InvalidCode("the code is wrong or the challenge is no longer valid")
        await self.audit.record("factor.verified", now, user_id=challenge.user_id, ip=challenge.data.get("ip"),
                                decision_id=challenge.data.get("decision_id"), factor_id=passed.factor_id,
                                factor_type=passed.type)
        return follow_up

    async def code_attempt(self, challenge_id: str, factor: FactorRecord, code: str, timestamp: float) -> Attempt:
        """The store attempt for an otp or sms code; the code itself never leaves this call."""
        secret = await _opened(self.directory.factor_secret(factor.factor_id), factor.factor_id) \
            if factor.type == "otp" else None
        return self._code_attempt(challenge_id, factor, secret, code, timestamp)

    def _code_attempt(self, challenge_id: str, factor: FactorRecord, secret: str | None, code: str,
                      timestamp: float) -> Attempt:
        """code_attempt with the otp factor's `secret` read already."""
        if factor.type == "otp":
            step = totp.match_step(secret, code, timestamp, factor_id=factor.factor_id) if secret else None
            if step is not None and factor.last_totp_step is not None and step <= factor.last_totp_step:
                # A replay the store may have forgotten (restarted without persistence): the
                # directory's step is durable. It fails like a wrong code, and counts like one.
                step = None
            return self._attempt(challenge_id, factor.user_id, factor.factor_id, "otp", totp_step=step)
        code_hash = sms.code_hash(self.keyring.mac, challenge_id, factor.factor_id, code)
        return self._attempt(challenge_id, factor.user_id, factor.factor_id, "sms", code_hash=code_hash)

    def _attempt(self, challenge_id: str, user_id: str, factor_id: str, factor_type: str, *,
                 code_hash: str | None = None, totp_step: int | None = None, passed: bool | None = None) -> Attempt:
        """An attempt under the configured attempt and lockout limits."""
        return Attempt(challenge_id, user_id, factor_id, factor_type, code_hash=code_hash, totp_step=totp_step,
                       passed=passed, max_attempts=self.mfa.max_attempts,
                       lockout_threshold=self.mfa.lockout_threshold, lockout_seconds=self.mfa.lockout_seconds)

    async def _recovery_attempt(self, challenge_id: str, code: str, timestamp: float) -> tuple[Attempt, FactorProof]:
        """The store attempt for a recovery code, and the code to spend once the step passes.

        The code is only looked at here. Consuming it before the step let ten concurrent
        verifies of one challenge burn ten codes for one login, and a verify whose step then
        failed (another client, expired, out of attempts) burn one for none."""
        challenge = await self.store.get(challenge_id, timestamp)
        if challenge is None or _offered(challenge, offers.RECOVERY_FACTOR_ID) is None:
            raise InvalidCode("the code is wrong or the challenge is no longer valid")
        normalized = recovery.normalize(code)
        code_hash = None
        # After a secrets.key rotation a code may be stored under a previous key: each form is looked up.
        for candidate in () if normalized is None else recovery.code_hashes(self.keyring.macs, challenge.user_id,
                                                                            normalized):
            if await self.directory.recovery_code_usable(challenge.user_id, candidate):
                code_hash = candidate
                break
        passed = code_hash is not None
        attempt = self._attempt(challenge_id, challenge.user_id, offers.RECOVERY_FACTOR_ID, "recovery", passed=passed)
        return attempt, FactorProof(recovery_code_hash=code_hash if passed else None)

    async def _run_rules(self, payload: dict[str, Any]) -> Evaluation:
        try:
            return await self.pipeline.evaluate(payload)
        except sandbox_errors.SandboxUnavailable as exc:
            raise SandboxUnavailable("the rule sandbox is saturated; retry shortly") from exc


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _refused(data: dict[str, Any]) -> str:
    """The audit type of a login or step-up refused before its factor (the data it would carry)."""
    return "step_up.failed" if data.get(STEP_UP) else "login.failed"


def _step_up_action(data: dict[str, Any]) -> dict[str, Any]:
    return {"action": data.get("action")} if data.get(STEP_UP) else {}


def _status_of(answer: Authenticated | MfaRequired | EnrollmentRequired) -> str:
    """A login's answer as the `outcome` label of mfa_logins_total (engine/metrics.py)."""
    if isinstance(answer, MfaRequired):
        return "mfa_required"
    if isinstance(answer, EnrollmentRequired):
        return "mfa_enrollment_required"
    return "authenticated"


def _verify_result(error: EngineError) -> str:
    """A refused verify as the `result` label of mfa_verifications_total: one "invalid" for every
    wrong code or challenge (they are one answer to the client too), "locked", or the error code."""
    if isinstance(error, InvalidCode):
        return "invalid"
    if type(error) is TooManyAttempts:
        return "locked"
    return error.code


def _challenge_id(follow_up: MfaRequired | EnrollmentRequired) -> str:
    return follow_up.challenge_id if isinstance(follow_up, MfaRequired) else follow_up.enrollment_token


async def _opened(read: Awaitable[_T], factor_id: str) -> _T:
    """A factor read that opens its sealed secret. One that no key opens (secrets.key replaced
    without the old one in secrets.previous_keys, or a tampered row) is the engine's fault, not
    the user's: 503 factor_unavailable (another factor may work), never a counted attempt."""
    try:
        return await read
    except DecryptionError:
        log.error("factor_secret_unreadable factor_id=%s reason=not sealed under secrets.key or "
                  "secrets.previous_keys", factor_id)
        raise FactorUnavailable("this factor cannot be used now; another factor may work") from None


def _same_client(challenge: Challenge, client_id: str | None) -> bool:
    """Whether a challenge or verify naming `client_id` (None: names none) may go on with
    `challenge`. A login's challenge is bound to its client (client ids are never empty); a
    step-up's that named no `context.client_id` ("": user tokens carry no client) is bound to
    none, so a call naming its client is not refused for it."""
    return client_id is None or not challenge.client_id or client_id == challenge.client_id


def _offered(challenge: Challenge, factor_id: str) -> Any:
    return next((factor for factor in challenge.factors if factor.factor_id == factor_id), None)


def _history_days(mfa: MfaSettings) -> int:
    """The widest window the history triggers look back over."""
    return max(mfa.triggers.new_device.days, mfa.triggers.new_country.days)


def _place(payload: dict[str, Any]) -> dict[str, Any] | None:
    geo = payload["context"]["connection"]["geo"]
    if not geo or geo.get("latitude") is None or geo.get("longitude") is None:
        return None
    return {"latitude": geo["latitude"], "longitude": geo["longitude"], "accuracy_radius": geo.get("accuracy_radius")}


def _rule_user(user: UserRecord, enrolled: list[str]) -> dict[str, Any]:
    """The stored user as the rules' `user` (engine/signals.py masks the phone number)."""
    return {
        "user_id": user.user_id, "username": user.username, "email": user.email,
        "email_verified": user.email_verified, "name": user.name, "phone_number": user.phone_number,
        "created_at": user.created_at.isoformat(), "last_login": user.last_login.isoformat() if user.last_login else None,
        "logins_count": user.logins_count, "app_metadata": dict(user.app_metadata),
        "user_metadata": dict(user.user_metadata), "factors": enrolled,
    }
