"""The ChallengeStore contract, run against every implementation (memory and Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypedDict, Unpack

from engine.stores.challenges import Attempt, Challenge, ChallengeFactor, ChallengeStore, Counter, PutCode, Verdict

Run = Callable[[Awaitable[Any]], Any]

# Far from the real time on purpose: expiry must follow `now`, never Redis's own clock.
NOW = 1_000_000_000.0
FACTORS = (ChallengeFactor("f-sms", "sms"), ChallengeFactor("f-otp", "otp"),
           ChallengeFactor("recovery", "recovery"))


class Limits(TypedDict, total=False):
    max_attempts: int
    lockout_threshold: int
    lockout_seconds: int


def challenge(challenge_id: str = "c-1", user_id: str = "u-1", ttl_seconds: float = 300,
              factors: tuple[ChallengeFactor, ...] = FACTORS) -> Challenge:
    return Challenge(challenge_id, "login", user_id, "app-1", factors, NOW + ttl_seconds,
                     data={"ip": "203.0.113.7", "claims": {"roles": ["staff"]}})


def sms(code_hash: str, challenge_id: str = "c-1", user_id: str = "u-1", **limits: Unpack[Limits]) -> Attempt:
    return Attempt(challenge_id, user_id, "f-sms", "sms", code_hash=code_hash, **limits)


def otp(step: int | None, challenge_id: str = "c-1", **limits: Unpack[Limits]) -> Attempt:
    return Attempt(challenge_id, "u-1", "f-otp", "otp", totp_step=step, **limits)


def recovery(passed: bool, challenge_id: str = "c-1", **limits: Unpack[Limits]) -> Attempt:
    return Attempt(challenge_id, "u-1", "recovery", "recovery", passed=passed, **limits)


def put(store: ChallengeStore, code_hash: str, now: float = NOW, challenge_id: str = "c-1",
        factor_id: str = "f-sms") -> Awaitable[PutCode]:
    return store.put_code(challenge_id, factor_id, code_hash, now, code_ttl_seconds=120, cooldown_seconds=30)


def with_code(store: ChallengeStore, run: Run, code_hash: str = "h-right", challenge_id: str = "c-1",
              ttl_seconds: float = 300) -> None:
    run(store.create(challenge(challenge_id, ttl_seconds=ttl_seconds), NOW))
    assert run(put(store, code_hash, challenge_id=challenge_id)) == PutCode("stored")


# Challenges

def test_a_created_challenge_reads_back_until_its_expiry(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge(), NOW))
    assert run(store.get("c-1", NOW)) == challenge()
    assert run(store.get("c-1", NOW + 299.5)) == challenge()
    assert run(store.get("c-1", NOW + 300)) is None
    assert run(store.get("c-unknown", NOW)) is None


def test_a_deleted_challenge_is_unknown_and_deleting_an_unknown_one_is_harmless(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge(), NOW))
    run(store.delete("c-1"))
    run(store.delete("c-unknown"))
    assert run(store.get("c-1", NOW)) is None
    assert run(store.verify(recovery(True), NOW)) == Verdict("invalid")


def test_a_resend_within_the_cooldown_is_refused_with_the_seconds_left(store: ChallengeStore, run: Run) -> None:
    with_code(store, run, "h-1")
    assert run(put(store, "h-2", NOW + 10)) == PutCode("cooldown", 20)
    assert run(put(store, "h-2", NOW + 10.5)) == PutCode("cooldown", 20)
    assert run(put(store, "h-2", NOW + 29.9)) == PutCode("cooldown", 1)
    assert run(put(store, "h-2", NOW + 30)) == PutCode("stored")


def test_a_resend_replaces_the_code_and_keeps_the_attempts(store: ChallengeStore, run: Run) -> None:
    with_code(store, run, "h-1")
    assert run(store.verify(sms("h-wrong"), NOW + 1)) == Verdict("invalid", attempts_left=4)
    assert run(put(store, "h-2", NOW + 40)) == PutCode("stored")
    assert run(store.verify(sms("h-1"), NOW + 41)) == Verdict("invalid", attempts_left=3)
    verdict = run(store.verify(sms("h-2"), NOW + 42))
    assert verdict.status == "ok" and verdict.challenge.attempts == 2


def test_a_code_for_an_unknown_expired_or_unoffered_factor_is_missing(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge(factors=(ChallengeFactor("f-sms", "sms"),)), NOW))
    assert run(put(store, "h", challenge_id="c-unknown")) == PutCode("missing")
    assert run(put(store, "h", factor_id="f-other")) == PutCode("missing")
    assert run(put(store, "h", NOW + 300)) == PutCode("missing")


def test_a_dropped_code_no_longer_verifies_and_leaves_no_cooldown(store: ChallengeStore, run: Run) -> None:
    with_code(store, run, "h-1")
    run(store.drop_code("c-1", "f-sms"))
    assert run(store.verify(sms("h-1"), NOW + 1)).status == "invalid"
    assert run(put(store, "h-2", NOW + 2)) == PutCode("stored")
    assert run(store.verify(sms("h-2"), NOW + 3)).status == "ok"


def test_an_sms_code_expires_after_its_ttl(store: ChallengeStore, run: Run) -> None:
    with_code(store, run, "h-1")
    assert run(store.verify(sms("h-1"), NOW + 120)).status == "invalid"


# Verification

def test_a_correct_sms_code_consumes_the_challenge(store: ChallengeStore, run: Run) -> None:
    with_code(store, run)
    assert run(store.verify(sms("h-right"), NOW + 5)) == Verdict("ok", challenge())
    assert run(store.verify(sms("h-right"), NOW + 6)) == Verdict("invalid")
    assert run(store.get("c-1", NOW + 6)) is None


def test_a_consumed_challenge_comes_back_exactly_whatever_its_data_holds(store: ChallengeStore, run: Run) -> None:
    # Redis answers a verify with the challenge packed as one JSON array (cjson): text that
    # needs escaping, non-ASCII, big and fractional numbers and nulls must survive it.
    data = {"return_to": "https://app.example/a/b?x=\"1\"&y=\\", "name": "Zoë 東京 \U0001f600",
            "controls": "tab\tnew\nline\u0001", "claims": {"big": 2**53 + 1, "ratio": 0.1, "none": None},
            "amr": ["pwd"], "empty": {}, "list": []}
    created = Challenge("c-data", "login", "u-1", "app/1 \"é\"", FACTORS, NOW + 300.125, data=data)
    run(store.create(created, NOW))
    assert run(store.verify(otp(59_000_000, challenge_id="c-data"), NOW + 1)) == Verdict("ok", created)


def test_wrong_codes_use_up_the_challenge_after_max_attempts(store: ChallengeStore, run: Run) -> None:
    with_code(store, run)
    left = [run(store.verify(sms("h-wrong", max_attempts=3), NOW + 1)).attempts_left for _ in range(3)]
    assert left == [2, 1, 0]
    assert run(store.get("c-1", NOW + 1)) is None
    assert run(store.verify(sms("h-right", max_attempts=3), NOW + 2)) == Verdict("invalid")


def test_failures_across_challenges_and_factors_lock_the_user(store: ChallengeStore, run: Run) -> None:
    with_code(store, run, challenge_id="c-1")
    with_code(store, run, challenge_id="c-2")
    with_code(store, run, challenge_id="c-3", ttl_seconds=2000)
    limits: Limits = {"lockout_threshold": 4, "lockout_seconds": 900}
    assert run(store.verify(sms("h-wrong", **limits), NOW)).status == "invalid"
    assert run(store.verify(otp(None, **limits), NOW + 10)).status == "invalid"
    assert run(store.verify(recovery(False, "c-2", **limits), NOW + 20)).status == "invalid"
    assert run(store.lockout_remaining("u-1", NOW + 20, 4)) == 0
    # The failure that reaches the threshold starts a lock of lockout_seconds from that moment.
    assert run(store.verify(sms("h-wrong", "c-2", **limits), NOW + 30)) == Verdict("locked", retry_after=900)

    assert run(store.verify(sms("h-right", "c-3", **limits), NOW + 100)) == Verdict("locked", retry_after=830)
    assert run(store.lockout_remaining("u-1", NOW + 100.5, 4)) == 830
    assert run(store.lockout_remaining("u-1", NOW + 929.5, 4)) == 1
    assert run(store.lockout_remaining("u-1", NOW + 930, 4)) == 0
    assert run(put(store, "h-later", NOW + 930, challenge_id="c-3")) == PutCode("stored")
    assert run(store.verify(sms("h-later", "c-3", **limits), NOW + 931)).status == "ok"


def test_a_success_resets_the_failure_count(store: ChallengeStore, run: Run) -> None:
    with_code(store, run, challenge_id="c-1")
    with_code(store, run, challenge_id="c-2")
    limits: Limits = {"lockout_threshold": 3}
    for _ in range(2):
        assert run(store.verify(sms("h-wrong", "c-1", **limits), NOW)).status == "invalid"
    assert run(store.verify(sms("h-right", "c-1", **limits), NOW)).status == "ok"
    for _ in range(2):
        assert run(store.verify(sms("h-wrong", "c-2", **limits), NOW)).status == "invalid"
    assert run(store.lockout_remaining("u-1", NOW, 3)) == 0


def test_failures_add_up_until_a_success_however_far_apart(store: ChallengeStore, run: Run) -> None:
    # Consecutive failures, not failures per window: waiting out a lock earns no fresh tries.
    with_code(store, run, challenge_id="c-1", ttl_seconds=100_000)
    limits: Limits = {"lockout_threshold": 3, "lockout_seconds": 100, "max_attempts": 20}
    for moment in (NOW, NOW + 1000):
        assert run(store.verify(sms("h-wrong", **limits), moment)).status == "invalid"
    third = run(store.verify(sms("h-wrong", **limits), NOW + 5000))
    assert (third.status, third.retry_after) == ("locked", 100)
    assert run(store.lockout_remaining("u-1", NOW + 5050, 3)) == 50
    # Past the threshold, each failure after a lock locks again: one try per lockout period.
    fourth = run(store.verify(sms("h-wrong", **limits), NOW + 5101))
    assert (fourth.status, fourth.retry_after) == ("locked", 100)
    assert run(put(store, "h-right", NOW + 5202)) == PutCode("stored")  # the first code has expired
    assert run(store.verify(sms("h-right", **limits), NOW + 5202)).status == "ok"
    assert run(store.lockout_remaining("u-1", NOW + 5202, 3)) == 0


def test_a_hundred_consecutive_failures_lock_until_an_administrator_clears_them(store: ChallengeStore,
                                                                              run: Run) -> None:
    # NIST SP 800-63B 5.2.2: never more than 100 consecutive failed attempts.
    limits: Limits = {"lockout_threshold": 100, "lockout_seconds": 1, "max_attempts": 20}
    verdicts = []
    for index in range(100):
        if index % 20 == 0:
            with_code(store, run, challenge_id=f"c-{index}", ttl_seconds=100_000)
        verdicts.append(run(store.verify(sms("h-wrong", f"c-{index - index % 20}", **limits), NOW + index)).status)
    assert verdicts == ["invalid"] * 99 + ["locked"]
    much_later = NOW + 7 * 24 * 3600
    run(store.create(challenge("c-next", ttl_seconds=10**7), NOW))
    assert run(put(store, "h-right", much_later, challenge_id="c-next")) == PutCode("stored")
    assert run(store.verify(sms("h-right", "c-next", **limits), much_later)).status == "locked"
    assert run(store.lockout_remaining("u-1", much_later, 100)) > 0
    run(store.clear_failures("u-1"))
    assert run(store.lockout_remaining("u-1", much_later, 100)) == 0
    assert run(store.verify(sms("h-right", "c-next", **limits), much_later)).status == "ok"


def test_an_unknown_challenge_or_another_users_attempt_counts_no_failure(store: ChallengeStore, run: Run) -> None:
    # Threshold 1: a single counted failure would lock someone.
    with_code(store, run)
    assert run(store.verify(sms("h-right", "c-unknown", lockout_threshold=1), NOW)) == Verdict("invalid")
    assert run(store.verify(sms("h-right", user_id="u-2", lockout_threshold=1), NOW)) == Verdict("invalid")
    assert run(store.lockout_remaining("u-1", NOW, 1)) == 0
    assert run(store.lockout_remaining("u-2", NOW, 1)) == 0
    assert run(store.get("c-1", NOW)) == challenge()
    assert run(store.verify(sms("h-right", lockout_threshold=1), NOW)).status == "ok"


def test_a_factor_the_challenge_does_not_offer_is_refused(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge(factors=(ChallengeFactor("f-sms", "sms"),)), NOW))
    assert run(store.verify(otp(5), NOW)).status == "invalid"
    assert run(store.verify(recovery(True), NOW)).status == "invalid"
    # The offered factor id under another type must not borrow that type's proof.
    borrowed = Attempt("c-1", "u-1", "f-sms", "recovery", passed=True)
    assert run(store.verify(borrowed, NOW)).status == "invalid"
    assert run(store.get("c-1", NOW)).attempts == 3


def test_a_replayed_totp_step_is_refused_even_on_a_new_challenge(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge("c-1"), NOW))
    run(store.create(challenge("c-2"), NOW))
    assert run(store.verify(otp(100, "c-1"), NOW)).status == "ok"
    assert run(store.verify(otp(100, "c-2"), NOW + 1)).status == "invalid"


def test_an_older_totp_step_is_refused_and_a_newer_one_accepted(store: ChallengeStore, run: Run) -> None:
    for challenge_id in ("c-1", "c-2"):
        run(store.create(challenge(challenge_id), NOW))
    assert run(store.verify(otp(100, "c-1"), NOW)).status == "ok"
    assert run(store.verify(otp(99, "c-2"), NOW + 1)) == Verdict("invalid", attempts_left=4)
    assert run(store.verify(otp(None, "c-2"), NOW + 2)) == Verdict("invalid", attempts_left=3)
    assert run(store.verify(otp(101, "c-2"), NOW + 30)).status == "ok"


def test_a_recovery_attempt_passes_only_when_the_code_was_consumed(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge(), NOW))
    assert run(store.verify(recovery(False), NOW)) == Verdict("invalid", attempts_left=4)
    assert run(store.verify(recovery(True), NOW)) == Verdict("ok", replace(challenge(), attempts=1))


def test_twenty_concurrent_verifications_of_one_code_yield_exactly_one_success(store: ChallengeStore,
                                                                             run: Run) -> None:
    with_code(store, run)

    async def all_at_once() -> list[Verdict]:
        return await asyncio.gather(*(store.verify(sms("h-right"), NOW + 1) for _ in range(20)))

    statuses = [verdict.status for verdict in run(all_at_once())]
    assert statuses.count("ok") == 1
    assert statuses.count("invalid") == 19
    assert run(store.lockout_remaining("u-1", NOW + 1, 1)) == 0


# Counters

def counter(name: str, limit: int = 2, window_seconds: int = 60) -> Counter:
    return Counter(name, limit, window_seconds)


def test_take_counts_every_counter_or_none(store: ChallengeStore, run: Run) -> None:
    user, ip = counter("sms:user:u-1", limit=3), counter("sms:ip:203.0.113.7", limit=1)
    assert run(store.take([user, ip], NOW)) == 0
    assert run(store.take([user, ip], NOW + 15)) == 45  # ip is full: user must not count this one
    assert run(store.take([user], NOW + 16)) == 0
    assert run(store.take([user], NOW + 17)) == 0
    assert run(store.take([user], NOW + 18)) == 42


def test_a_counter_window_resets_after_window_seconds(store: ChallengeStore, run: Run) -> None:
    ip = counter("login:ip:203.0.113.7", limit=1)
    assert run(store.take([ip], NOW)) == 0
    assert run(store.take([ip], NOW + 59.5)) == 1
    assert run(store.take([ip], NOW + 60)) == 0
    assert run(store.take([ip], NOW + 61)) == 59


def test_a_refund_gives_back_one_hit_of_the_current_window(store: ChallengeStore, run: Run) -> None:
    user, ip = counter("login:user:u-1", limit=2), counter("login:ip:203.0.113.7", limit=2)
    assert run(store.take([user, ip], NOW)) == 0
    assert run(store.take([user, ip], NOW + 1)) == 0
    assert run(store.take([ip], NOW + 2)) == 58
    run(store.refund([ip], NOW + 3))
    assert run(store.take([ip], NOW + 4)) == 0
    assert run(store.take([ip], NOW + 5)) == 55
    assert run(store.take([user], NOW + 5)) == 55  # only the named counters were refunded


def test_a_refund_never_goes_below_zero_nor_revives_an_ended_window(store: ChallengeStore, run: Run) -> None:
    ip = counter("login:ip:203.0.113.7", limit=1)
    run(store.refund([ip], NOW))  # nothing taken: nothing to give back
    assert run(store.take([ip], NOW)) == 0
    run(store.refund([ip], NOW + 1))
    run(store.refund([ip], NOW + 1))
    assert run(store.take([ip], NOW + 2)) == 0
    assert run(store.take([ip], NOW + 3)) == 57
    run(store.refund([ip], NOW + 60))  # the window has ended: a new one starts with the next take
    assert run(store.take([ip], NOW + 61)) == 0
    assert run(store.take([ip], NOW + 62)) == 59


def test_thirty_concurrent_takes_pass_a_limit_of_ten_exactly_ten_times(store: ChallengeStore, run: Run) -> None:
    user, ip = counter("login:user:u-1", limit=10), counter("login:ip:203.0.113.7", limit=50)

    async def race() -> list[int]:
        return list(await asyncio.gather(*(store.take([user, ip], NOW) for _ in range(30))))

    assert sorted(run(race())) == [0] * 10 + [60] * 20


def test_reset_forgets_the_named_counters(store: ChallengeStore, run: Run) -> None:
    user, ip = counter("login:user:u-1", limit=1), counter("login:ip:203.0.113.7", limit=1)
    assert run(store.take([user, ip], NOW)) == 0
    run(store.reset([user.name]))
    assert run(store.take([user], NOW)) == 0
    assert run(store.take([ip], NOW)) == 60


def test_a_reachable_store_answers_ping(store: ChallengeStore, run: Run) -> None:
    assert run(store.ping()) is True


# Ownership before lockout (issue 6, item 10): a lock is the factor owner's business. An
# attempt on a challenge that is not the owner's must not learn whether the owner is locked.

def lock_user_2(store: ChallengeStore, run: Run) -> None:
    mine = (ChallengeFactor("f-otp-2", "otp"),)
    run(store.create(challenge("c-2", user_id="u-2", factors=mine), NOW))
    failed = run(store.verify(Attempt("c-2", "u-2", "f-otp-2", "otp", totp_step=None, lockout_threshold=1), NOW))
    assert failed.status == "locked"


def foreign(challenge_id: str) -> Attempt:
    """User 2's factor presented on `challenge_id`."""
    return Attempt(challenge_id, "u-2", "f-otp-2", "otp", totp_step=7, lockout_threshold=1)


def test_another_users_locked_factor_on_my_challenge_is_invalid_not_locked(store: ChallengeStore, run: Run) -> None:
    run(store.create(challenge("c-1", user_id="u-1"), NOW))
    lock_user_2(store, run)
    assert run(store.verify(foreign("c-1"), NOW + 1)) == Verdict("invalid")
    assert run(store.get("c-1", NOW + 1)) == challenge("c-1", user_id="u-1")  # nothing counted on it


def test_an_unknown_or_expired_challenge_does_not_reveal_the_factor_owners_lock(store: ChallengeStore,
                                                                               run: Run) -> None:
    run(store.create(challenge("c-short", user_id="u-2", ttl_seconds=10), NOW))
    lock_user_2(store, run)
    assert run(store.verify(foreign("c-unknown"), NOW + 1)) == Verdict("invalid")
    assert run(store.verify(foreign("c-short"), NOW + 11)) == Verdict("invalid")


def test_the_owner_on_their_own_challenge_still_learns_of_their_lock(store: ChallengeStore, run: Run) -> None:
    lock_user_2(store, run)
    run(store.create(challenge("c-3", user_id="u-2", factors=(ChallengeFactor("f-otp-2", "otp"),)), NOW))
    assert run(store.verify(foreign("c-3"), NOW + 1)).status == "locked"
