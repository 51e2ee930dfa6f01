"""The directory's remembered browsers, on both backends (migration 5): kept per user and device, checked and marked in
one statement, expired at `expires_at`, bounded per user, forgotten with the credentials they stood on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.stores.directory import NewUser, RememberedBrowser, UserDirectory
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures


@pytest.fixture
def run(run_sync: Run) -> Run:
    return run_sync
NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def user(run: Run, directory: UserDirectory, name: str = "alice") -> str:
    return run(directory.create_user(NewUser(name, "hash"), NOW)).user_id


def browser(user_id: str, device_id: str = "dev-1", at: datetime = NOW, days: int = 30,
            browser_id: str | None = None) -> RememberedBrowser:
    return RememberedBrowser(browser_id or f"rmb_{user_id}_{device_id}_{at.timestamp():.0f}", user_id, device_id, "Firefox",
                             "app-1", at, at + timedelta(days=days))


def usable(run: Run, directory: UserDirectory, kept: RememberedBrowser, at: datetime = NOW) -> bool:
    return run(directory.use_remembered_browser(kept.browser_id, kept.user_id, kept.device_id, at))


def test_a_remembered_browser_is_usable_by_its_user_and_device_until_it_expires(directory: SqlDirectory, run: Run) -> None:
    alice, bob = user(run, directory, "alice"), user(run, directory, "bob")
    kept = browser(alice, days=2)
    assert run(directory.remember_browser(kept, 50))

    assert usable(run, directory, kept, NOW + timedelta(days=2, microseconds=-1))
    assert not usable(run, directory, kept, NOW + timedelta(days=2))
    assert not run(directory.use_remembered_browser(kept.browser_id, bob, kept.device_id, NOW))
    assert not run(directory.use_remembered_browser(kept.browser_id, alice, "dev-2", NOW))


def test_a_use_is_recorded_and_the_listing_shows_only_unexpired_ones(directory: SqlDirectory, run: Run) -> None:
    alice = user(run, directory)
    old, new = browser(alice, "old", days=1), browser(alice, "new", NOW + timedelta(hours=1))
    run(directory.remember_browser(old, 50))
    run(directory.remember_browser(new, 50))
    usable(run, directory, new, NOW + timedelta(hours=2))

    listed = run(directory.list_remembered_browsers(alice, NOW + timedelta(days=1)))

    assert [b.device_id for b in listed] == ["new"]
    assert listed[0].last_used_at == NOW + timedelta(hours=2)
    assert listed[0] == RememberedBrowser(new.browser_id, alice, "new", "Firefox", "app-1", new.created_at,
                                          new.expires_at, NOW + timedelta(hours=2))


def test_one_per_device_and_at_most_the_bound_per_user(directory: SqlDirectory, run: Run) -> None:
    alice = user(run, directory)
    first = browser(alice, "dev-1")
    run(directory.remember_browser(first, 3))
    again = browser(alice, "dev-1", NOW + timedelta(seconds=1))
    run(directory.remember_browser(again, 3))
    assert not usable(run, directory, first) and usable(run, directory, again)
    for minute in range(1, 4):
        run(directory.remember_browser(browser(alice, f"other-{minute}", NOW + timedelta(minutes=minute)), 3))

    listed = run(directory.list_remembered_browsers(alice, NOW))

    assert [b.device_id for b in listed] == ["other-3", "other-2", "other-1"]


def test_an_unknown_user_has_nothing_remembered(directory: SqlDirectory, run: Run) -> None:
    assert not run(directory.remember_browser(browser("usr_nobody"), 50))


@pytest.mark.parametrize("change", ["password", "reset_mfa", "delete_factor", "delete_user"])
def test_changing_the_credentials_forgets_every_remembered_browser(directory: SqlDirectory, run: Run, change: str) -> None:
    alice, bob = user(run, directory, "alice"), user(run, directory, "bob")
    factor = run(directory.add_factor(alice, "otp", NOW, status="active", secret=SECRET))
    kept, bobs = browser(alice), browser(bob)
    for each in (kept, bobs):
        run(directory.remember_browser(each, 50))

    if change == "password":
        run(directory.update_user(alice, {"password_hash": "new-hash"}))
    elif change == "reset_mfa":
        run(directory.reset_mfa(alice))
    elif change == "delete_factor":
        assert not run(directory.delete_factor(bob, factor.factor_id))  # not bob's: nothing happens
        assert usable(run, directory, kept)
        run(directory.delete_factor(alice, factor.factor_id))
    else:
        run(directory.delete_user(alice))

    assert not usable(run, directory, kept)
    assert run(directory.list_remembered_browsers(alice, NOW)) == []
    assert usable(run, directory, bobs)


def test_other_profile_changes_keep_them(directory: SqlDirectory, run: Run) -> None:
    alice = user(run, directory)
    kept = browser(alice)
    run(directory.remember_browser(kept, 50))

    run(directory.update_user(alice, {"name": "Alice", "app_metadata": {"a": 1}}))

    assert usable(run, directory, kept)


def test_forgetting_one_or_all(directory: SqlDirectory, run: Run) -> None:
    alice, bob = user(run, directory, "alice"), user(run, directory, "bob")
    one, two = browser(alice, "one"), browser(alice, "two")
    for each in (one, two):
        run(directory.remember_browser(each, 50))

    assert not run(directory.forget_remembered_browser(bob, one.browser_id))
    assert run(directory.forget_remembered_browser(alice, one.browser_id))
    assert not run(directory.forget_remembered_browser(alice, one.browser_id))
    assert not usable(run, directory, one) and usable(run, directory, two)
    assert run(directory.forget_remembered_browsers(alice)) == 1
    assert not usable(run, directory, two)
