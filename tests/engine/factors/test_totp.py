"""TOTP against RFC 6238 Appendix B and RFC 4226 Appendix D, drift, malformed codes, provisioning and the QR code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import segno

from engine.factors import totp

VECTORS: dict[str, Any] = json.loads((Path(__file__).parents[2] / "data" / "otp-test-vectors.json").read_text())
RFC_KEY = VECTORS["keys_ascii"]["sha1"].encode("ascii")
RFC_SECRET = base64.b32encode(RFC_KEY).decode("ascii")
SHA1_ROWS = [row for row in VECTORS["totp"] if row["algorithm"] == "sha1"]
NOW = 1_700_000_015.0  # the middle of a 30 s step


def rfc4226_hotp(key: bytes, counter: int, digits: int = 6) -> str:
    """HOTP written out from RFC 4226 section 5.3, independent of pyotp and of the engine."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


@pytest.mark.parametrize("row", VECTORS["hotp_sha1_6_digits"], ids=lambda row: f"counter-{row['counter']}")
def test_the_independent_hotp_reproduces_rfc_4226_appendix_d(row: dict[str, Any]) -> None:
    assert rfc4226_hotp(RFC_KEY, row["counter"]) == row["hotp"]


@pytest.mark.parametrize("row", SHA1_ROWS, ids=lambda row: f"t-{row['time']}")
def test_pyotp_with_an_integer_timestamp_reproduces_rfc_6238_appendix_b(row: dict[str, Any]) -> None:
    assert pyotp.TOTP(RFC_SECRET, digits=8, digest=hashlib.sha1).at(row["time"]) == row["totp"]


@pytest.mark.parametrize("row", SHA1_ROWS, ids=lambda row: f"t-{row['time']}")
def test_match_step_finds_the_rfc_6238_step_for_the_six_digit_form_of_each_vector(row: dict[str, Any]) -> None:
    step = row["time"] // 30
    # HOTP truncates modulo 10**digits, so the 6-digit code is the vector's last six digits.
    code = row["totp"][-6:]
    assert rfc4226_hotp(RFC_KEY, step) == code
    assert totp.match_step(RFC_SECRET, code, now=float(row["time"]), drift_steps=0) == step


def test_match_step_accepts_the_previous_and_the_next_step_and_says_which() -> None:
    secret = totp.new_secret()
    key = base64.b32decode(secret)
    step = int(NOW // 30)
    assert totp.match_step(secret, rfc4226_hotp(key, step), NOW) == step
    assert totp.match_step(secret, rfc4226_hotp(key, step - 1), NOW) == step - 1
    assert totp.match_step(secret, rfc4226_hotp(key, step + 1), NOW) == step + 1


@pytest.mark.parametrize("shape", ["upper", "lower", "padded", "shortest"])
def test_match_step_matches_every_code_pyotp_computes_for_the_steps_in_reach(shape: str) -> None:
    """match_step computes the codes itself from the key pyotp decodes: the same codes as
    pyotp's own HOTP for any secret pyotp accepts (case, padding, the 112-bit minimum)."""
    for index in range(50):
        raw = secrets.token_bytes({"padded": 16, "shortest": 14}.get(shape, 20))  # 16: "======" after 26
        secret = base64.b32encode(raw).decode("ascii")
        secret = {"upper": secret.rstrip("="), "lower": secret.rstrip("=").lower(), "padded": secret,
                  "shortest": secret.rstrip("=")}[shape]
        now = NOW + index * 977.0
        step = int(now // 30)
        codes = {candidate: pyotp.HOTP(secret).at(candidate) for candidate in (step - 1, step, step + 1)}
        for candidate, code in codes.items():
            assert code == rfc4226_hotp(raw, candidate)
            # The earliest step with that code (two steps sharing a code: one in a million).
            assert totp.match_step(secret, code, now) == min(s for s, c in codes.items() if c == code)


@pytest.mark.parametrize("secret", [
    "JBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXPJBSWY3D", "jbswy3dpehpk3pxpjbswy3dp", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP=", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3===",
    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX0", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX1", "JBSWY3DP EHPK3PXPJBSWY3DPEHPK3PXP",
    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXÅ", "JBSWY3DPEHPK3PXPJBSWY3DP=HPK3PXP", "", "========",
    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJ", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJB"])
def test_match_step_accepts_exactly_the_secrets_pyotp_accepts(secret: str, caplog: pytest.LogCaptureFixture) -> None:
    """match_step decodes the secret itself, once: it must judge it as pyotp does, and then
    match pyotp's codes; a secret pyotp refuses matches nothing, logged, never raised."""
    try:
        code: str | None = pyotp.HOTP(secret).at(int(NOW // 30))
    except ValueError:  # binascii.Error is one
        code = None
    assert totp.match_step(secret, code or "123456", NOW, drift_steps=0) == (int(NOW // 30) if code else None)
    assert ("totp_secret_unusable" in caplog.text) == (code is None)


def test_match_step_refuses_codes_two_steps_away() -> None:
    secret = totp.new_secret()
    key = base64.b32decode(secret)
    step = int(NOW // 30)
    near = {rfc4226_hotp(key, s) for s in (step - 1, step, step + 1)}
    for far in (step - 2, step + 2):
        code = rfc4226_hotp(key, far)
        if code not in near:  # a one-in-a-million collision would be a legitimate match
            assert totp.match_step(secret, code, NOW) is None


def test_without_drift_only_the_current_step_matches() -> None:
    secret = totp.new_secret()
    key = base64.b32decode(secret)
    step = int(NOW // 30)
    assert totp.match_step(secret, rfc4226_hotp(key, step), NOW, drift_steps=0) == step
    previous = rfc4226_hotp(key, step - 1)
    if previous != rfc4226_hotp(key, step):
        assert totp.match_step(secret, previous, NOW, drift_steps=0) is None


def test_step_boundaries_follow_the_given_time_not_the_clock() -> None:
    key = base64.b32decode(RFC_SECRET)
    assert totp.match_step(RFC_SECRET, rfc4226_hotp(key, 1), now=30.0, drift_steps=0) == 1
    assert totp.match_step(RFC_SECRET, rfc4226_hotp(key, 0), now=29.999, drift_steps=0) == 0


def test_near_the_epoch_no_negative_step_is_tried() -> None:
    assert totp.match_step(RFC_SECRET, rfc4226_hotp(RFC_KEY, 0), now=0.0) == 0


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", " 123456", "123 456", "123-45",
                                  "\u0661\u0662\u0663\u0664\u0665\u0666", "\uff11\uff12\uff13\uff14\uff15\uff16"],
                         ids=["empty", "short", "long", "letter", "space-before", "space-inside", "dash",
                              "arabic-indic-digits", "fullwidth-digits"])
def test_malformed_codes_match_nothing(code: str) -> None:
    assert totp.match_step(RFC_SECRET, code, NOW) is None


def test_new_secrets_are_160_bit_base32_without_padding_and_differ() -> None:
    secrets_ = {totp.new_secret() for _ in range(50)}
    assert len(secrets_) == 50
    for secret in secrets_:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_the_provisioning_uri_carries_every_parameter_authenticator_apps_read() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "alice@example.com", "Example Co")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Example Co:alice@example.com"
    query = parse_qs(parts.query, strict_parsing=True)
    assert query == {"secret": [secret], "issuer": ["Example Co"], "algorithm": ["SHA1"], "digits": ["6"],
                     "period": ["30"]}
    assert "+" not in uri  # some apps show a form-encoded space as a literal '+'


def test_the_provisioning_uri_yields_the_same_codes_when_parsed_back() -> None:
    secret = totp.new_secret()
    parsed = pyotp.parse_uri(totp.provisioning_uri(secret, "bob", "Example"))
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.digits, parsed.interval, parsed.issuer, parsed.name) == (6, 30, "Example", "bob")
    assert totp.match_step(secret, parsed.at(int(NOW)), NOW, drift_steps=0) == int(NOW // 30)


@pytest.mark.parametrize(("account", "issuer"), [("a:b", "Example"), ("alice", "Ex:ample")])
def test_a_colon_in_the_label_is_refused(account: str, issuer: str) -> None:
    with pytest.raises(ValueError, match="label separator"):
        totp.provisioning_uri(totp.new_secret(), account, issuer)


def svg_modules(svg: str) -> tuple[int, set[tuple[int, int]]]:
    """(size in modules, dark module coordinates) read back from segno's SVG path."""
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    size = int(root.findall("svg:g/svg:path", ns)[0].get("d", "").split("h")[1].split("v")[0])
    line = next(path for path in root.iter("{http://www.w3.org/2000/svg}path") if path.get("class") == "qrline")
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, args in re.findall(r"([MmHh])([^MmHh]*)", line.get("d", "")):
        numbers = [float(n) for n in args.replace(",", " ").split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:
            end = x + numbers[0] if command == "h" else numbers[0]
            dark.update((int(col), int(y)) for col in range(int(x), int(end)))
            x = end
    return size, dark


def test_the_qr_code_is_standalone_svg_drawing_the_uri_with_a_quiet_zone() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "alice@example.com", "Example Co")
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg") and "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert int(root.get("width", "0")) >= 150  # big enough to scan off a laptop screen
    expected = segno.make(uri, error="m", micro=False)
    assert not expected.is_micro
    size, dark = svg_modules(svg)
    border = 4
    assert size == len(expected.matrix) + 2 * border
    expected_dark = {(col + border, row + border) for row, cells in enumerate(expected.matrix)
                     for col, cell in enumerate(cells) if cell}
    assert dark == expected_dark
