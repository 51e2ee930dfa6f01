"""RedisChallengeStore: the ChallengeStore shared between instances, on redis.asyncio.

Each read-then-write operation is one Lua script (engine/stores/redis_scripts.py) run with
EVALSHA, so `verify` is one round trip whatever the factor; writes without reads go in one
MULTI. Redis TTLs only clean up: expiry is judged against the caller's `now`.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, cast

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, NoScriptError

from engine.errors import StoreUnavailable
from engine.stores.challenges import (
    CHALLENGE_KEY,
    FAILURE_MEMORY_SECONDS,
    MAX_CONSECUTIVE_FAILURES,
    FAILURES_KEY,
    RATE_KEY,
    TOTP_STEP_KEY,
    Attempt,
    Challenge,
    ChallengeFactor,
    Counter,
    Persistence,
    PutCode,
    Verdict,
)
from engine.stores.redis_scripts import ChallengeScripts

P = ParamSpec("P")
T = TypeVar("T")

# A challenge outlives its expires_at by this much in Redis, so a server clock running ahead
# of the engine's cannot drop a challenge the engine still considers live.
CHALLENGE_TTL_MARGIN_SECONDS = 60
# RFC 6238 section 5.2: a verifier accepts a step or two of drift, so a step older than a few
# minutes can no longer match and need not be remembered.
TOTP_STEP_TTL_MS = 600_000


def _unavailable_on_error(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """A Redis outage becomes StoreUnavailable (503): the flow stops, it never guesses."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("the challenge store is unavailable") from exc

    return call


class _ScriptConnections:
    """Runs EVALSHA on connections of its own, beside redis-py's pool: VERIFY is the command of
    every verify, and redis-py's general path (Script, execute_command, the pool's lock, health
    check and observability hooks, the retry wrapper) cost about 20 us of event-loop CPU per
    call more than the command itself (64 against 45 us, 16 concurrent calls on uvloop).

    A call takes an idle connection, or opens one (at most the pool's max_connections, past
    which it fails as the pool would), and gives it back however it ends: redis-py's send and
    read close their connection on a timeout, an OS error or a cancellation, so no reply is
    ever left unread on one. Each is checked before use as the pool checks its own
    (ensure_connection): one the server closed while it sat idle (a restart) fails at most its
    next command, as the pool's do. Its connections count beside the pool's: one process
    may hold up to twice max_connections to Redis. Once closed, a call fails (503) rather than
    open a connection nothing would close."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._idle: list[AbstractConnection] = []
        self._opened: list[AbstractConnection] = []
        self._closed = False

    async def evalsha(self, script: AsyncScript, keys: Sequence[str], args: Sequence[EncodableT]) -> Any:
        if self._closed:
            raise RedisConnectionError("the challenge store is closed")
        connection = self._idle.pop() if self._idle else self._open()
        try:
            await self._pool.ensure_connection(connection)
            try:
                return await _call(connection, "EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                # The server forgot the script (restarted, SCRIPT FLUSH), so it did not run:
                # EVAL sends it whole, runs it and caches it again.
                return await _call(connection, "EVAL", script.script, len(keys), *keys, *args)
        finally:
            self._idle.append(connection)

    def _open(self) -> AbstractConnection:
        if len(self._opened) >= self._pool.max_connections:
            raise MaxConnectionsError("Too many connections")
        connection: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        self._opened.append(connection)
        return connection

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(connection.disconnect() for connection in self._opened), return_exceptions=True)


async def _call(connection: AbstractConnection, *command: EncodableT) -> Any:
    await connection.send_command(*command, check_health=False)
    return await connection.read_response()


class RedisChallengeStore:
    def __init__(self, url: str, *, timeout_ms: int = 500) -> None:
        """`timeout_ms` bounds connecting and every reply (store.timeout_ms): a Redis that accepts
        connections but answers nothing (hung, swapping, paused) must cost a request a 503 after
        that long, as a stopped one does, not redis-py's default 5 s. A timed-out command is not
        retried (redis-py's from_url default): it may have run, and a Lua script run twice
        would count twice."""
        seconds = timeout_ms / 1000
        self._redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=seconds,
                                                        socket_connect_timeout=seconds)
        self._verify = self._redis.register_script(ChallengeScripts.VERIFY)
        self._put_code = self._redis.register_script(ChallengeScripts.PUT_CODE)
        self._take = self._redis.register_script(ChallengeScripts.TAKE)
        self._refund = self._redis.register_script(ChallengeScripts.REFUND)
        self._scripts = _ScriptConnections(self._redis.connection_pool)

    @_unavailable_on_error
    async def create(self, challenge: Challenge, now: float) -> None:
        key = CHALLENGE_KEY.format(challenge.challenge_id)
        fields: dict[FieldT, EncodableT] = {
            "user_id": challenge.user_id,
            "client_id": challenge.client_id,
            "kind": challenge.kind,
            "factors": orjson.dumps([{"factor_id": f.factor_id, "type": f.type} for f in challenge.factors]),
            "data": orjson.dumps(dict(challenge.data)),
            "expires_at": _number(challenge.expires_at),
            "attempts": challenge.attempts,
        }
        ttl_ms = _milliseconds(challenge.expires_at - now + CHALLENGE_TTL_MARGIN_SECONDS)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)  # a stale code field must not survive into a new challenge
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    @_unavailable_on_error
    async def get(self, challenge_id: str, now: float) -> Challenge | None:
        fields = cast("dict[str, str]", await self._redis.hgetall(CHALLENGE_KEY.format(challenge_id)))
        if not fields or float(fields["expires_at"]) <= now:
            return None
        return _challenge(challenge_id, fields)

    @_unavailable_on_error
    async def put_code(self, challenge_id: str, factor_id: str, code_hash: str, now: float, *,
                       code_ttl_seconds: int, cooldown_seconds: int) -> PutCode:
        status, retry_after = await self._put_code(
            keys=[CHALLENGE_KEY.format(challenge_id)],
            args=[_number(now), factor_id, code_hash, _number(now + code_ttl_seconds), cooldown_seconds])
        return PutCode(status, int(retry_after))

    @_unavailable_on_error
    async def drop_code(self, challenge_id: str, factor_id: str) -> None:
        await self._redis.hdel(CHALLENGE_KEY.format(challenge_id),
                               f"code:{factor_id}", f"code_expires:{factor_id}", f"sent_at:{factor_id}")

    @_unavailable_on_error
    async def consume(self, challenge_id: str, now: float) -> Challenge | None:
        key = CHALLENGE_KEY.format(challenge_id)
        # MULTI: HGETALL and DEL run together, so of concurrent calls one reads the fields and the others none.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.delete(key)
            fields, _ = await pipe.execute()
        if not fields or float(fields["expires_at"]) <= now:
            return None
        return _challenge(challenge_id, cast("dict[str, str]", fields))

    @_unavailable_on_error
    async def delete(self, challenge_id: str) -> None:
        await self._redis.delete(CHALLENGE_KEY.format(challenge_id))

    @_unavailable_on_error
    async def verify(self, attempt: Attempt, now: float) -> Verdict:
        reply = await self._scripts.evalsha(
            self._verify,
            keys=[CHALLENGE_KEY.format(attempt.challenge_id), FAILURES_KEY.format(attempt.user_id),
                  TOTP_STEP_KEY.format(attempt.factor_id)],
            args=[_number(now), attempt.user_id, attempt.factor_id, attempt.factor_type, _proof(attempt),
                  attempt.max_attempts, attempt.lockout_threshold, _number(now + attempt.lockout_seconds),
                  FAILURE_MEMORY_SECONDS * 1000, TOTP_STEP_TTL_MS, MAX_CONSECUTIVE_FAILURES])
        status, retry_after, attempts_left, *consumed = reply
        if status != "ok":
            return Verdict(status, retry_after=int(retry_after), attempts_left=int(attempts_left))
        fields = dict(zip(ChallengeScripts.VERIFIED_FIELDS, orjson.loads(consumed[0]), strict=True))
        return Verdict("ok", _challenge(attempt.challenge_id, fields))

    @_unavailable_on_error
    async def lockout_remaining(self, user_id: str, now: float, threshold: int) -> int:
        key = FAILURES_KEY.format(user_id)
        streak = await self._redis.hmget(key, ["count", "locked_until"])
        count, locked_until = cast("list[str | None]", streak)
        if count is not None and int(count) >= MAX_CONSECUTIVE_FAILURES:
            return max(1, math.ceil(await self._redis.pttl(key) / 1000))
        if locked_until is None or float(locked_until) <= now:
            return 0
        return _seconds_until(float(locked_until), now)

    @_unavailable_on_error
    async def clear_failures(self, user_id: str) -> None:
        await self._redis.delete(FAILURES_KEY.format(user_id))

    @_unavailable_on_error
    async def take(self, counters: Sequence[Counter], now: float) -> int:
        if not counters:
            return 0
        wait = await self._take(keys=_rate_keys(counters), args=_rate_args(counters, now))
        return int(wait)

    @_unavailable_on_error
    async def refund(self, counters: Sequence[Counter], now: float) -> None:
        if counters:
            await self._refund(keys=_rate_keys(counters), args=[_number(now)])

    @_unavailable_on_error
    async def reset(self, names: Sequence[str]) -> None:
        if names:
            await self._redis.delete(*(RATE_KEY.format(name) for name in names))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def persistence(self) -> Persistence:
        """From INFO persistence (aof_enabled) and CONFIG GET save. Managed services often
        disable CONFIG through an ACL or a rename: then, unless the AOF is on, "unknown"."""
        try:
            info = await self._redis.info("persistence")
            if str(info.get("aof_enabled")) == "1":
                return "aof"
            save = await self._redis.config_get("save")
        except (RedisError, OSError):
            return "unknown"
        # `save ""` turns snapshots off; anything else is a list of "seconds changes" points.
        return "rdb" if str(save.get("save") or "").strip() else "none"

    async def close(self) -> None:
        await self._scripts.close()
        await self._redis.aclose(close_connection_pool=True)


def _challenge(challenge_id: str, fields: Mapping[str, str]) -> Challenge:
    factors = tuple(ChallengeFactor(f["factor_id"], f["type"]) for f in orjson.loads(fields["factors"]))
    return Challenge(challenge_id, fields["kind"], fields["user_id"], fields["client_id"], factors,
                     float(fields["expires_at"]), int(fields["attempts"]), orjson.loads(fields["data"]))


def _proof(attempt: Attempt) -> str:
    if attempt.factor_type == "sms":
        return attempt.code_hash or ""
    if attempt.factor_type == "otp":
        return "" if attempt.totp_step is None else str(attempt.totp_step)
    return "1" if attempt.passed is True else ""


def _rate_keys(counters: Sequence[Counter]) -> list[str]:
    return [RATE_KEY.format(counter.name) for counter in counters]


def _rate_args(counters: Sequence[Counter], now: float) -> list[Any]:
    args: list[Any] = [_number(now)]
    for counter in counters:
        args += [counter.limit, _number(now + counter.window_seconds), counter.window_seconds * 1000]
    return args


def _number(seconds: float) -> str:
    """A float as text Lua's tonumber reads back exactly (repr round-trips)."""
    return repr(float(seconds))


def _milliseconds(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)


def _seconds_until(ends_at: float, now: float) -> int:
    return max(math.ceil(ends_at - now), 1)
