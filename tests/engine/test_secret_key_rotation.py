"""secrets.key rotation: the new key seals and MACs, `secrets.previous_keys` still open what the
old keys sealed and match what they MACed, until `mfa-engine keys reseal` has moved every sealed
secret to the new key (MACs of recovery codes cannot be recomputed: their key stays listed until
the codes are regenerated)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from datetime import UTC, datetime
import os
from pathlib import Path

import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import ConfigError, SecretsSettings, load_settings
from engine.crypto import DecryptionError, Keyring
from engine.sms.recording import RecordingSmsGateway
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import DE_IP, START, LoginService, totp_now
from tests.engine.service import SECRET_KEY, make_settings

OLD, NEW, OTHER = bytes(range(32)), bytes(range(1, 33)), os.urandom(32)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def setting(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_secret_sealed_under_the_previous_key_opens_after_the_rotation() -> None:
    sealed = Keyring(OLD).encrypt("JBSWY3DPEHPK3PXP", context="totp:fac_1")
    assert Keyring(NEW, previous=[OLD]).decrypt(sealed, context="totp:fac_1") == "JBSWY3DPEHPK3PXP"


def test_the_new_key_seals_and_the_previous_one_cannot_open_it() -> None:
    sealed = Keyring(NEW, previous=[OLD]).encrypt("x", context="c")
    with pytest.raises(DecryptionError):
        Keyring(OLD).decrypt(sealed, context="c")


def test_a_previous_key_does_not_open_another_context() -> None:
    sealed = Keyring(OLD).encrypt("x", context="totp:fac_1")
    with pytest.raises(DecryptionError):
        Keyring(NEW, previous=[OLD]).decrypt(sealed, context="totp:fac_2")


def test_a_secret_of_a_key_neither_current_nor_previous_is_refused() -> None:
    with pytest.raises(DecryptionError):
        Keyring(NEW, previous=[OLD]).decrypt(Keyring(OTHER).encrypt("x", context="c"), context="c")


def test_reseal_moves_an_old_secret_to_the_current_key_and_leaves_a_current_one() -> None:
    rotated = Keyring(NEW, previous=[OLD])
    old_sealed = Keyring(OLD).encrypt("secret", context="c")
    moved = rotated.reseal(old_sealed, context="c")
    assert moved is not None and Keyring(NEW).decrypt(moved, context="c") == "secret"
    assert rotated.reseal(moved, context="c") is None
    with pytest.raises(DecryptionError):
        rotated.reseal(Keyring(OTHER).encrypt("x", context="c"), context="c")


def test_a_mac_is_made_with_the_current_key_and_matched_under_every_key() -> None:
    rotated = Keyring(NEW, previous=[OLD])
    assert rotated.mac("recovery-code", "usr_1", "abcd") == Keyring(NEW).mac("recovery-code", "usr_1", "abcd")
    assert rotated.macs("recovery-code", "usr_1", "abcd") == (
        Keyring(NEW).mac("recovery-code", "usr_1", "abcd"), Keyring(OLD).mac("recovery-code", "usr_1", "abcd"))
    old_mac = Keyring(OLD).mac("p", "a")
    assert rotated.matches(old_mac, "p", "a")
    assert not rotated.matches(old_mac, "p", "b")
    assert not rotated.matches(Keyring(OTHER).mac("p", "a"), "p", "a")


def test_a_previous_key_equal_to_the_current_one_or_repeated_is_refused() -> None:
    with pytest.raises(ValueError, match="repeats"):
        Keyring(NEW, previous=[NEW])
    with pytest.raises(ValueError, match="repeats"):
        Keyring(NEW, previous=[OLD, OLD])


def test_previous_key_settings_are_read_like_the_key_and_never_echoed() -> None:
    rotated = Keyring.from_setting(setting(NEW), previous=[setting(OLD)])
    assert rotated.decrypt(Keyring(OLD).encrypt("x", context="c"), context="c") == "x"
    bad = "bm90LWEta2V5"
    with pytest.raises(ValueError, match="secrets.previous_keys") as raised:
        Keyring.from_setting(setting(NEW), previous=[bad])
    assert bad not in str(raised.value)


def test_previous_keys_are_a_config_setting(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"secrets:\n  key: {setting(NEW)}\n  previous_keys: ['{setting(OLD)}']\n")
    assert load_settings(config, environ={}).secrets.previous_keys == (setting(OLD),)
    config.write_text(f"secrets:\n  previous_keys: ['{setting(OLD)}']\n")
    with pytest.raises(ConfigError, match="secrets.previous_keys: needs secrets.key"):
        load_settings(config, environ={})


NEW_SETTING = setting(NEW)


def test_after_a_rotation_the_old_keys_totp_secret_and_recovery_codes_still_log_in(tmp_path: Path,
                                                                                  loop_thread: LoopThread) -> None:
    """A restart on a new secrets.key with the old one in previous_keys: the authenticator app
    enrolled before it still verifies (its secret opens under the old key) and so does a recovery
    code (its stored MAC matches under the old key). Without the old key neither does: the code
    is wrong (401), and the app's secret cannot be opened, which is the operator's fault, not the
    user's: 503 factor_unavailable, never a 500 nor a counted attempt."""
    settings = make_settings(tmp_path)  # the repository's rules: a login from abroad needs a factor
    clock, sms = FrozenClock(START), RecordingSmsGateway()
    with ServiceClient(create_app(settings, clock=clock, gateway=sms), loop_thread) as client:
        before = LoginService(client, clock, sms)
        before.create_user()
        enrolled = before.first_login_enrolling_otp()

    def verify(service: LoginService, factor_id: str, code: str) -> int:
        login = service.login(ip=DE_IP).json()
        assert login["status"] == "mfa_required", login
        return service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": factor_id,
                                               "code": code}).status_code

    rotated = dataclasses.replace(settings, secrets=SecretsSettings(key=NEW_SETTING, previous_keys=(SECRET_KEY,)))
    with ServiceClient(create_app(rotated, clock=clock, gateway=sms), loop_thread) as client:
        after = LoginService(client, clock, sms)
        assert verify(after, enrolled["factor_id"], totp_now(enrolled["secret"], clock.now())) == 200
        clock.advance(30)
        assert verify(after, "recovery", enrolled["recovery_codes"][0]) == 200

    forgotten = dataclasses.replace(settings, secrets=SecretsSettings(key=NEW_SETTING))
    with ServiceClient(create_app(forgotten, clock=clock, gateway=sms), loop_thread) as client:
        without = LoginService(client, clock, sms)
        clock.advance(30)
        assert verify(without, "recovery", enrolled["recovery_codes"][1]) == 401
        assert verify(without, enrolled["factor_id"], totp_now(enrolled["secret"], clock.now())) == 503


def test_keys_reseal_moves_the_directory_and_the_rules_folder_to_the_new_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's rotation: new key in secrets.key, the old one in previous_keys, `mfa-engine
    keys reseal`; then the old key can go for everything sealed (TOTP secrets, rule settings in
    settings.json and in the history a rollback restores)."""
    from engine.cli import main
    from engine.rule_folder import append_history, read_history, read_settings, write_settings
    from engine.rule_settings import RuleSettings, Setting, SettingsVault
    from engine.stores.directory import NewUser
    from engine.stores.sqlite import SqliteDirectory

    rules = tmp_path / "rules"
    rules.mkdir()
    old_vault = SettingsVault(Keyring(OLD))
    sealed = old_vault.seal(RuleSettings((Setting("api_token", "s3cret-value", True, "2026-11-30T12:00:00+00:00"),
                                          Setting("office", "198.51.100.0/24", False, "2026-11-30T12:00:00+00:00"))))
    write_settings(rules, sealed)
    append_history(rules, {"version": "v1", "settings": sealed})
    database = tmp_path / "mfa.db"

    async def enrol() -> str:
        directory = SqliteDirectory(str(database), Keyring(OLD))
        try:
            user = await directory.create_user(NewUser(username="alice", password_hash="x"), NOW)
            factor = await directory.add_factor(user.user_id, "otp", NOW, status="active", secret="JBSWY3DPEHPK3PXP")
            return factor.factor_id
        finally:
            await directory.close()

    factor_id = asyncio.run(enrol())
    config = tmp_path / "config.yaml"
    config.write_text(f"secrets:\n  key: {NEW_SETTING}\n  previous_keys: ['{setting(OLD)}']\n"
                      f"directory:\n  url: sqlite:///{database}\nrules:\n  dir: {rules}\n")

    assert main(["keys", "reseal", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "directory: 1 TOTP secrets sealed again under secrets.key" in out
    assert "rules folder: 4 rule setting values sealed again under secrets.key" in out  # 2 + 2 in the history
    assert main(["keys", "reseal", "--config", str(config)]) == 0
    assert "directory: 0 TOTP" in capsys.readouterr().out

    new_vault = SettingsVault(Keyring(NEW))
    assert new_vault.open(read_settings(rules)).plain == {"api_token": "s3cret-value", "office": "198.51.100.0/24"}
    assert new_vault.open(read_history(rules)[0]["settings"]).plain["api_token"] == "s3cret-value"

    async def secret_under_new_key() -> str | None:
        directory = SqliteDirectory(str(database), Keyring(NEW))
        try:
            return await directory.factor_secret(factor_id)
        finally:
            await directory.close()

    assert asyncio.run(secret_under_new_key()) == "JBSWY3DPEHPK3PXP"


def test_keys_reseal_says_which_secrets_no_key_opens_and_fails(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main
    from engine.stores.directory import NewUser
    from engine.stores.sqlite import SqliteDirectory

    database = tmp_path / "mfa.db"

    async def enrol() -> None:
        directory = SqliteDirectory(str(database), Keyring(OTHER))
        try:
            user = await directory.create_user(NewUser(username="alice", password_hash="x"), NOW)
            await directory.add_factor(user.user_id, "otp", NOW, status="active", secret="JBSWY3DPEHPK3PXP")
        finally:
            await directory.close()

    asyncio.run(enrol())
    config = tmp_path / "config.yaml"
    config.write_text(f"secrets:\n  key: {NEW_SETTING}\n  previous_keys: ['{setting(OLD)}']\n"
                      f"directory:\n  url: sqlite:///{database}\nrules:\n  dir: {tmp_path / 'rules'}\n")
    assert main(["keys", "reseal", "--config", str(config)]) == 1
    assert "1 open under no configured key" in capsys.readouterr().out
