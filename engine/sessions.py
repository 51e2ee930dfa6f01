"""Finishing a login: the signed token, and the history a completed login leaves behind."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine import audit
from engine.audit_trail import AuditTrail
from engine.errors import InvalidCode, InvalidToken
from engine.offers import RECOVERY_FACTOR_ID
from engine.request_context import note_user
from engine.stores.audit_events import AuditEvent
from engine.stores.challenges import ChallengeFactor
from engine.stores.directory import FactorProof, UserDirectory, UserRecord
from engine.tokens import AUTH_METHODS, MFA_EPOCH, TokenIssuer
from engine.tokens import InvalidToken as TokenRejected


@dataclass(frozen=True, slots=True)
class Authenticated:
    user_id: str
    token: str
    expires_in: int
    amr: tuple[str, ...]
    decision_id: str | None = None  # set on the answer of /v1/login (engine/decisions.py)
    return_to: str | None = None  # where a rule asked the application to send the user next
    required_by: tuple[str, ...] | None = None  # the layers that required a factor (/v1/login)
    remembered_browser: bool = False  # a remembered browser let this login skip its factor
    remember_token: str | None = field(default=None, repr=False)  # engine/remembered.py
    remember_token_expires_in: int | None = None

    def to_plain(self) -> dict[str, Any]:
        plain = {"status": "authenticated", "user_id": self.user_id, "token": self.token, "token_type": "Bearer",
                 "expires_in": self.expires_in, "amr": list(self.amr)}
        if self.return_to is not None:
            plain["return_to"] = self.return_to
        if self.required_by is not None:
            plain["required_by"] = list(self.required_by)
        if self.remembered_browser:
            plain["remembered_browser"] = True
        if self.remember_token is not None:
            plain |= {"remember_token": self.remember_token,
                      "remember_token_expires_in": self.remember_token_expires_in}
        return plain if self.decision_id is None else plain | {"decision_id": self.decision_id}


log = logging.getLogger("engine.sessions")

PASSWORD_METHOD = "pwd"
# The key of a challenge's data that marks a step-up (engine/flow.py: Flow.step_up): finishing it
# issues a fresher token but is no login (nothing counted, learned or saved).
STEP_UP = "step_up"

Method = tuple[str, int]  # a method's name ("pwd", "otp", "sms", "recovery") and completion time (epoch s)


@dataclass(frozen=True, slots=True)
class Session:
    """A user token the engine issued that still stands: its user, its claims, and its methods
    with their completion times, in order (`amr` order; one entry per name, its latest time)."""

    user: UserRecord
    claims: Mapping[str, Any]
    methods: tuple[Method, ...]


def login_data(auth_time: int, claims: Mapping[str, Any], device_id: str | None, country: str | None,
               ip: str | None, return_to: str | None = None,
               metadata_updates: Mapping[str, Mapping[str, Any]] | None = None, *,
               mfa_epoch: int = 0) -> dict[str, Any]:
    """What a challenge carries from the password step to the end of the login. The rules'
    metadata changes wait here (plain JSON, at most 16 KiB per kind: engine/metadata.py) and
    are saved only by `Sessions.complete`: a login that is abandoned or fails its factor saves
    nothing. `mfa_epoch` is the user's when the password passed: a reset meanwhile makes the
    token refused."""
    return {"amr": [PASSWORD_METHOD], "methods": [[PASSWORD_METHOD, auth_time]], "mfa_epoch": mfa_epoch,
            "auth_time": auth_time, "claims": dict(claims), "device_id": device_id,
            "country": country, "ip": ip, "return_to": return_to,
            "metadata_updates": {kind: dict(changes) for kind, changes in (metadata_updates or {}).items()}}


def after_factor(login: Mapping[str, Any], factor: ChallengeFactor, at: int) -> dict[str, Any]:
    """The login's data once `factor` has been passed at `at`: its type joins the methods (amr)."""
    methods = with_method(methods_of(login), factor.type, at)
    return {**login, "amr": [name for name, _ in methods], "methods": [list(method) for method in methods]}


def methods_of(login: Mapping[str, Any]) -> list[Method]:
    """A challenge's methods; one created before they were kept has only `amr`, each method
    then dated at the password (a completion time never later than the real one)."""
    if "methods" in login:
        return [(str(name), int(at)) for name, at in login["methods"]]
    return [(str(name), int(login["auth_time"])) for name in login["amr"]]


def with_method(methods: Sequence[Method], name: str, at: int) -> list[Method]:
    """`methods` with `name` completed at `at`: a method passed again keeps its place and takes
    the later time, so a token does not grow with each step-up."""
    if all(known != name for known, _ in methods):
        return [*methods, (name, at)]
    return [(known, max(when, at) if known == name else when) for known, when in methods]


def step_up_data(session: Session, claims: Mapping[str, Any], device_id: str | None, country: str | None,
                 ip: str | None, return_to: str | None) -> dict[str, Any]:
    """What a step-up's challenge carries to its verify: the session's methods with their times
    and its original auth_time (the password is not typed again), the rules' claims, and STEP_UP,
    so that finishing it issues a token without counting a login."""
    data = login_data(int(session.claims["auth_time"]), claims, device_id, country, ip, return_to,
                      mfa_epoch=session.user.mfa_epoch)
    return data | {"amr": [name for name, _ in session.methods],
                   "methods": [list(method) for method in session.methods], STEP_UP: True}


def passed_a_factor(login: Mapping[str, Any]) -> bool:
    """Whether this login has passed a second factor, not just the password."""
    return any(method != PASSWORD_METHOD for method in login.get("amr") or ())


class Sessions:
    def __init__(self, tokens: TokenIssuer, directory: UserDirectory, ttl_seconds: int, audit: AuditTrail) -> None:
        self.tokens = tokens
        self.directory = directory
        self.ttl_seconds = ttl_seconds
        self.audit = audit

    async def complete(self, user_id: str, data: Mapping[str, Any], factor: ChallengeFactor | None,
                       now: datetime, proof: FactorProof | None = None) -> Authenticated:
        """The token of a finished login (or step-up: `data[STEP_UP]`). `proof` (the TOTP step or
        recovery code `factor` was passed with) is spent in the login's own transaction; raises
        InvalidCode, issuing nothing, when it was spent already (a replay the challenge store no
        longer knew)."""
        methods = methods_of(data)
        if factor is not None:
            methods = with_method(methods, factor.type, int(now.timestamp()))
        amr = [name for name, _ in methods]
        # acr names the assurance reached: a password alone, or a password and a second factor.
        acr = "mfa" if any(name != PASSWORD_METHOD for name in amr) else "pwd"
        used = factor.factor_id if factor is not None and factor.factor_id != RECOVERY_FACTOR_ID else None
        events = audit_events(user_id, data, factor, amr, now)
        if data.get(STEP_UP):
            await self._spend(user_id, factor, used, proof, now)
            await self.audit.write(events)
        elif not await self.directory.record_login(user_id, now, data.get("device_id"), data.get("country"), used,
                                                 proof, data.get("metadata_updates"),
                                                 client_id=data.get("client_id"), geo=data.get("geo"), audit=events):
            log.warning("verify_refused reason=proof_spent user_id=%s", user_id)
            raise InvalidCode("the code is wrong or the challenge is no longer valid")
        token = self.tokens.issue(user_id, amr, acr, int(data["auth_time"]), data.get("claims") or {},
                                  int(now.timestamp()), methods=methods, mfa_epoch=int(data.get("mfa_epoch", 0)))
        return Authenticated(user_id, token, self.ttl_seconds, tuple(amr), return_to=data.get("return_to"))

    async def _spend(self, user_id: str, factor: ChallengeFactor | None, used: str | None,
                     proof: FactorProof | None, now: datetime) -> None:
        """A step-up is no login: nothing is counted or learned and the rules' metadata changes
        are not saved; the factor's proof is spent (InvalidCode if it was already) and the
        factor marked used."""
        if factor is not None and proof is not None and not await self.directory.spend_proof(
                user_id, factor.factor_id, proof, now):
            log.warning("verify_refused reason=proof_spent user_id=%s", user_id)
            raise InvalidCode("the code is wrong or the challenge is no longer valid")
        if used is not None:
            await self.directory.mark_factor_used(used, now)

    async def resume(self, user_token: str, now: datetime) -> Session:
        """The session behind a user token; InvalidToken (401, one message for every reason)
        when the token does not verify, its user is gone, or the user's MFA was reset after it
        was issued (its mfa_epoch is older: whoever held it then may not be the user now)."""
        try:
            claims = self.tokens.verify(user_token, int(now.timestamp()))
        except TokenRejected as exc:
            raise InvalidToken("the user token does not verify") from exc
        user = await self.directory.get_user(str(claims["sub"]))
        if user is None or claims.get(MFA_EPOCH, 0) != user.mfa_epoch:
            raise InvalidToken("the user token does not verify")
        note_user(user.user_id)
        return Session(user, claims, tuple(_claimed_methods(claims)))


def audit_events(user_id: str, data: Mapping[str, Any], factor: ChallengeFactor | None, amr: Sequence[str],
                 now: datetime) -> list[AuditEvent]:
    """What a finished login (or step-up) adds to the audit trail: the factor it passed, then the
    login itself, both from the login's address and naming its decision."""
    def event(type_: str, **details: object) -> AuditEvent:
        return audit.event(type_, now, actor=None, user_id=user_id, ip=data.get("ip"),
                           decision_id=data.get("decision_id"), **details)

    events = [] if factor is None else [event("factor.verified", factor_id=factor.factor_id, factor_type=factor.type)]
    if data.get(STEP_UP):
        return [*events, event("step_up.succeeded", action=data.get("action"), amr=list(amr))]
    return [*events, event("login.succeeded", client_id=data.get("client_id"), amr=list(amr))]


def _claimed_methods(claims: Mapping[str, Any]) -> list[Method]:
    """A token's methods; one issued before `auth_methods` existed has each `amr` method dated
    at `auth_time` (never later than the real completion)."""
    listed = claims.get(AUTH_METHODS)
    if isinstance(listed, list):
        return [(str(entry["name"]), int(entry["time"])) for entry in listed]
    auth_time = int(claims.get("auth_time") or claims["iat"])
    return [(str(name), auth_time) for name in claims.get("amr") or ()]
