"""Enrolling second factors: an authenticator app (secret, otpauth URI, QR code) or a phone.

A factor is created `pending` and becomes `active` only after the user proves possession
with a correct code. Enrollment happens inside a login (an enrollment token from
`mfa_enrollment_required`; confirming finishes the login) or self-service (a user token).
The first factor a user enrolls comes with recovery codes, shown once, stored hashed.

A user who has a second factor (an active factor or unused recovery codes) changes factors
only with the authority of a login that passed one: a user token with `acr=mfa`, or an
enrollment token whose login records a passed factor. This is checked when the authority is
used (starting and confirming), not only when it was issued: the user may have gained a
factor in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import phonenumbers

from engine.audit_trail import AuditTrail
from engine.clock import Clock
from engine.config import MfaSettings
from engine.crypto import Keyring
from engine.errors import InvalidCode, InvalidRequest, InvalidToken
from engine.factors import recovery, totp
from engine.factors.limits import MAX_FACTORS_PER_USER, too_many_factors
from engine.flow import FACTORS_ALLOWED, Flow, new_challenge_id
from engine.offers import RECOVERY_FACTOR_ID
from engine.request_context import note_user
from engine.sessions import Sessions, passed_a_factor
from engine.signals import mask_phone
from engine.sms.sender import SmsSender
from engine.stores.challenges import Challenge, ChallengeFactor, ChallengeStore
from engine.stores.directory import FactorProof, FactorRecord, TooManyFactors, UserDirectory
from engine.tokens import TokenIssuer

log = logging.getLogger("engine.enrollment")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is enrolling: inside a login (with its data) or a logged-in user."""

    user_id: str
    client_id: str
    login: dict[str, Any] | None
    acr: str = "pwd"  # of the user token: "mfa" when its login used a second factor
    # Of an enrollment token: the types its login may enroll (the `factors_allowed` it was
    # issued with); None for a user token, which may enroll any enabled type.
    factors_allowed: tuple[str, ...] | None = None

    @property
    def passed_a_factor(self) -> bool:
        """Whether the login behind this authority passed a second factor."""
        return passed_a_factor(self.login) if self.login is not None else self.acr == "mfa"


class Enrollment:
    def __init__(self, flow: Flow, directory: UserDirectory, store: ChallengeStore, keyring: Keyring,
                 tokens: TokenIssuer, sessions: Sessions, sms_sender: SmsSender, mfa: MfaSettings,
                 clock: Clock, audit: AuditTrail) -> None:
        self.flow = flow
        self.directory = directory
        self.store = store
        self.keyring = keyring
        self.tokens = tokens
        self.sessions = sessions
        self.sms_sender = sms_sender
        self.mfa = mfa
        self.clock = clock
        self.audit = audit

    async def principal(self, enrollment_token: str | None, user_token: str | None) -> Principal:
        now = self.clock.now()
        if enrollment_token:
            held = await self.store.get(enrollment_token, now.timestamp())
            if held is None or held.kind != "enrollment":
                raise InvalidToken("the enrollment token is unknown or expired")
            note_user(held.user_id)
            login = dict(held.data)
            allowed = login.pop(FACTORS_ALLOWED, None)
            return Principal(held.user_id, held.client_id, login, factors_allowed=None if allowed is None
                             else tuple(allowed))
        if user_token:
            # Refused, as by a step-up, when the user is gone or their MFA was reset since.
            claims = (await self.sessions.resume(user_token, now)).claims
            return Principal(claims["sub"], str(claims.get("azp") or ""), None, str(claims.get("acr", "pwd")))
        raise InvalidToken("an enrollment_token or a user_token is required")

    async def start(self, principal: Principal, factor_type: str, phone_number: str | None,
                    ip: str | None) -> dict[str, Any]:
        if factor_type not in self.mfa.factors or factor_type == RECOVERY_FACTOR_ID:
            raise InvalidRequest("this factor cannot be enrolled", field="factor")
        if principal.factors_allowed is not None and factor_type not in principal.factors_allowed:
            # The login asked for these types; another one would end it without meeting its requirement.
            raise InvalidRequest("this login asks for one of " + ", ".join(principal.factors_allowed),
                                 field="factor")
        now = self.clock.now()
        timestamp = now.timestamp()
        user = await self.directory.get_user(principal.user_id)
        if user is None:
            raise InvalidToken("the user no longer exists")
        await self.require_second_factor_if_enrolled(principal)
        challenge_id = new_challenge_id()
        if factor_type == "otp":
            secret = totp.new_secret()
            factor = _room_for(await self.directory.enroll_factor(user.user_id, "otp", now,
                                                                  max_active=MAX_FACTORS_PER_USER, secret=secret))
            await self._open(challenge_id, principal, factor.factor_id, "otp", timestamp)
            uri = totp.provisioning_uri(secret, user.email or user.username, self.mfa.issuer_name)
            return {"enrollment_id": challenge_id, "factor": "otp", "factor_id": factor.factor_id, "secret": secret,
                    "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri), "expires_in": self.mfa.challenge_ttl_seconds}
        phone = _e164(phone_number)
        self.sms_sender.check_country(phone)
        factor = _room_for(await self.directory.enroll_factor(user.user_id, "sms", now,
                                                              max_active=MAX_FACTORS_PER_USER, phone_number=phone))
        await self._open(challenge_id, principal, factor.factor_id, "sms", timestamp)
        await self.sms_sender.send_code(challenge_id, factor.factor_id, user.user_id, phone,
                                        ip or (principal.login or {}).get("ip"), now)
        return {"enrollment_id": challenge_id, "factor": "sms", "factor_id": factor.factor_id,
                "phone": mask_phone(phone), "expires_in": self.mfa.challenge_ttl_seconds}

    async def _open(self, challenge_id: str, principal: Principal, factor_id: str, factor_type: str,
                    timestamp: float) -> None:
        challenge = Challenge(challenge_id, "enroll", principal.user_id, principal.client_id,
                              (ChallengeFactor(factor_id, factor_type),), timestamp + self.mfa.challenge_ttl_seconds,
                              data={"login": principal.login, "passed_a_factor": principal.passed_a_factor})
        await self.store.create(challenge, timestamp)

    async def confirm(self, enrollment_id: str, code: str) -> dict[str, Any]:
        now = self.clock.now()
        timestamp = now.timestamp()
        pending = await self.store.get(enrollment_id, timestamp)
        factor = None
        if pending is not None and pending.kind == "enroll":
            factor = await self.directory.get_factor(pending.factors[0].factor_id)
        if pending is None or factor is None or factor.status != "pending":
            raise InvalidCode("the code is wrong or the enrollment is no longer valid")
        note_user(factor.user_id)
        if not pending.data.get("passed_a_factor") and await self.has_second_factor(factor.user_id):
            # The user gained a factor since this enrollment started on a password alone.
            raise InvalidToken("this user has a second factor now: pass it in a login first")
        attempt = await self.flow.code_attempt(enrollment_id, factor, code, timestamp)
        verdict = await self.store.verify(attempt, timestamp)
        if verdict.status != "ok" or verdict.challenge is None:
            raise InvalidCode("the code is wrong or the enrollment is no longer valid")
        # The confirming code's time step is spent durably too: after a store restart it must
        # not log in within its drift window.
        if attempt.totp_step is not None and not await self.directory.spend_proof(
                factor.user_id, factor.factor_id, FactorProof(totp_step=attempt.totp_step), now):
            raise InvalidCode("the code is wrong or the enrollment is no longer valid")
        first = not await self.directory.list_factors(factor.user_id)
        try:
            activated = await self.directory.activate_factor(factor.factor_id, now, max_active=MAX_FACTORS_PER_USER)
        except TooManyFactors:  # an admin added factors while this enrollment waited for its code
            raise too_many_factors() from None
        if not activated:
            # Dropped meanwhile by an enrollment started since (one at a time): nothing enrolled.
            raise InvalidCode("the code is wrong or the enrollment is no longer valid")
        log.info("factor_enrolled user_id=%s factor_type=%s", factor.user_id, factor.type)
        login = verdict.challenge.data.get("login")
        await self.audit.record("factor.enrolled", now, user_id=factor.user_id, ip=(login or {}).get("ip"),
                                factor_id=factor.factor_id, factor_type=factor.type, phone=factor.phone_number)
        body: dict[str, Any] = {"status": "enrolled", "factor": {"id": factor.factor_id, "type": factor.type}}
        if first:
            body["recovery_codes"] = await self.new_recovery_codes(factor.user_id)
        if login:
            done = await self.sessions.complete(factor.user_id, login, verdict.challenge.factors[0], now)
            body |= done.to_plain()
        return body

    async def require_second_factor_if_enrolled(self, principal: Principal) -> None:
        """A user with factors changes them only from a login that used one: a stolen password
        alone must not be enough to add the thief's phone."""
        if principal.passed_a_factor or not await self.has_second_factor(principal.user_id):
            return
        if principal.login is None:
            raise InvalidToken("this needs a user token from a login with a second factor")
        raise InvalidToken("this user has a second factor: pass it in a login first")

    async def has_second_factor(self, user_id: str) -> bool:
        """An active factor or an unused recovery code: either proves the user, so either
        must be passed before the factors change."""
        return bool(await self.directory.list_factors(user_id)) or await self.directory.recovery_codes_left(user_id) > 0

    async def replace_recovery_codes(self, user_id: str, *, field: str | None = None) -> list[str]:
        """New codes asked for (the API, /account/security): only by a user with a second factor,
        else InvalidRequest naming `field`."""
        if not await self.directory.list_factors(user_id):
            raise InvalidRequest("enroll a second factor before asking for recovery codes", field=field)
        return await self.new_recovery_codes(user_id)

    async def new_recovery_codes(self, user_id: str) -> list[str]:
        """Fresh codes replace all earlier ones; only their hashes are kept."""
        codes = recovery.generate(self.mfa.recovery_codes)
        hashes = [recovery.code_hash(self.keyring.mac, user_id, recovery.normalize(code) or "") for code in codes]
        now = self.clock.now()
        await self.directory.replace_recovery_codes(user_id, hashes, now)
        await self.audit.record("recovery_codes.generated", now, user_id=user_id, count=len(codes))
        return codes


def _room_for(factor: FactorRecord | None) -> FactorRecord:
    """The pending factor UserDirectory.enroll_factor made (in place of any unfinished one: one
    enrollment at a time), or the Conflict of a user who has the most factors already."""
    if factor is None:
        raise too_many_factors()
    return factor


def _e164(phone_number: str | None) -> str:
    try:
        parsed = phonenumbers.parse(phone_number or "", None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidRequest("must be a valid phone number in E.164 form, e.g. +14155550123", field="phone_number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
