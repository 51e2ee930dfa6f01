"""What only the Redis store has: round trips on the wire and TTLs relative to `now`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection

from engine.stores.challenges import FAILURE_MEMORY_SECONDS, Attempt, Challenge, ChallengeFactor, Counter, Verdict
from engine.stores.redis_store import RedisChallengeStore

Run = Callable[[Awaitable[Any]], Any]

NOW = 1_000_000_000.0
FACTORS = (ChallengeFactor("f-sms", "sms"), ChallengeFactor("f-otp", "otp"),
           ChallengeFactor("recovery", "recovery"))


class Wire:
    """What the client writes to its sockets: each write is one round trip."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.round_trips = 0
        self.commands: list[str] = []
        send_packed_command = AbstractConnection.send_packed_command
        send_command = AbstractConnection.send_command

        async def counting_send_packed_command(connection: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            self.round_trips += 1
            await send_packed_command(connection, *args, **kwargs)

        async def naming_send_command(connection: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            self.commands.append(str(args[0]).upper())
            await send_command(connection, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send_packed_command)
        monkeypatch.setattr(AbstractConnection, "send_command", naming_send_command)

    def clear(self) -> None:
        self.round_trips = 0
        self.commands.clear()


def challenge(challenge_id: str, ttl_seconds: float = 300) -> Challenge:
    return Challenge(challenge_id, "login", "u-1", "app-1", FACTORS, NOW + ttl_seconds)


def test_verify_is_one_round_trip_for_every_factor_and_outcome(redis_store: RedisChallengeStore, run: Run,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for challenge_id in ("c-warm", "c-sms", "c-otp", "c-recovery", "c-lock"):
        run(redis_store.create(challenge(challenge_id), NOW))
    for challenge_id in ("c-warm", "c-sms"):
        run(redis_store.put_code(challenge_id, "f-sms", "h-right", NOW, code_ttl_seconds=120, cooldown_seconds=30))
    wire = Wire(monkeypatch)
    # Loads the script if the server lacks it (NOSCRIPT, SCRIPT LOAD, EVALSHA): once per process.
    assert run(redis_store.verify(Attempt("c-warm", "u-1", "f-sms", "sms", code_hash="h-right"), NOW)).status == "ok"

    attempts = [
        (Attempt("c-sms", "u-1", "f-sms", "sms", code_hash="h-wrong"), "invalid"),
        (Attempt("c-sms", "u-1", "f-sms", "sms", code_hash="h-right"), "ok"),
        (Attempt("c-otp", "u-1", "f-otp", "otp", totp_step=None), "invalid"),
        (Attempt("c-otp", "u-1", "f-otp", "otp", totp_step=42), "ok"),
        (Attempt("c-recovery", "u-1", "recovery", "recovery", passed=False), "invalid"),
        (Attempt("c-recovery", "u-1", "recovery", "recovery", passed=True), "ok"),
        (Attempt("c-unknown", "u-1", "f-sms", "sms", code_hash="h-right"), "invalid"),
        (Attempt("c-lock", "u-1", "f-sms", "sms", code_hash="h-wrong", lockout_threshold=1), "locked"),
        (Attempt("c-lock", "u-1", "f-sms", "sms", code_hash="h-wrong", lockout_threshold=1), "locked"),
    ]
    for attempt, status in attempts:
        wire.clear()
        assert run(redis_store.verify(attempt, NOW + 1)).status == status
        assert (wire.round_trips, wire.commands) == (1, ["EVALSHA"]), attempt


def test_a_successful_verify_needs_no_second_read(redis_store: RedisChallengeStore, run: Run,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stored = Challenge("c-1", "login", "u-1", "app-1", FACTORS, NOW + 300, data={"ip": "203.0.113.7"})
    run(redis_store.create(stored, NOW))
    run(redis_store.verify(Attempt("c-1", "u-1", "f-otp", "otp", totp_step=None), NOW))
    wire = Wire(monkeypatch)
    verdict = run(redis_store.verify(Attempt("c-1", "u-1", "f-otp", "otp", totp_step=7), NOW + 1))
    assert verdict == Verdict("ok", Challenge("c-1", "login", "u-1", "app-1", FACTORS, NOW + 300, 1,
                                              {"ip": "203.0.113.7"}))
    assert wire.round_trips == 1


def test_ttls_are_durations_from_now_whatever_the_server_clock(redis_store: RedisChallengeStore, run: Run,
                                                                redis_url: str) -> None:
    # NOW is decades away from the server's clock: an EXPIREAT would drop these keys at once.
    run(redis_store.create(challenge("c-1", ttl_seconds=300), NOW))
    run(redis_store.create(challenge("c-2"), NOW))
    run(redis_store.verify(Attempt("c-2", "u-1", "f-otp", "otp", totp_step=9), NOW))
    run(redis_store.verify(Attempt("c-1", "u-1", "f-otp", "otp", totp_step=None, lockout_seconds=900), NOW))
    run(redis_store.take([Counter("sms:user:u-1", 3, 3600)], NOW))

    async def ttls_ms() -> dict[str, int]:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            return {key: await client.pttl(key) for key in
                    ("mfa:challenge:c-1", "mfa:failures:u-1", "mfa:totp-step:f-otp", "mfa:rate:sms:user:u-1")}
        finally:
            await client.aclose()

    ttls = run(ttls_ms())
    # The challenge: 300 s to expires_at plus the cleanup margin.
    assert 355_000 < ttls["mfa:challenge:c-1"] <= 360_000
    # A failure streak is remembered FAILURE_MEMORY_SECONDS after its last failure, not a lockout period.
    assert FAILURE_MEMORY_SECONDS * 1000 - 5_000 < ttls["mfa:failures:u-1"] <= FAILURE_MEMORY_SECONDS * 1000
    assert 595_000 < ttls["mfa:totp-step:f-otp"] <= 600_000
    assert 3_595_000 < ttls["mfa:rate:sms:user:u-1"] <= 3_600_000


def test_an_unreachable_redis_answers_ping_with_false(run: Run) -> None:
    unreachable = RedisChallengeStore("redis://127.0.0.1:1/15")
    try:
        assert run(unreachable.ping()) is False
    finally:
        run(unreachable.close())
