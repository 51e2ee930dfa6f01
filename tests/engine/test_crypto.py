"""Keyring: authenticated encryption bound to a context, purpose-keyed MACs, key settings."""

from __future__ import annotations

import base64
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.crypto import DecryptionError, Keyring

KEY = bytes(range(32))
SECRET = "JBSWY3DPEHPK3PXP"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(KEY)


def test_a_secret_decrypts_back_under_the_same_context(keyring: Keyring) -> None:
    token = keyring.encrypt(SECRET, context="totp:fac_1")

    assert token.startswith("v1.")
    assert SECRET not in token
    assert keyring.decrypt(token, context="totp:fac_1") == SECRET


def test_two_encryptions_of_the_same_text_differ(keyring: Keyring) -> None:
    assert keyring.encrypt(SECRET, context="c") != keyring.encrypt(SECRET, context="c")


@pytest.mark.parametrize("position", [3, 10, -1])
def test_a_tampered_ciphertext_is_refused(keyring: Keyring, position: int) -> None:
    token = keyring.encrypt(SECRET, context="totp:fac_1")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[position] ^= 0x01
    tampered = "v1." + base64.urlsafe_b64encode(bytes(raw)).decode()

    with pytest.raises(DecryptionError):
        keyring.decrypt(tampered, context="totp:fac_1")


@pytest.mark.parametrize("token", ["", "v1.", "v1.AAAA", "v1.not base64!", "v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                   "v1.\u00e9\u00e9\u00e9\u00e9"])
def test_a_malformed_ciphertext_is_refused(keyring: Keyring, token: str) -> None:
    with pytest.raises(DecryptionError):
        keyring.decrypt(token, context="totp:fac_1")


def test_a_ciphertext_moved_to_another_row_is_refused(keyring: Keyring) -> None:
    token = keyring.encrypt(SECRET, context="totp:fac_1")

    with pytest.raises(DecryptionError):
        keyring.decrypt(token, context="totp:fac_2")


def test_a_ciphertext_is_refused_under_another_key(keyring: Keyring) -> None:
    token = keyring.encrypt(SECRET, context="totp:fac_1")

    with pytest.raises(DecryptionError):
        Keyring(os.urandom(32)).decrypt(token, context="totp:fac_1")


def test_a_mac_is_deterministic_for_a_purpose(keyring: Keyring) -> None:
    assert keyring.mac("sms-code", "usr_1", "123456") == Keyring(KEY).mac("sms-code", "usr_1", "123456")
    assert len(keyring.mac("sms-code", "x")) == 64


def test_a_mac_differs_across_purposes(keyring: Keyring) -> None:
    assert keyring.mac("sms-code", "usr_1", "123456") != keyring.mac("recovery-code", "usr_1", "123456")


def test_a_mac_tells_part_boundaries_apart(keyring: Keyring) -> None:
    assert keyring.mac("p", "ab", "c") != keyring.mac("p", "a", "bc")
    assert keyring.mac("p", "a") != keyring.mac("p", "a", "")
    assert keyring.mac("p") != keyring.mac("p", "")


def test_a_mac_depends_on_the_key(keyring: Keyring) -> None:
    assert keyring.mac("p", "a") != Keyring(os.urandom(32)).mac("p", "a")


def test_equal_compares_whole_strings(keyring: Keyring) -> None:
    digest = keyring.mac("p", "a")

    assert Keyring.equal(digest, digest)
    assert not Keyring.equal(digest, digest[:-1] + ("0" if digest[-1] != "0" else "1"))
    assert not Keyring.equal("abc", "abcd")
    assert Keyring.equal("\u00e9", "\u00e9")


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_a_key_setting_is_read_from_standard_or_urlsafe_base64(encode: Callable[[bytes], bytes]) -> None:
    key = bytes([0xFB, 0xFF] * 16)  # encodes to '+' and '/' in one alphabet, '-' and '_' in the other
    setting = encode(key).decode()

    from_setting = Keyring.from_setting(setting)
    unpadded = Keyring.from_setting(setting.rstrip("=") + "\n")

    assert from_setting.decrypt(Keyring(key).encrypt("x", context="c"), context="c") == "x"
    assert unpadded.mac("p", "a") == Keyring(key).mac("p", "a")


@pytest.mark.parametrize("setting", [
    base64.b64encode(b"k" * 31).decode(),
    base64.b64encode(b"k" * 33).decode(),
    "c2VjcmV0LXRoYXQtaXMtbm90LWJhc2U2NCE!!",
    "s\u00e9cret-value-\u00e9\u00e9",
    "",
])
def test_a_bad_key_setting_is_refused_without_echoing_it(setting: str) -> None:
    with pytest.raises(ValueError) as raised:
        Keyring.from_setting(setting)

    shown = str(raised.value) + repr(raised.value) + repr(raised.value.__cause__) + repr(raised.value.__context__)
    if setting:
        assert setting not in shown
        assert setting.rstrip("=") not in shown
    assert raised.value.__suppress_context__ or raised.value.__context__ is None


def test_a_keyring_does_not_show_its_key(keyring: Keyring) -> None:
    assert KEY.hex() not in repr(keyring)
    assert base64.b64encode(KEY).decode() not in repr(keyring)


def test_a_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        Keyring(b"short")


def test_a_dev_key_is_created_private_then_reused_with_a_warning(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "var" / "nested" / "dev-secret.key"

    with caplog.at_level(logging.WARNING, logger="engine.crypto"):
        first = Keyring.load_or_create_dev_key(path)
    contents = path.read_bytes()
    again = Keyring.load_or_create_dev_key(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(contents.strip())) == 32
    assert path.read_bytes() == contents
    assert again.decrypt(first.encrypt(SECRET, context="c"), context="c") == SECRET
    warnings = [r for r in caplog.records if r.name == "engine.crypto" and r.levelno == logging.WARNING]
    assert warnings and "development" in warnings[0].getMessage()
    assert contents.decode().strip() not in caplog.text


def test_dev_keys_in_different_files_differ(tmp_path: Path) -> None:
    one = Keyring.load_or_create_dev_key(tmp_path / "one.key")
    two = Keyring.load_or_create_dev_key(tmp_path / "two.key")

    with pytest.raises(DecryptionError):
        two.decrypt(one.encrypt(SECRET, context="c"), context="c")
