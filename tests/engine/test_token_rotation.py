"""Signing-key rotation: a new key signs, the keys in `tokens.previous_signing_keys` still verify
the tokens they signed (until those expire) and stay in the JWKS, and nothing else does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from engine.app import create_app
from engine.cli import main
from engine.clock import FrozenClock
from engine.config import ConfigError, TokensSettings, load_settings
from engine.crypto import Keyring
from engine.sms.recording import RecordingSmsGateway
from engine.tokens import InvalidToken, TokenIssuer, generate_private_key_pem
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import START
from tests.engine.service import admin_auth, auth, make_settings

ISSUER, AUDIENCE, TTL, NOW = "https://mfa.example.com", "example-app", 600, 1_795_000_000
OLD_SECRET, NEW_SECRET, OTHER_SECRET = "o" * 40, "n" * 40, "x" * 40
ASYMMETRIC = ["RS256", "ES256", "EdDSA"]


def issuer(algorithm: str, key: str, previous: tuple[str, ...] = ()) -> TokenIssuer:
    return TokenIssuer(ISSUER, AUDIENCE, TTL, algorithm, key, previous_keys=previous)


def issue(tokens: TokenIssuer) -> str:
    return tokens.issue("u-1", ["pwd"], "pwd", NOW, {}, now=NOW)


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_an_hs256_token_of_the_previous_secret_verifies_after_the_rotation() -> None:
    old_token = issue(issuer("HS256", OLD_SECRET))
    rotated = issuer("HS256", NEW_SECRET, (OLD_SECRET,))
    assert rotated.verify(old_token, NOW)["sub"] == "u-1"
    assert rotated.verify(issue(rotated), NOW)["sub"] == "u-1"


def test_the_new_key_signs_and_the_previous_one_never_does() -> None:
    rotated = issuer("HS256", NEW_SECRET, (OLD_SECRET,))
    with pytest.raises(InvalidToken, match="signature"):
        issuer("HS256", OLD_SECRET).verify(issue(rotated), NOW)


def test_a_token_of_a_key_that_is_neither_current_nor_previous_is_refused() -> None:
    with pytest.raises(InvalidToken, match="signature is invalid"):
        issuer("HS256", NEW_SECRET, (OLD_SECRET,)).verify(issue(issuer("HS256", OTHER_SECRET)), NOW)


def test_once_the_previous_key_is_dropped_its_tokens_are_refused() -> None:
    old_token = issue(issuer("HS256", OLD_SECRET))
    with pytest.raises(InvalidToken, match="signature is invalid"):
        issuer("HS256", NEW_SECRET).verify(old_token, NOW)


def test_a_previous_key_does_not_lift_the_other_checks() -> None:
    old_token = issue(issuer("HS256", OLD_SECRET))
    with pytest.raises(InvalidToken, match="expired"):
        issuer("HS256", NEW_SECRET, (OLD_SECRET,)).verify(old_token, NOW + TTL)


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_an_asymmetric_token_of_the_previous_key_verifies_by_its_kid(algorithm: str) -> None:
    old_pem, new_pem = generate_private_key_pem(algorithm), generate_private_key_pem(algorithm)
    old = issuer(algorithm, old_pem)
    old_token = issue(old)
    rotated = issuer(algorithm, new_pem, (old_pem,))
    assert rotated.verify(old_token, NOW)["sub"] == "u-1"
    assert jwt.get_unverified_header(issue(rotated))["kid"] == rotated.kid != old.kid


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_a_previous_key_may_be_given_by_its_public_half_alone(algorithm: str) -> None:
    old_pem = generate_private_key_pem(algorithm)
    old_token = issue(issuer(algorithm, old_pem))
    rotated = issuer(algorithm, generate_private_key_pem(algorithm), (public_pem(old_pem),))
    assert rotated.verify(old_token, NOW)["sub"] == "u-1"


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_the_jwks_lists_the_current_key_first_then_the_previous_ones(algorithm: str) -> None:
    old_pem, new_pem = generate_private_key_pem(algorithm), generate_private_key_pem(algorithm)
    old, rotated = issuer(algorithm, old_pem), issuer(algorithm, new_pem, (old_pem,))
    jwks = rotated.jwks()
    assert jwks is not None
    assert [key["kid"] for key in jwks["keys"]] == [rotated.kid, old.kid]
    # A relying party picks the key by the token's kid and verifies the old token with it.
    old_token = issue(old)
    by_kid = {key["kid"]: key for key in jwks["keys"]}
    claims = jwt.decode(old_token, jwt.PyJWK(by_kid[jwt.get_unverified_header(old_token)["kid"]]),
                        algorithms=[algorithm], audience=AUDIENCE, options={"verify_exp": False, "verify_iat": False,
                                                                            "verify_nbf": False})
    assert claims["sub"] == "u-1"


def test_an_asymmetric_token_naming_an_unknown_kid_is_refused() -> None:
    stranger = issue(issuer("EdDSA", generate_private_key_pem("EdDSA")))
    rotated = issuer("EdDSA", generate_private_key_pem("EdDSA"), (generate_private_key_pem("EdDSA"),))
    with pytest.raises(InvalidToken, match="signature is invalid"):
        rotated.verify(stranger, NOW)


@pytest.mark.parametrize(("algorithm", "current", "previous", "error"), [
    ("HS256", NEW_SECRET, ("short",), "at least 32 characters"),
    ("HS256", NEW_SECRET, (NEW_SECRET,), "repeats the signing key"),
    ("EdDSA", generate_private_key_pem("EdDSA"), (generate_private_key_pem("ES256"),), "cannot verify EdDSA"),
    ("ES256", generate_private_key_pem("ES256"), ("not a key",), "not a PEM key"),
])
def test_a_previous_key_that_cannot_serve_fails_at_startup(algorithm: str, current: str, previous: tuple[str, ...],
                                                           error: str) -> None:
    with pytest.raises(ValueError, match=error):
        issuer(algorithm, current, previous)


def test_a_previous_hs256_secret_is_never_in_the_error() -> None:
    secret = "p" * 10
    with pytest.raises(ValueError) as raised:
        issuer("HS256", NEW_SECRET, (secret,))
    assert secret not in str(raised.value)


def test_previous_keys_without_a_signing_key_are_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"tokens:\n  previous_signing_keys: ['{OLD_SECRET}']\n")
    with pytest.raises(ConfigError, match="tokens.previous_signing_keys: needs tokens.signing_key"):
        load_settings(config, environ={})


def test_the_service_verifies_a_user_token_of_the_previous_key_from_a_file(tmp_path: Path,
                                                                          loop_thread: LoopThread) -> None:
    """Rotation on a live app: tokens issued before the restart keep working after it (the old key
    named by `file:`), and the JWKS publishes both keys."""
    rules = {"10-allow": '"""Allows everyone."""\n\ndef rule(user, context):\n    pass\n'}
    settings = make_settings(tmp_path, rules)
    (tmp_path / "old.pem").write_text(generate_private_key_pem("EdDSA"))
    (tmp_path / "new.pem").write_text(generate_private_key_pem("EdDSA"))
    before = dataclasses.replace(settings, tokens=TokensSettings(algorithm="EdDSA", signing_key="file:old.pem"))
    after = dataclasses.replace(settings, tokens=TokensSettings(algorithm="EdDSA", signing_key="file:new.pem",
                                                                 previous_signing_keys=("file:old.pem",)))
    with ServiceClient(create_app(before, clock=FrozenClock(START), gateway=RecordingSmsGateway()),
                       loop_thread) as client:
        client.post("/admin/users", json={"username": "bob", "password": "long enough password"},
                    headers=admin_auth())
        token = client.post("/v1/login", json={"username": "bob", "password": "long enough password",
                                               "client_id": "app", "context": {}}, headers=auth()).json()["token"]
    with ServiceClient(create_app(after, clock=FrozenClock(START), gateway=RecordingSmsGateway()),
                       loop_thread) as client:
        # Recovery codes take a user token (Sessions.resume verifies it).
        answer = client.post("/v1/mfa/recovery-codes", json={"user_token": token}, headers=auth())
        assert answer.status_code != 401, answer.text
        assert len(client.get("/.well-known/jwks.json").json()["keys"]) == 2


def test_keys_commands_print_fresh_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    assert main(["keys", "signing-key", "--algorithm", "EdDSA", "--config", str(config)]) == 0
    pem = capsys.readouterr().out
    assert issuer("EdDSA", pem).kid
    assert main(["keys", "signing-key", "--algorithm", "HS256", "--config", str(config)]) == 0
    secret = capsys.readouterr().out.strip()
    assert len(secret) >= 32 and issuer("HS256", secret)
    assert main(["keys", "secret-key", "--config", str(config)]) == 0
    assert Keyring.from_setting(capsys.readouterr().out.strip())
