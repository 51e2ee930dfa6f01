"""record_login saves a login's metadata changes in the login's own transaction, merged key by key
into what is stored at that moment; on both backends (an in-memory SQLite database: test_sqlite.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from engine.stores.directory import FactorProof, UserDirectory
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture
from tests.engine.stores.test_directory import NOW, SECRET, new_user, stored_user

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures


def user_with(run_sync: Run, directory: UserDirectory, app: dict[str, Any], user: dict[str, Any]) -> str:
    return run_sync(directory.create_user(new_user(app_metadata=app, user_metadata=user), NOW)).user_id


def test_changes_merge_key_by_key_and_none_deletes(directory: SqlDirectory, run_sync: Run) -> None:
    user_id = user_with(run_sync, directory, {"plan": "pro", "visits": 1}, {"locale": "en"})

    saved = run_sync(directory.record_login(user_id, NOW, "dev-1", "US", metadata_updates={
        "app_metadata": {"visits": 2, "plan": None, "seen": ["US"]}, "user_metadata": {}}))

    record = stored_user(run_sync, directory, user_id)
    assert saved is True
    assert record.app_metadata == {"visits": 2, "seen": ["US"]}
    assert record.user_metadata == {"locale": "en"}
    assert record.logins_count == 1


def test_changes_merge_into_what_is_stored_at_completion_not_at_login_start(directory: SqlDirectory, run_sync: Run) -> None:
    user_id = user_with(run_sync, directory, {"a": 1}, {})
    # An administrator (or another login) changed the user between the password step and the factor.
    run_sync(directory.update_user(user_id, {"app_metadata": {"a": 1, "b": "admin"}}))

    run_sync(directory.record_login(user_id, NOW, None, None, metadata_updates={
        "app_metadata": {"c": 3}, "user_metadata": {"theme": "dark"}}))

    record = stored_user(run_sync, directory, user_id)
    assert record.app_metadata == {"a": 1, "b": "admin", "c": 3}
    assert record.user_metadata == {"theme": "dark"}


def test_a_login_refused_for_a_spent_proof_saves_no_metadata(directory: SqlDirectory, run_sync: Run) -> None:
    user_id = user_with(run_sync, directory, {"a": 1}, {})
    factor = run_sync(directory.add_factor(user_id, "otp", NOW, status="active", secret=SECRET))
    assert run_sync(directory.spend_proof(user_id, factor.factor_id, FactorProof(totp_step=100), NOW))

    saved = run_sync(directory.record_login(user_id, NOW + timedelta(minutes=1), "dev-2", "FR", factor.factor_id,
                                            FactorProof(totp_step=100),
                                            metadata_updates={"app_metadata": {"a": 2}, "user_metadata": {}}))

    record = stored_user(run_sync, directory, user_id)
    assert saved is False
    assert (record.app_metadata, record.logins_count) == ({"a": 1}, 0)


def test_changes_that_grew_too_large_meanwhile_are_skipped_with_a_warning_and_the_login_still_counts(
    directory: SqlDirectory, run_sync: Run, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = user_with(run_sync, directory, {}, {"note": "n"})
    # Checked in the rule against 2 bytes; meanwhile an administrator stored 16,000.
    run_sync(directory.update_user(user_id, {"app_metadata": {"big": "x" * 16_000}}))

    with caplog.at_level(logging.WARNING):
        saved = run_sync(directory.record_login(user_id, NOW, None, None, metadata_updates={
            "app_metadata": {"secret-ish": "y" * 1_000}, "user_metadata": {"note": "kept"}}))

    record = stored_user(run_sync, directory, user_id)
    assert saved is True
    assert record.logins_count == 1
    assert record.app_metadata == {"big": "x" * 16_000}
    assert record.user_metadata == {"note": "kept"}
    assert [r.getMessage() for r in caplog.records if r.name == "engine.stores.directory"] == [
        f"metadata_not_saved reason=too_large user_id={user_id} kind=app_metadata bytes=17026 limit=16384"]
    assert "yyy" not in caplog.text and "secret-ish" not in caplog.text


def test_no_changes_leave_the_metadata_as_it_is(directory: SqlDirectory, run_sync: Run) -> None:
    user_id = user_with(run_sync, directory, {"a": 1}, {"b": 2})

    run_sync(directory.record_login(user_id, NOW, None, None))
    run_sync(directory.record_login(user_id, NOW, None, None, metadata_updates={"app_metadata": {},
                                                                                "user_metadata": {}}))

    record = stored_user(run_sync, directory, user_id)
    assert (record.app_metadata, record.user_metadata, record.logins_count) == ({"a": 1}, {"b": 2}, 2)


def test_changes_for_a_deleted_user_are_dropped_quietly(directory: SqlDirectory, run_sync: Run) -> None:
    user_id = user_with(run_sync, directory, {}, {})
    run_sync(directory.delete_user(user_id))

    assert run_sync(directory.record_login(user_id, NOW, None, None, metadata_updates={
        "app_metadata": {"a": 1}, "user_metadata": {}})) is True
