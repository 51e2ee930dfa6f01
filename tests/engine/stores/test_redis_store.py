"""What only the Redis store has: round trips on the wire and TTLs relative to `now`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection

from engine.errors import StoreUnavailable
from engine.stores.challenges import FAILURE_MEMORY_SECONDS, Attempt, Challenge, ChallengeFactor, Counter, Verdict
from engine.stores.redis_store import RedisChallengeStore
from tests.engine.redis_process import RedisProcess, redis_process  # noqa: F401 - the fixture

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


@pytest.mark.slow
def test_verify_loads_its_script_again_on_a_server_that_forgot_it(redis_process: RedisProcess, run: Run) -> None:
    """VERIFY runs by SHA on connections beside redis-py's pool; a server that lost its scripts
    (SCRIPT FLUSH, a restart) has not run it, and is given it again."""
    store = RedisChallengeStore(redis_process.url)
    try:
        run(store.create(challenge("c-1"), NOW))
        assert run(store.verify(Attempt("c-1", "u-1", "f-otp", "otp", totp_step=7), NOW)).status == "ok"
        with redis_process.client() as client:
            client.script_flush()
        run(store.create(challenge("c-2"), NOW))
        verdict = run(store.verify(Attempt("c-2", "u-1", "f-otp", "otp", totp_step=8), NOW))
        assert verdict.status == "ok" and verdict.challenge is not None and verdict.challenge.challenge_id == "c-2"
    finally:
        run(store.close())


@pytest.mark.slow
def test_verify_goes_on_after_the_server_restarted_empty(redis_process: RedisProcess, run: Run) -> None:
    """As with the pool's connections, a connection the restart closed fails its next command
    at most (503, store_unavailable: nothing ran); the verifies after it are answered."""
    store = RedisChallengeStore(redis_process.url)
    try:
        run(store.create(challenge("c-1"), NOW))
        assert run(store.verify(Attempt("c-1", "u-1", "f-otp", "otp", totp_step=7), NOW)).status == "ok"
        redis_process.restart()
        with redis_process.client() as client:  # the restarted server holds nothing: c-2 is written here
            client.hset("mfa:challenge:c-2", mapping={"user_id": "u-1", "client_id": "app-1", "kind": "login",
                                                       "factors": '[{"factor_id": "f-otp", "type": "otp"}]',
                                                       "data": "{}", "expires_at": repr(NOW + 300), "attempts": 0})
        failures = 0
        for _ in range(2):
            try:
                verdict = run(store.verify(Attempt("c-2", "u-1", "f-otp", "otp", totp_step=8), NOW))
                break
            except StoreUnavailable:
                failures += 1
        assert failures <= 1 and verdict.status == "ok"
    finally:
        run(store.close())


@pytest.mark.slow
def test_a_verify_given_up_midway_leaves_no_reply_for_the_next_one(redis_process: RedisProcess, run: Run) -> None:
    """A verify whose caller stops waiting (store.timeout_ms, a cancelled request) after its
    command was sent must not leave that command's reply to be read as the next verify's."""
    store = RedisChallengeStore(redis_process.url, timeout_ms=5000)
    try:
        run(store.create(challenge("c-1"), NOW))
        run(store.create(challenge("c-2"), NOW))

        async def abandon_then_verify() -> Verdict:
            redis_process.freeze()
            sent = asyncio.ensure_future(store.verify(Attempt("c-1", "u-1", "f-otp", "otp", totp_step=7), NOW))
            await asyncio.sleep(0.2)  # the command is on the wire; its reply will come after the thaw
            sent.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sent
            redis_process.thaw()
            return await store.verify(Attempt("c-2", "u-1", "f-otp", "otp", totp_step=None), NOW)

        # c-1's 'ok' must not be read as c-2's answer: c-2's attempt carries no step and fails.
        assert run(abandon_then_verify()).status == "invalid"
    finally:
        run(store.close())


def test_a_closed_store_refuses_a_verify_instead_of_opening_a_connection(redis_store: RedisChallengeStore,
                                                                          run: Run) -> None:
    run(redis_store.create(challenge("c-closed", ttl_seconds=5), NOW))
    run(redis_store.verify(Attempt("c-closed", "u-1", "f-otp", "otp", totp_step=6), NOW))  # a connection of its own
    run(redis_store.close())  # the fixture closes it again: closing twice is harmless
    opened = list(redis_store._scripts._opened)

    with pytest.raises(StoreUnavailable):
        run(redis_store.verify(Attempt("c-closed", "u-1", "f-otp", "otp", totp_step=7), NOW))
    assert redis_store._scripts._opened == opened  # nothing was opened after close()
