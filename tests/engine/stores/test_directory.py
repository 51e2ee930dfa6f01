"""The directory on both backends (SQLite file, PostgreSQL database): users, factors, recovery codes,
login history, and the guarantees each write gives under concurrency. SQLite's own (its file,
WAL, migrations of files older engines left): test_sqlite.py; PostgreSQL's own: test_postgres.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.crypto import DecryptionError
from engine.stores.directory import FactorProof, NewUser, UnknownUser, UserDirectory, UserExists, UserRecord
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import DirectoryBackend, Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=3650)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def stored_user(run_sync: Run, directory: UserDirectory, user_id: str) -> UserRecord:
    record = run_sync(directory.get_user(user_id))
    assert record is not None
    return record


def new_user(username: str = "Alice", **fields: Any) -> NewUser:
    return NewUser(username=username, password_hash="$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA", **fields)


def test_a_created_user_is_found_by_id_and_by_username_in_any_case(directory: SqlDirectory, run_sync: Run) -> None:
    created = run_sync(directory.create_user(new_user("Alice", email="alice@example.com", name="Alice A.",
                                                 phone_number="+15555550100", app_metadata={"plan": "pro"},
                                                 user_metadata={"lang": "en"}), NOW))

    assert created.user_id.startswith("usr_") and len(created.user_id) == 4 + 22
    assert created.username == "Alice"
    assert (created.email, created.email_verified, created.name) == ("alice@example.com", False, "Alice A.")
    assert created.app_metadata == {"plan": "pro"} and created.user_metadata == {"lang": "en"}
    assert created.created_at == NOW and created.created_at.tzinfo is not None
    assert (created.last_login, created.logins_count, created.preferred_factor) == (None, 0, None)
    assert run_sync(directory.get_user(created.user_id)) == created
    for spelling in ("alice", "ALICE", "Alice", "\uff21\uff4c\uff49\uff43\uff45"):
        assert run_sync(directory.find_login(spelling)) == (created, new_user().password_hash)
    assert run_sync(directory.find_login("bob")) is None
    assert run_sync(directory.get_user("usr_missing")) is None


def test_a_username_taken_in_another_case_is_refused(directory: SqlDirectory, run_sync: Run) -> None:
    run_sync(directory.create_user(new_user("alice"), NOW))

    with pytest.raises(UserExists):
        run_sync(directory.create_user(new_user("ALICE"), NOW))


def test_times_are_stored_as_utc_and_naive_times_are_refused(directory: SqlDirectory, run_sync: Run) -> None:
    paris = timezone(timedelta(hours=2))
    user = run_sync(directory.create_user(new_user(), NOW.astimezone(paris)))

    assert user.created_at == NOW and user.created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError):
        run_sync(directory.create_user(new_user("bob"), NOW.replace(tzinfo=None)))


def test_update_user_changes_the_documented_fields_only(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))

    updated = run_sync(directory.update_user(user.user_id, {"email": "a@example.com", "email_verified": True,
                                                       "name": "A", "phone_number": "+15555550101",
                                                       "app_metadata": {"roles": ["admin"]},
                                                       "user_metadata": {}, "password_hash": "new-hash"}))

    assert updated is not None
    assert (updated.email, updated.email_verified, updated.name) == ("a@example.com", True, "A")
    assert updated.phone_number == "+15555550101" and updated.app_metadata == {"roles": ["admin"]}
    assert run_sync(directory.find_login("alice")) == (updated, "new-hash")
    assert run_sync(directory.update_user(user.user_id, {})) == updated
    with pytest.raises(ValueError, match="username"):
        run_sync(directory.update_user(user.user_id, {"username": "mallory", "email": "m@example.com"}))
    with pytest.raises(ValueError, match="logins_count"):
        run_sync(directory.update_user(user.user_id, {"logins_count": 99}))
    assert run_sync(directory.get_user(user.user_id)) == updated
    assert run_sync(directory.update_user("usr_missing", {"name": "x"})) is None


def test_deleting_a_user_deletes_their_factors_codes_and_history(directory: SqlDirectory, run_sync: Run,
        directory_backend: DirectoryBackend) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    other = run_sync(directory.create_user(new_user("bob"), NOW))
    for owner in (user, other):
        run_sync(directory.add_factor(owner.user_id, "otp", NOW, secret=SECRET))
        run_sync(directory.replace_recovery_codes(owner.user_id, ["h1", "h2"], NOW))
        run_sync(directory.record_login(owner.user_id, NOW, "dev-1", "US"))

    assert run_sync(directory.delete_user(user.user_id)) is True
    assert run_sync(directory.delete_user(user.user_id)) is False

    assert run_sync(directory.get_user(user.user_id)) is None
    for table in ("factors", "recovery_codes", "known_devices", "known_countries"):
        assert directory_backend.rows(f"SELECT user_id FROM {table}") == [(other.user_id,)] * (2 if table ==
                                                                                           "recovery_codes" else 1)


def test_list_users_pages_oldest_first(directory: SqlDirectory, run_sync: Run) -> None:
    created = [run_sync(directory.create_user(new_user(f"user{i}"), NOW + timedelta(seconds=i))) for i in range(5)]

    assert run_sync(directory.list_users(2, 0)) == created[:2]
    assert run_sync(directory.list_users(2, 2)) == created[2:4]
    assert run_sync(directory.list_users(2, 4)) == created[4:]
    assert run_sync(directory.list_users(2, 6)) == []
    with pytest.raises(ValueError):
        run_sync(directory.list_users(-1, 0))


def test_factors_are_added_pending_then_activated_and_listed(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    otp = run_sync(directory.add_factor(user.user_id, "otp", NOW, secret=SECRET))
    sms = run_sync(directory.add_factor(user.user_id, "sms", NOW + timedelta(seconds=1), status="active",
                                   phone_number="+15555550100"))

    assert otp.factor_id.startswith("fac_")
    assert (otp.type, otp.status, otp.confirmed_at, otp.last_used_at) == ("otp", "pending", None, None)
    assert (sms.status, sms.phone_number, sms.confirmed_at) == ("active", "+15555550100", NOW + timedelta(seconds=1))
    assert run_sync(directory.list_factors(user.user_id)) == [sms]
    assert run_sync(directory.list_factors(user.user_id, include_pending=True)) == [otp, sms]

    later = NOW + timedelta(minutes=1)
    run_sync(directory.activate_factor(otp.factor_id, later))
    run_sync(directory.activate_factor(otp.factor_id, later + timedelta(minutes=1)))

    active = run_sync(directory.get_factor(otp.factor_id))
    assert active is not None and (active.status, active.confirmed_at) == ("active", later)
    assert run_sync(directory.list_factors(user.user_id)) == [active, sms]
    assert run_sync(directory.get_factor("fac_missing")) is None


def test_a_factor_is_deleted_only_by_its_owner(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    other = run_sync(directory.create_user(new_user("bob"), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "sms", NOW, phone_number="+15555550100"))

    assert run_sync(directory.delete_factor(other.user_id, factor.factor_id)) is False
    assert run_sync(directory.delete_factor(user.user_id, factor.factor_id)) is True
    assert run_sync(directory.delete_factor(user.user_id, factor.factor_id)) is False
    assert run_sync(directory.get_factor(factor.factor_id)) is None


def test_bad_factors_are_refused(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))

    with pytest.raises(ValueError):
        run_sync(directory.add_factor(user.user_id, "email", NOW))
    with pytest.raises(ValueError):
        run_sync(directory.add_factor(user.user_id, "sms", NOW, status="disabled"))
    with pytest.raises(ValueError):
        run_sync(directory.add_factor(user.user_id, "otp", NOW))
    with pytest.raises(UnknownUser):
        run_sync(directory.add_factor("usr_missing", "sms", NOW, phone_number="+15555550100"))


def test_using_a_factor_stamps_it_and_makes_its_type_preferred(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    otp = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    sms = run_sync(directory.add_factor(user.user_id, "sms", NOW, status="active", phone_number="+15555550100"))

    run_sync(directory.mark_factor_used(sms.factor_id, NOW + timedelta(seconds=5)))
    assert stored_user(run_sync, directory, user.user_id).preferred_factor == "sms"
    run_sync(directory.mark_factor_used(otp.factor_id, NOW + timedelta(seconds=9)))
    run_sync(directory.mark_factor_used("fac_missing", NOW))

    assert stored_user(run_sync, directory, user.user_id).preferred_factor == "otp"
    used = run_sync(directory.get_factor(otp.factor_id))
    assert used is not None and used.last_used_at == NOW + timedelta(seconds=9)


def test_the_totp_secret_is_encrypted_at_rest_and_decrypts_back(directory: SqlDirectory, run_sync: Run,
        directory_backend: DirectoryBackend) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "otp", NOW, secret=SECRET))
    sms = run_sync(directory.add_factor(user.user_id, "sms", NOW, phone_number="+15555550100"))

    [(stored,)] = directory_backend.rows("SELECT secret_encrypted FROM factors WHERE factor_id = ?", factor.factor_id)
    if directory_backend.name == "sqlite":
        path = Path(directory_backend.location)
        on_disk = b"".join(each.read_bytes() for each in path.parent.glob(path.name + "*"))
    else:  # what the server gives any client: every column of every row
        on_disk = repr(directory_backend.rows("SELECT * FROM factors")).encode()

    assert stored.startswith("v1.") and SECRET not in stored
    assert SECRET.encode() not in on_disk and SECRET.lower().encode() not in on_disk
    assert b"usr_" in on_disk  # the check reads the real data (on SQLite wherever WAL put it)
    assert run_sync(directory.factor_secret(factor.factor_id)) == SECRET
    assert run_sync(directory.factor_secret(sms.factor_id)) is None
    assert run_sync(directory.factor_secret("fac_missing")) is None


def test_a_totp_secret_copied_to_another_factor_does_not_decrypt(directory: SqlDirectory, run_sync: Run,
        directory_backend: DirectoryBackend) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    victim = run_sync(directory.add_factor(user.user_id, "otp", NOW, secret=SECRET))
    attacker = run_sync(directory.add_factor(user.user_id, "otp", NOW, secret="AAAAAAAAAAAAAAAA"))
    directory_backend.execute("UPDATE factors SET secret_encrypted ="
                              " (SELECT secret_encrypted FROM factors WHERE factor_id = ?) WHERE factor_id = ?",
                              victim.factor_id, attacker.factor_id)

    with pytest.raises(DecryptionError):
        run_sync(directory.factor_secret(attacker.factor_id))


def test_factor_for_code_reads_the_factor_and_an_active_otp_secret_in_one_go(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    active = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    pending = run_sync(directory.add_factor(user.user_id, "otp", NOW, secret=SECRET))
    sms = run_sync(directory.add_factor(user.user_id, "sms", NOW, status="active", phone_number="+15555550100"))

    assert run_sync(directory.factor_for_code(active.factor_id)) == (run_sync(directory.get_factor(active.factor_id)),
                                                                     SECRET)
    # A pending factor's secret is not decrypted: no code is checked against it.
    assert run_sync(directory.factor_for_code(pending.factor_id)) == (pending, None)
    assert run_sync(directory.factor_for_code(sms.factor_id)) == (sms, None)
    assert run_sync(directory.factor_for_code("fac_missing")) is None


def test_factor_for_code_refuses_a_secret_copied_from_another_factor(directory: SqlDirectory, run_sync: Run,
        directory_backend: DirectoryBackend) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    victim = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    attacker = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret="AAAAAAAAAAAAAAAA"))
    directory_backend.execute("UPDATE factors SET secret_encrypted ="
                              " (SELECT secret_encrypted FROM factors WHERE factor_id = ?) WHERE factor_id = ?",
                              victim.factor_id, attacker.factor_id)

    with pytest.raises(DecryptionError):
        run_sync(directory.factor_for_code(attacker.factor_id))


def spend_code(run_sync: Run, directory: UserDirectory, user_id: str, code_hash: str) -> bool:
    """A recovery code passed as the flow spends it (UserDirectory.spend_proof)."""
    return run_sync(directory.spend_proof(user_id, None, FactorProof(recovery_code_hash=code_hash), NOW))


def test_recovery_codes_are_replaced_and_each_is_consumed_once(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    run_sync(directory.replace_recovery_codes(user.user_id, ["old-1", "old-2"], NOW))
    assert spend_code(run_sync, directory, user.user_id, "old-1") is True

    run_sync(directory.replace_recovery_codes(user.user_id, ["h1", "h2", "h3"], NOW))

    assert run_sync(directory.recovery_codes_left(user.user_id)) == 3
    assert spend_code(run_sync, directory, user.user_id, "old-2") is False
    assert spend_code(run_sync, directory, user.user_id, "h2") is True
    assert spend_code(run_sync, directory, user.user_id, "h2") is False
    assert spend_code(run_sync, directory, "usr_other", "h1") is False
    assert run_sync(directory.recovery_codes_left(user.user_id)) == 2
    with pytest.raises(ValueError):
        run_sync(directory.replace_recovery_codes(user.user_id, ["x", "x"], NOW))
    assert run_sync(directory.recovery_codes_left(user.user_id)) == 2


def test_a_login_is_counted_and_its_device_and_country_remembered(directory: SqlDirectory, run_sync: Run,
        directory_backend: DirectoryBackend) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    assert run_sync(directory.login_summary(user.user_id, LONG_AGO)).device_last_seen == {}

    run_sync(directory.record_login(user.user_id, NOW, "dev-1", "US"))
    run_sync(directory.record_login(user.user_id, NOW + timedelta(hours=1), "dev-2", None))
    run_sync(directory.record_login(user.user_id, NOW + timedelta(hours=2), "dev-1", "FR"))
    run_sync(directory.record_login(user.user_id, NOW + timedelta(hours=3), None, None))
    run_sync(directory.record_login("usr_missing", NOW, "dev-1", "US"))

    summary = run_sync(directory.login_summary(user.user_id, LONG_AGO))
    assert summary.device_last_seen.keys() == {"dev-1", "dev-2"} and summary.country_last_seen.keys() == {"US", "FR"}
    record = run_sync(directory.get_user(user.user_id))
    assert record is not None and (record.logins_count, record.last_login) == (4, NOW + timedelta(hours=3))
    assert directory_backend.rows("SELECT first_seen, last_seen FROM known_devices WHERE device_id = 'dev-1'") == [
        (NOW.isoformat(), (NOW + timedelta(hours=2)).isoformat())]
    assert run_sync(directory.login_summary("usr_missing", LONG_AGO)).country_last_seen == {}


def test_reset_mfa_removes_every_factor_and_code_of_the_user_only(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user(), NOW))
    other = run_sync(directory.create_user(new_user("bob"), NOW))
    for owner in (user, other):
        factor = run_sync(directory.add_factor(owner.user_id, "otp", NOW, status="active", secret=SECRET))
        run_sync(directory.add_factor(owner.user_id, "sms", NOW, phone_number="+15555550100"))
        run_sync(directory.mark_factor_used(factor.factor_id, NOW))
        run_sync(directory.replace_recovery_codes(owner.user_id, ["h1", "h2"], NOW))

    run_sync(directory.reset_mfa(user.user_id))

    assert run_sync(directory.list_factors(user.user_id, include_pending=True)) == []
    assert run_sync(directory.recovery_codes_left(user.user_id)) == 0
    assert stored_user(run_sync, directory, user.user_id).preferred_factor is None
    assert len(run_sync(directory.list_factors(other.user_id, include_pending=True))) == 2
    assert run_sync(directory.recovery_codes_left(other.user_id)) == 2
    assert stored_user(run_sync, directory, other.user_id).preferred_factor == "otp"
