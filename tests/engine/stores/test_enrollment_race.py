"""A confirm and a new enrollment of the same user at once (red-team finding on PostgreSQL): the
enrollment drops pending factors only, and a confirm reports whether its factor became active, so
a factor a user just confirmed is never deleted behind an "enrolled" answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from engine.stores.directory import NewUser
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import DirectoryBackend, Run, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture

__all__ = ["directory_backend", "run_sync"]  # fixtures

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXP"


def test_activate_says_whether_the_factor_became_active(directory_backend: DirectoryBackend, run_sync: Run) -> None:
    directory = directory_backend.directory
    user = run_sync(directory.create_user(NewUser(username="alice", password_hash="x"), NOW))
    pending = run_sync(directory.enroll_factor(user.user_id, "otp", NOW, max_active=10, secret=SECRET))
    assert pending is not None
    assert run_sync(directory.activate_factor(pending.factor_id, NOW)) is True
    assert run_sync(directory.activate_factor(pending.factor_id, NOW)) is False  # active already
    assert run_sync(directory.activate_factor("fac_gone", NOW)) is False


def test_a_confirm_racing_a_new_enrollment_never_loses_a_factor_it_reported(
        directory_backend: DirectoryBackend, run_sync: Run) -> None:
    """Each round: a pending factor, then its activation and a new enrollment at once, on two
    connections (pools). Whatever the order, an activation that answered True left an active
    factor, and one that answered False left none of its own."""
    first, second = directory_backend.open(), directory_backend.open()
    user = run_sync(first.create_user(NewUser(username="bob", password_hash="x"), NOW))

    async def race(confirming: SqlDirectory, enrolling: SqlDirectory) -> tuple[str, bool]:
        pending = await confirming.enroll_factor(user.user_id, "otp", NOW, max_active=100, secret=SECRET)
        assert pending is not None
        activated, _ = await asyncio.gather(confirming.activate_factor(pending.factor_id, NOW),
                                            enrolling.enroll_factor(user.user_id, "otp", NOW, max_active=100,
                                                                    secret=SECRET))
        return pending.factor_id, activated

    for _ in range(25):
        factor_id, activated = run_sync(race(first, second))
        found = run_sync(first.get_factor(factor_id))
        if activated:
            assert found is not None and found.status == "active"
        else:
            assert found is None
