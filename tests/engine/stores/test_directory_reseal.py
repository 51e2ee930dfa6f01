"""reseal_secrets on both backends: after a secrets.key rotation, TOTP secrets a previous key sealed
are sealed again under the new key, once; ones no key opens are counted and left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.crypto import DecryptionError, Keyring
from engine.stores.directory import NewUser, Resealed
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import KEYRING, DirectoryBackend, Run, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture

__all__ = ["directory_backend", "run_sync"]  # fixtures

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NEW_KEY = bytes(range(100, 132))
SECRETS = ["JBSWY3DPEHPK3PXP", "KRSXG5CTMVRXEZLU", "MFRGGZDFMZTWQ2LK"]


def enrolled(run_sync: Run, directory: SqlDirectory, count: int) -> list[str]:
    """A user with `count` otp factors (and an sms one, which has no secret); their factor ids."""
    user = run_sync(directory.create_user(NewUser(username="alice", password_hash="x"), NOW))
    run_sync(directory.add_factor(user.user_id, "sms", NOW, status="active", phone_number="+14155550123"))
    return [run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=secret)).factor_id
            for secret in SECRETS[:count]]


def test_reseal_moves_every_secret_to_the_new_key_once(directory_backend: DirectoryBackend, run_sync: Run) -> None:
    factor_ids = enrolled(run_sync, directory_backend.directory, 3)
    rotated = directory_backend.open(Keyring(NEW_KEY, previous=[bytes(range(32))]))
    # A page of two: the paging goes past the first page.
    assert run_sync(rotated.reseal_secrets(page_size=2)) == Resealed(resealed=3, unreadable=0)
    assert run_sync(rotated.reseal_secrets(page_size=2)) == Resealed(resealed=0, unreadable=0)
    new_only = directory_backend.open(Keyring(NEW_KEY))
    assert [run_sync(new_only.factor_secret(factor_id)) for factor_id in factor_ids] == SECRETS
    with pytest.raises(DecryptionError):
        run_sync(directory_backend.open(KEYRING).factor_secret(factor_ids[0]))


def test_a_secret_no_key_opens_is_counted_and_left_as_it_is(directory_backend: DirectoryBackend,
                                                            run_sync: Run) -> None:
    factor_ids = enrolled(run_sync, directory_backend.directory, 2)
    before = directory_backend.rows("SELECT secret_encrypted FROM factors WHERE factor_id = ?", factor_ids[0])
    stranger = directory_backend.open(Keyring(NEW_KEY))  # the old key forgotten: nothing opens
    assert run_sync(stranger.reseal_secrets()) == Resealed(resealed=0, unreadable=2)
    assert directory_backend.rows("SELECT secret_encrypted FROM factors WHERE factor_id = ?",
                                  factor_ids[0]) == before


def test_a_secret_changed_since_it_was_read_is_not_overwritten(directory_backend: DirectoryBackend,
                                                               run_sync: Run) -> None:
    """The write is a compare and set: a factor enrolled again meanwhile keeps its new secret."""
    from engine.stores import directory_sql as sql

    (factor_id,) = enrolled(run_sync, directory_backend.directory, 1)
    ((sealed,),) = directory_backend.rows("SELECT secret_encrypted FROM factors WHERE factor_id = ?", factor_id)
    directory_backend.execute("UPDATE factors SET secret_encrypted = ? WHERE factor_id = ?",
                              KEYRING.encrypt("NEWSECRETNEWSECR", context=f"totp:{factor_id}"), factor_id)
    rotated = directory_backend.open(Keyring(NEW_KEY, previous=[bytes(range(32))]))
    fresh = sql.reseal_secret(Keyring(NEW_KEY, previous=[bytes(range(32))]), factor_id, sealed)
    assert fresh is not None
    assert run_sync(rotated._write(sql.replace_secret(factor_id, sealed, fresh))) is False
    assert run_sync(rotated.factor_secret(factor_id)) == "NEWSECRETNEWSECR"
