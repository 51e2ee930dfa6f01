"""SMS codes and their message, recovery codes and their normal form, and the keyed hashes both are stored as."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter

import pytest

from engine.factors import recovery, sms


class RecordingMac:
    """A keyed MAC with Keyring.mac's signature (unambiguous framing of the parts) that keeps its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, purpose: str, *parts: str) -> str:
        self.calls.append((purpose, *parts))
        return hmac.new(b"k" * 32, json.dumps([purpose, *parts]).encode("utf-8"), hashlib.sha256).hexdigest()


def test_sms_codes_are_six_ascii_digits() -> None:
    for _ in range(500):
        code = sms.new_code()
        assert re.fullmatch(r"[0-9]{6}", code)


def test_sms_codes_keep_leading_zeros_and_spread_over_every_digit() -> None:
    codes = [sms.new_code() for _ in range(3000)]
    first_digits = Counter(code[0] for code in codes)
    # Uniform: each first digit about 300 times (sigma about 16); leading zeros included.
    assert set(first_digits) == set("0123456789")
    assert all(150 < count < 450 for count in first_digits.values())
    assert len(set(codes)) > 2900


def test_the_message_names_code_issuer_and_expiry() -> None:
    assert sms.message_body("042917", "Example") == "042917 is your Example sign-in code. It expires in 5 minutes."


@pytest.mark.parametrize(("ttl_seconds", "expiry"), [(60, "1 minute."), (90, "1 minute."), (600, "10 minutes."),
                                                     (30, "30 seconds.")])
def test_the_expiry_is_rounded_down_so_it_never_promises_too_much(ttl_seconds: int, expiry: str) -> None:
    assert sms.message_body("123456", "Example", ttl_seconds=ttl_seconds).endswith(f"It expires in {expiry}")


def test_an_origin_adds_the_webotp_line() -> None:
    body = sms.message_body("123456", "Example", origin="login.example.com")
    assert body.splitlines()[-1] == "@login.example.com #123456"


def test_sms_code_hashes_use_their_purpose_and_bind_challenge_and_factor() -> None:
    mac = RecordingMac()
    base = sms.code_hash(mac, "ch-1", "f-1", "123456")
    assert mac.calls == [("sms-code", "ch-1", "f-1", "123456")]
    assert base == sms.code_hash(mac, "ch-1", "f-1", "123456")
    others = {sms.code_hash(mac, "ch-2", "f-1", "123456"), sms.code_hash(mac, "ch-1", "f-2", "123456"),
              sms.code_hash(mac, "ch-1", "f-1", "123457")}
    assert base not in others and len(others) == 3


def test_recovery_codes_are_distinct_and_shown_in_two_groups_of_five() -> None:
    codes = recovery.generate(10)
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code)
        assert not set(code) & set("0o1il")


def test_recovery_codes_use_the_whole_unambiguous_alphabet() -> None:
    seen = set("".join(recovery.generate(200)).replace("-", ""))
    assert seen == set(recovery.ALPHABET)
    assert not set(recovery.ALPHABET) & set("0o1il")


def test_no_codes_are_generated_for_a_count_of_zero() -> None:
    assert recovery.generate(0) == []


def test_a_displayed_recovery_code_normalizes_however_it_is_typed() -> None:
    code = recovery.generate(1)[0]
    compact = code.replace("-", "")
    for typed in (code, compact, code.upper(), f"  {code}\n", code.replace("-", " "), f"{compact[:3]} {compact[3:]}"):
        assert recovery.normalize(typed) == compact


@pytest.mark.parametrize("typed", ["", "abcde-fghj", "abcde-fghjkm", "abcde-fghj0", "abcde-fghjo", "abcde-fghj1",
                                   "abcde-fghjl", "abcde-fghji", "abcde_fghjk", "abcde-fghj\u212a"],
                         ids=["empty", "short", "long", "zero", "o", "one", "l", "i", "underscore", "kelvin-sign"])
def test_recovery_codes_outside_the_alphabet_or_length_normalize_to_none(typed: str) -> None:
    assert recovery.normalize(typed) is None


def test_recovery_code_hashes_use_their_purpose_and_differ_per_user() -> None:
    mac = RecordingMac()
    code = recovery.normalize(recovery.generate(1)[0])
    assert code is not None
    alice = recovery.code_hash(mac, "u-alice", code)
    assert mac.calls == [("recovery-code", "u-alice", code)]
    assert alice == recovery.code_hash(mac, "u-alice", code)
    assert alice != recovery.code_hash(mac, "u-bob", code)

