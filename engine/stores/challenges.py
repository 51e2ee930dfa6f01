"""The ChallengeStore contract: second-factor challenges, counters and replay state.

Every operation that reads and then writes is one atomic step in the store (a Lua script
in Redis; a section without awaits in memory), never read-modify-write from Python.
Time is an argument (`now`, unix seconds as float) so tests can move it; expiry is checked
against `now`, and Redis TTLs only clean up.

Key schema (Redis; the memory store mirrors it):
    mfa:challenge:{challenge_id}   hash  user_id, client_id, kind, factors (JSON), data (JSON),
                                         expires_at, attempts,
                                         code:{factor_id}, code_expires:{factor_id}, sent_at:{factor_id}
    mfa:failures:{user_id}         hash  count, locked_until: consecutive second-factor failures since the
                                         last success (lockout); kept FAILURE_MEMORY_SECONDS after the last one
    mfa:totp-step:{factor_id}      str   last accepted TOTP time step (replay protection: the first line,
                                         atomic with the challenge; the directory keeps it durably)
    mfa:rate:{name}                hash  count, ends_at: a fixed-window counter
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

CHALLENGE_KEY = "mfa:challenge:{}"
FAILURES_KEY = "mfa:failures:{}"
TOTP_STEP_KEY = "mfa:totp-step:{}"
RATE_KEY = "mfa:rate:{}"

# NIST SP 800-63B 5.2.2: no more than 100 consecutive failed attempts on one account. Past
# mfa.lockout_threshold every further failure locks again for mfa.lockout_seconds; at this
# cap the second factor stays locked until a success is impossible, i.e. until an admin
# resets the user (clear_failures) or the streak is forgotten.
MAX_CONSECUTIVE_FAILURES = 100
FAILURE_MEMORY_SECONDS = 30 * 24 * 3600


Persistence = Literal["aof", "rdb", "none", "unknown"]


@dataclass(frozen=True, slots=True)
class ChallengeFactor:
    factor_id: str  # the directory's factor id; "recovery" for recovery codes
    type: str  # "otp" | "sms" | "recovery"


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge_id: str  # 128 random bits, URL-safe
    kind: str  # "login" | "enrollment" (the token of mfa_enrollment_required) | "enroll" (one factor)
    user_id: str
    client_id: str
    factors: tuple[ChallengeFactor, ...]  # the factors this challenge accepts, in offer order
    expires_at: float  # unix seconds
    attempts: int = 0
    data: Mapping[str, Any] = field(default_factory=dict)  # plain JSON data the flow needs to finish


@dataclass(frozen=True, slots=True)
class PutCode:
    status: Literal["stored", "cooldown", "missing"]
    retry_after: int = 0  # seconds, with "cooldown"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One verification of a second factor, decided in one atomic store step.

    sms: `code_hash` is compared with the hash stored by put_code (and its expiry).
    otp: `totp_step` is the time step the code matched, or None when it matched none;
         a step at or below the last accepted one is a replay.
    recovery: `passed` says whether the directory holds the code unused; the flow consumes it
              only after this step lets the login through.
    """

    challenge_id: str
    user_id: str  # the owner of the factor: must be the challenge's user
    factor_id: str
    factor_type: str
    code_hash: str | None = None
    totp_step: int | None = None
    passed: bool | None = None
    max_attempts: int = 5
    lockout_threshold: int = 10
    lockout_seconds: int = 900


@dataclass(frozen=True, slots=True)
class Verdict:
    # ok: consumed, `challenge` is what it held. invalid: unknown, expired, wrong user or
    # factor, wrong or replayed code (one answer: no oracle). locked: the user has too many
    # consecutive failures (`retry_after`); judged only once the challenge is known to be that
    # user's, so another user's factor id never reveals its owner's lock. The challenge is
    # deleted when its attempts run out.
    status: Literal["ok", "invalid", "locked"]
    challenge: Challenge | None = None
    retry_after: int = 0
    attempts_left: int = 0


@dataclass(frozen=True, slots=True)
class Counter:
    name: str  # e.g. "sms:user:{user_id}", "login:ip:{ip}"
    limit: int
    window_seconds: int


class ChallengeStore(Protocol):
    async def create(self, challenge: Challenge, now: float) -> None: ...

    async def get(self, challenge_id: str, now: float) -> Challenge | None:
        """The challenge, or None when unknown or expired."""

    async def put_code(self, challenge_id: str, factor_id: str, code_hash: str, now: float, *,
                       code_ttl_seconds: int, cooldown_seconds: int) -> PutCode:
        """Store a fresh SMS code hash for an accepted factor, unless the last one was sent less
        than `cooldown_seconds` ago. A resend replaces the code; attempts are never reset."""

    async def drop_code(self, challenge_id: str, factor_id: str) -> None:
        """Forget an unsent code and its cooldown (the gateway failed)."""

    async def consume(self, challenge_id: str, now: float) -> Challenge | None:
        """The challenge, deleted in the same atomic step, or None when unknown or expired: of
        concurrent calls for one id, exactly one gets it (single-use records: authorization codes,
        the hosted pages' session steps)."""

    async def delete(self, challenge_id: str) -> None:
        """Forget a challenge (nothing happens for an unknown one): one the flow created but
        must not hand out after all."""

    async def verify(self, attempt: Attempt, now: float) -> Verdict: ...

    async def lockout_remaining(self, user_id: str, now: float, threshold: int) -> int:
        """Seconds until the user's second factor unlocks; 0 when not locked."""

    async def clear_failures(self, user_id: str) -> None:
        """Forget the user's failure streak and lock (an administrator's MFA reset)."""

    async def take(self, counters: Sequence[Counter], now: float) -> int:
        """Count one hit on every counter, all or none: 0 when allowed, else seconds to wait.

        The only way to consume a limit: checking one and counting later, in two steps, lets
        concurrent requests all pass a limit none of them has reached yet."""

    async def refund(self, counters: Sequence[Counter], now: float) -> None:
        """Give back one hit taken in each counter's current window (never below zero; a window
        that has ended is left alone): the attempt turned out to be one that should not count."""

    async def reset(self, names: Sequence[str]) -> None: ...

    async def ping(self) -> bool: ...

    async def persistence(self) -> Persistence:
        """How the store keeps its data across its own restart: "aof" (an append-only file),
        "rdb" (snapshots: the changes since the last one are lost), "none" (a restart forgets
        lockout streaks, counters and challenges), or "unknown" (the server will not say)."""

    async def close(self) -> None: ...
