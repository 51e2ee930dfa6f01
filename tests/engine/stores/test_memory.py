"""What only the memory store needs: bounded tables, and JSON-only data like Redis."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from engine.stores.challenges import FAILURE_MEMORY_SECONDS, Attempt, Challenge, ChallengeFactor, Counter
from engine.stores.memory import PURGE_EVERY_OPERATIONS, MemoryChallengeStore

NOW = 1_000_000_000.0


def test_entries_nobody_touches_again_are_purged() -> None:
    store = MemoryChallengeStore()

    async def churn() -> None:
        for n in range(PURGE_EVERY_OPERATIONS):
            for user_id in (f"u-{n}", f"v-{n}"):
                factor = ChallengeFactor(f"f-{user_id}", "otp")
                await store.create(Challenge(user_id, "login", user_id, "app-1", (factor,), NOW + 60), NOW)
            await store.verify(Attempt(f"u-{n}", f"u-{n}", f"f-u-{n}", "otp", totp_step=None), NOW)
            await store.verify(Attempt(f"v-{n}", f"v-{n}", f"f-v-{n}", "otp", totp_step=n), NOW)
            await store.take([Counter(f"login:ip:{n}", 5, 60)], NOW)
        assert all(len(table) == PURGE_EVERY_OPERATIONS for table in
                   (store._challenges, store._failures, store._rates, store._totp_steps))
        for _ in range(PURGE_EVERY_OPERATIONS):  # past every expiry, failure streaks' included
            await store.take([], NOW + FAILURE_MEMORY_SECONDS + 1)

    asyncio.run(churn())
    assert (store._challenges, store._failures, store._rates, store._totp_steps) == ({}, {}, {}, {})


def test_challenge_data_must_be_json_as_in_redis() -> None:
    store = MemoryChallengeStore()
    challenge = Challenge("c-1", "login", "u-1", "app-1", (), NOW + 60, data={"at": object()})
    with pytest.raises(orjson.JSONEncodeError):
        asyncio.run(store.create(challenge, NOW))


def test_a_read_challenge_is_a_copy_the_caller_cannot_change_in_the_store() -> None:
    store = MemoryChallengeStore()

    async def mutate_and_reread() -> object:
        await store.create(Challenge("c-1", "login", "u-1", "app-1", (), NOW + 60, data={"claims": {}}), NOW)
        first = await store.get("c-1", NOW)
        assert first is not None
        first.data["claims"]["role"] = "admin"
        again = await store.get("c-1", NOW)
        assert again is not None
        return again.data

    assert asyncio.run(mutate_and_reread()) == {"claims": {}}
