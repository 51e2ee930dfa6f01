"""MemoryChallengeStore: the single-process ChallengeStore, atomic because no method awaits.

Every method body runs to completion without an `await`, so on one event loop each operation
is as atomic as a Lua script in Redis. It mirrors engine/stores/redis_store.py rule for rule;
tests/engine/stores runs the same suite against both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import orjson

from engine.stores.challenges import (
    FAILURE_MEMORY_SECONDS,
    MAX_CONSECUTIVE_FAILURES,
    Attempt,
    Challenge,
    Counter,
    Persistence,
    PutCode,
    Verdict,
)

# Expired entries are dropped when touched and, so that entries nobody touches again cannot
# pile up, in a sweep of every table once per this many timed operations.
PURGE_EVERY_OPERATIONS = 1024
# RFC 6238 section 5.2: a verifier accepts a step or two of drift, so a step older than a few
# minutes can no longer match and need not be remembered (the Redis store uses the same TTL).
TOTP_STEP_KEEP_SECONDS = 600


@dataclass(slots=True)
class _Code:
    code_hash: str
    expires_at: float
    sent_at: float


@dataclass(slots=True)
class _Entry:
    challenge: Challenge  # its data is empty: `data_json` is the stored copy
    data_json: bytes  # JSON, like Redis, so a flow cannot store what Redis could not hold
    attempts: int
    codes: dict[str, _Code]

    def read(self) -> Challenge:
        return replace(self.challenge, attempts=self.attempts, data=orjson.loads(self.data_json))


@dataclass(slots=True)
class _Window:
    count: int
    ends_at: float


@dataclass(slots=True)
class _Streak:
    count: int
    locked_until: float
    keep_until: float


@dataclass(slots=True)
class _Step:
    step: int
    keep_until: float


class MemoryChallengeStore:
    def __init__(self) -> None:
        self._challenges: dict[str, _Entry] = {}
        self._failures: dict[str, _Streak] = {}
        self._totp_steps: dict[str, _Step] = {}
        self._rates: dict[str, _Window] = {}
        self._operations = 0

    async def create(self, challenge: Challenge, now: float) -> None:
        self._tick(now)
        data_json = orjson.dumps(dict(challenge.data))
        self._challenges[challenge.challenge_id] = _Entry(
            replace(challenge, data={}), data_json, challenge.attempts, {})

    async def get(self, challenge_id: str, now: float) -> Challenge | None:
        self._tick(now)
        entry = self._live_challenge(challenge_id, now)
        return entry.read() if entry else None

    async def put_code(self, challenge_id: str, factor_id: str, code_hash: str, now: float, *,
                       code_ttl_seconds: int, cooldown_seconds: int) -> PutCode:
        self._tick(now)
        entry = self._live_challenge(challenge_id, now)
        if entry is None or not any(f.factor_id == factor_id for f in entry.challenge.factors):
            return PutCode("missing")
        previous = entry.codes.get(factor_id)
        if previous is not None and now - previous.sent_at < cooldown_seconds:
            return PutCode("cooldown", math.ceil(cooldown_seconds - (now - previous.sent_at)))
        entry.codes[factor_id] = _Code(code_hash, now + code_ttl_seconds, now)
        return PutCode("stored")

    async def drop_code(self, challenge_id: str, factor_id: str) -> None:
        entry = self._challenges.get(challenge_id)
        if entry is not None:
            entry.codes.pop(factor_id, None)

    async def consume(self, challenge_id: str, now: float) -> Challenge | None:
        self._tick(now)
        entry = self._live_challenge(challenge_id, now)
        if entry is None:
            return None
        del self._challenges[challenge_id]
        return entry.read()

    async def delete(self, challenge_id: str) -> None:
        self._challenges.pop(challenge_id, None)

    async def verify(self, attempt: Attempt, now: float) -> Verdict:
        self._tick(now)
        entry = self._live_challenge(attempt.challenge_id, now)
        # Not this user's challenge: refuse without counting, or anyone could lock a victim out,
        # and before looking at the lock, or anyone could read whether a victim is locked.
        if entry is None or entry.challenge.user_id != attempt.user_id:
            return Verdict("invalid")
        failures = self._live_streak(attempt.user_id, now)
        locked = _lock_remaining(failures, now)
        if locked:
            return Verdict("locked", retry_after=locked)
        if entry.attempts < attempt.max_attempts and self._proves(entry, attempt, now):
            del self._challenges[attempt.challenge_id]
            self._failures.pop(attempt.user_id, None)
            if attempt.factor_type == "otp" and attempt.totp_step is not None:
                self._totp_steps[attempt.factor_id] = _Step(attempt.totp_step, now + TOTP_STEP_KEEP_SECONDS)
            return Verdict("ok", entry.read())
        return self._fail(entry, attempt, failures, now)

    async def lockout_remaining(self, user_id: str, now: float, threshold: int) -> int:
        self._tick(now)
        return _lock_remaining(self._live_streak(user_id, now), now)

    async def clear_failures(self, user_id: str) -> None:
        self._failures.pop(user_id, None)

    async def take(self, counters: Sequence[Counter], now: float) -> int:
        self._tick(now)
        wait = self._wait(counters, now)
        if wait == 0:
            self._hit(counters, now)
        return wait

    async def refund(self, counters: Sequence[Counter], now: float) -> None:
        self._tick(now)
        for counter in counters:
            window = self._live_window(self._rates, counter.name, now)
            if window is not None and window.count > 0:
                window.count -= 1

    async def reset(self, names: Sequence[str]) -> None:
        for name in names:
            self._rates.pop(name, None)

    async def ping(self) -> bool:
        return True

    async def persistence(self) -> Persistence:
        return "none"  # the process's memory: a restart forgets everything

    async def close(self) -> None:
        pass

    def _proves(self, entry: _Entry, attempt: Attempt, now: float) -> bool:
        offered = any(f.factor_id == attempt.factor_id and f.type == attempt.factor_type
                      for f in entry.challenge.factors)
        if not offered:
            return False
        if attempt.factor_type == "sms":
            code = entry.codes.get(attempt.factor_id)
            # Hashes (HMACs) are compared, not codes: a timing difference reveals nothing usable.
            return (code is not None and attempt.code_hash is not None
                    and code.code_hash == attempt.code_hash and now < code.expires_at)
        if attempt.factor_type == "otp":
            last = self._totp_steps.get(attempt.factor_id)
            last_step = last.step if last is not None and now < last.keep_until else -1
            return attempt.totp_step is not None and attempt.totp_step > last_step
        if attempt.factor_type == "recovery":
            return attempt.passed is True
        return False

    def _fail(self, entry: _Entry, attempt: Attempt, failures: _Streak | None, now: float) -> Verdict:
        entry.attempts += 1
        if entry.attempts >= attempt.max_attempts:
            del self._challenges[attempt.challenge_id]
        if failures is None:
            failures = self._failures[attempt.user_id] = _Streak(0, 0.0, 0.0)
        failures.count += 1
        failures.keep_until = now + FAILURE_MEMORY_SECONDS
        if failures.count >= attempt.lockout_threshold:
            failures.locked_until = now + attempt.lockout_seconds
        locked = _lock_remaining(failures, now)
        if locked:
            return Verdict("locked", retry_after=locked)
        return Verdict("invalid", attempts_left=max(attempt.max_attempts - entry.attempts, 0))

    def _live_streak(self, user_id: str, now: float) -> _Streak | None:
        streak = self._failures.get(user_id)
        if streak is not None and now >= streak.keep_until:
            del self._failures[user_id]
            return None
        return streak

    def _wait(self, counters: Sequence[Counter], now: float) -> int:
        wait = 0
        for counter in counters:
            window = self._live_window(self._rates, counter.name, now)
            if window is not None and window.count >= counter.limit:
                wait = max(wait, _seconds_until(window.ends_at, now))
        return wait

    def _hit(self, counters: Sequence[Counter], now: float) -> None:
        for counter in counters:
            window = self._live_window(self._rates, counter.name, now)
            if window is None:
                self._rates[counter.name] = _Window(1, now + counter.window_seconds)
            else:
                window.count += 1

    def _live_challenge(self, challenge_id: str, now: float) -> _Entry | None:
        entry = self._challenges.get(challenge_id)
        if entry is not None and now >= entry.challenge.expires_at:
            del self._challenges[challenge_id]
            return None
        return entry

    @staticmethod
    def _live_window(table: dict[str, _Window], name: str, now: float) -> _Window | None:
        window = table.get(name)
        if window is not None and now >= window.ends_at:
            del table[name]
            return None
        return window

    def _tick(self, now: float) -> None:
        self._operations += 1
        if self._operations % PURGE_EVERY_OPERATIONS:
            return
        for key in [k for k, e in self._challenges.items() if now >= e.challenge.expires_at]:
            del self._challenges[key]
        for key in [k for k, w in self._rates.items() if now >= w.ends_at]:
            del self._rates[key]
        for key in [k for k, f in self._failures.items() if now >= f.keep_until]:
            del self._failures[key]
        for key in [k for k, s in self._totp_steps.items() if now >= s.keep_until]:
            del self._totp_steps[key]


def _lock_remaining(streak: _Streak | None, now: float) -> int:
    if streak is None:
        return 0
    if streak.count >= MAX_CONSECUTIVE_FAILURES:
        return _seconds_until(streak.keep_until, now)
    return _seconds_until(streak.locked_until, now) if streak.locked_until > now else 0


def _seconds_until(ends_at: float, now: float) -> int:
    return max(math.ceil(ends_at - now), 1)
