"""Finishing a login: the signed token, and the history a completed login leaves behind."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import InvalidCode
from engine.offers import RECOVERY_FACTOR_ID
from engine.stores.challenges import ChallengeFactor
from engine.stores.directory import FactorProof, UserDirectory
from engine.tokens import TokenIssuer


@dataclass(frozen=True, slots=True)
class Authenticated:
    user_id: str
    token: str
    expires_in: int
    amr: tuple[str, ...]
    decision_id: str | None = None  # set on the answer of /v1/login (engine/decisions.py)
    return_to: str | None = None  # where a rule asked the application to send the user next

    def to_plain(self) -> dict[str, Any]:
        plain = {"status": "authenticated", "user_id": self.user_id, "token": self.token, "token_type": "Bearer",
                 "expires_in": self.expires_in, "amr": list(self.amr)}
        if self.return_to is not None:
            plain["return_to"] = self.return_to
        return plain if self.decision_id is None else plain | {"decision_id": self.decision_id}


log = logging.getLogger("engine.sessions")

PASSWORD_METHOD = "pwd"


def login_data(auth_time: int, claims: Mapping[str, Any], device_id: str | None, country: str | None,
               ip: str | None, return_to: str | None = None,
               metadata_updates: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """What a challenge carries from the password step to the end of the login. The rules'
    metadata changes wait here (plain JSON, at most 16 KiB per kind: engine/metadata.py) and
    are saved only by `Sessions.complete`: a login that is abandoned or fails its factor saves
    nothing."""
    return {"amr": [PASSWORD_METHOD], "auth_time": auth_time, "claims": dict(claims), "device_id": device_id,
            "country": country, "ip": ip, "return_to": return_to,
            "metadata_updates": {kind: dict(changes) for kind, changes in (metadata_updates or {}).items()}}


def after_factor(login: Mapping[str, Any], factor: ChallengeFactor) -> dict[str, Any]:
    """The login's data once `factor` has been passed: its type joins the methods (amr)."""
    return {**login, "amr": [*login["amr"], factor.type]}


def passed_a_factor(login: Mapping[str, Any]) -> bool:
    """Whether this login has passed a second factor, not just the password."""
    return any(method != PASSWORD_METHOD for method in login.get("amr") or ())


class Sessions:
    def __init__(self, tokens: TokenIssuer, directory: UserDirectory, ttl_seconds: int) -> None:
        self.tokens = tokens
        self.directory = directory
        self.ttl_seconds = ttl_seconds

    async def complete(self, user_id: str, data: Mapping[str, Any], factor: ChallengeFactor | None,
                       now: datetime, proof: FactorProof | None = None) -> Authenticated:
        """The token of a finished login. `proof` (the TOTP step or recovery code `factor` was
        passed with) is spent in the login's own transaction; raises InvalidCode, issuing
        nothing, when it was spent already (a replay the challenge store no longer knew)."""
        amr = [*data["amr"], factor.type] if factor is not None else list(data["amr"])
        # acr names the assurance reached: a password alone, or a password and a second factor.
        acr = "mfa" if len(amr) > 1 else "pwd"
        used = factor.factor_id if factor is not None and factor.factor_id != RECOVERY_FACTOR_ID else None
        if not await self.directory.record_login(user_id, now, data.get("device_id"), data.get("country"), used,
                                                 proof, data.get("metadata_updates")):
            log.warning("verify_refused reason=proof_spent user_id=%s", user_id)
            raise InvalidCode("the code is wrong or the challenge is no longer valid")
        token = self.tokens.issue(user_id, amr, acr, int(data["auth_time"]), data.get("claims") or {},
                                  int(now.timestamp()))
        return Authenticated(user_id, token, self.ttl_seconds, tuple(amr), return_to=data.get("return_to"))
