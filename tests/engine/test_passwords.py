"""PasswordHasher: argon2id off the event loop, the same cost for unknown users, never raising on verify."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from engine.passwords import MAX_PASSWORD_CHARS, PasswordHasher

T = TypeVar("T")


def cheap() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_kib=8192, parallelism=1)


def test_a_hashed_password_verifies() -> None:
    hasher = cheap()

    async def scenario() -> bool:
        return await hasher.verify(await hasher.hash("correct horse"), "correct horse")

    assert asyncio.run(scenario()) is True


def test_the_hash_is_argon2id_with_the_given_parameters_and_a_fresh_salt() -> None:
    hasher = cheap()

    async def scenario() -> tuple[str, str]:
        return await hasher.hash("pw"), await hasher.hash("pw")

    first, second = asyncio.run(scenario())

    assert first.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert first != second


def test_a_wrong_password_does_not_verify() -> None:
    hasher = cheap()

    async def scenario() -> bool:
        return await hasher.verify(await hasher.hash("correct horse"), "Correct horse")

    assert asyncio.run(scenario()) is False


@pytest.mark.parametrize("encoded", ["", "not a hash", "$argon2id$v=19$m=8192,t=1,p=1$xx$yy",
                                     "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"])
def test_a_malformed_hash_does_not_verify_and_does_not_raise(encoded: str) -> None:
    assert asyncio.run(cheap().verify(encoded, "pw")) is False


def test_a_truncated_hash_does_not_verify() -> None:
    hasher = cheap()

    async def scenario() -> bool:
        return await hasher.verify((await hasher.hash("pw"))[:-4], "pw")

    assert asyncio.run(scenario()) is False


def test_an_unknown_user_costs_a_real_argon2_verification() -> None:
    # Default-like memory so argon2 dominates the thread hop; the bound is loose on purpose:
    # it proves argon2 ran, not that the two timings match closely.
    hasher = PasswordHasher(time_cost=2, memory_kib=32768, parallelism=1)

    async def timed(encoded: str | None) -> tuple[bool, float]:
        started = time.perf_counter()
        result = await hasher.verify(encoded, "guess")
        return result, time.perf_counter() - started

    async def scenario() -> tuple[float, float]:
        encoded = await hasher.hash("the real password")
        await hasher.verify(None, "warm up")  # the dummy hash is made once, on first need
        wrong = min([(await timed(encoded))[1] for _ in range(3)])
        results = [await timed(None) for _ in range(3)]
        assert not any(ok for ok, _ in results)
        return wrong, min(elapsed for _, elapsed in results)

    wrong, unknown = asyncio.run(scenario())

    assert unknown > 0.1 * wrong


def test_a_malformed_hash_also_costs_a_real_argon2_verification() -> None:
    hasher = PasswordHasher(time_cost=2, memory_kib=32768, parallelism=1)

    async def scenario() -> tuple[float, float]:
        encoded = await hasher.hash("the real password")
        await hasher.verify(None, "warm up")
        started = time.perf_counter()
        await hasher.verify(encoded, "guess")
        wrong = time.perf_counter() - started
        started = time.perf_counter()
        assert await hasher.verify("garbage", "guess") is False
        return wrong, time.perf_counter() - started

    wrong, malformed = asyncio.run(scenario())

    assert malformed > 0.1 * wrong


def test_verify_with_no_hash_is_false_even_for_an_empty_password() -> None:
    assert asyncio.run(cheap().verify(None, "")) is False


def test_a_too_long_password_is_refused() -> None:
    hasher = cheap()
    too_long = "x" * (MAX_PASSWORD_CHARS + 1)

    async def scenario() -> tuple[bool, bool]:
        longest = await hasher.hash("x" * MAX_PASSWORD_CHARS)
        return (await hasher.verify(longest, "x" * MAX_PASSWORD_CHARS),
                await hasher.verify(longest, too_long))

    assert asyncio.run(scenario()) == (True, False)
    with pytest.raises(ValueError) as raised:
        asyncio.run(hasher.hash(too_long))
    assert too_long not in str(raised.value)


def test_needs_rehash_reports_other_parameters_and_unreadable_hashes() -> None:
    cheap_hash = asyncio.run(cheap().hash("pw"))

    assert cheap().needs_rehash(cheap_hash) is False
    assert PasswordHasher(time_cost=2, memory_kib=8192, parallelism=1).needs_rehash(cheap_hash) is True
    assert cheap().needs_rehash("garbage") is True


def test_verification_does_not_block_the_event_loop() -> None:
    hasher = PasswordHasher(time_cost=2, memory_kib=32768, parallelism=1)
    encoded = asyncio.run(hasher.hash("pw"))

    async def scenario() -> tuple[int, bool]:
        ticks = 0
        running = True

        async def ticker() -> None:
            nonlocal ticks
            while running:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        result = await hasher.verify(encoded, "pw")
        during = ticks - before
        running = False
        await task
        return during, result

    during, result = asyncio.run(scenario())

    assert result is True
    assert during >= 3  # a blocking verify would let the ticker run at most once


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_hashing_runs_on_the_executor_it_is_given() -> None:
    with CountingExecutor() as executor:
        hasher = PasswordHasher(time_cost=1, memory_kib=8192, parallelism=1, executor=executor)

        async def scenario() -> bool:
            return await hasher.verify(await hasher.hash("pw"), "pw")

        assert asyncio.run(scenario()) is True
        assert executor.submitted == 2
