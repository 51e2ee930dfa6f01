"""Issued tokens: round trips per algorithm, times against `now`, each refusal, registered claims, JWKS and kid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.rule_api import RESERVED_CLAIMS
from engine.tokens import REGISTERED_CLAIMS, InvalidToken, TokenIssuer, generate_private_key_pem, jwk_thumbprint

ISSUER = "https://mfa.example.com"
AUDIENCE = "example-app"
TTL = 600
NOW = 1_795_000_000
HS_SECRET = "s" * 40
ALGORITHMS = ["HS256", "RS256", "ES256", "EdDSA"]


@cache
def signing_key(algorithm: str) -> str:
    return HS_SECRET if algorithm == "HS256" else generate_private_key_pem(algorithm)


def make_issuer(algorithm: str = "HS256", issuer: str = ISSUER, audience: str = AUDIENCE) -> TokenIssuer:
    return TokenIssuer(issuer, audience, TTL, algorithm, signing_key(algorithm))


def issue(tokens: TokenIssuer, claims: dict[str, Any] | None = None, now: int = NOW) -> str:
    return tokens.issue("u-1", ["pwd", "otp"], "mfa", NOW - 5, claims or {}, now=now)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def refused(tokens: TokenIssuer, token: str, now: int = NOW) -> str:
    with pytest.raises(InvalidToken) as raised:
        tokens.verify(token, now=now)
    message = str(raised.value)
    assert token not in message and token.split(".")[1] not in message
    return message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_token_round_trips_with_every_registered_claim(algorithm: str) -> None:
    tokens = make_issuer(algorithm)
    token = issue(tokens, {"https://example.com/roles": ["staff"]})
    claims = tokens.verify(token, now=NOW + 1)
    jti = claims.pop("jti")
    assert isinstance(jti, str) and len(jti) >= 16
    assert claims == {"sub": "u-1", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "nbf": NOW, "exp": NOW + TTL,
                      "auth_time": NOW - 5, "amr": ["pwd", "otp"], "acr": "mfa",
                      "https://example.com/roles": ["staff"]}
    assert jwt.get_unverified_header(token)["alg"] == algorithm


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_token_is_byte_for_byte_what_pyjwt_encode_writes(algorithm: str) -> None:
    """The issuer prepares PyJWT's key and header once and signs each token itself: the bytes
    must be jwt.encode's, for any claims a rule may set (non-ASCII, escapes, floats, nesting)."""
    tokens = make_issuer(algorithm)
    claims = {"name": "Zoë \u00e9 \U0001f510 \"quoted\" back\\slash </script>", "ratio": 0.1, "big": 2**53 + 1,
              "nested": {"b": [1, 2.5, None, True], "a": {}}, "empty": "", "negative": -3, "control": "\x00\n\t"}
    token = tokens.issue("usr-ü", ["pwd", "otp"], "mfa", NOW - 5, claims, NOW,
                         methods=[("pwd", NOW - 5), ("otp", NOW)], mfa_epoch=3)
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    key: Any = signing_key(algorithm)
    expected = jwt.encode(decoded, key, algorithm=algorithm, headers={"kid": tokens.kid} if tokens.kid else None)
    if algorithm == "ES256":  # ECDSA signatures are randomised: the signed bytes must match, and verify
        assert expected.split(".")[:2] == [header, payload]
        assert tokens.verify(token, NOW)["name"] == claims["name"]
    else:
        assert token == expected
    assert decoded == {**claims, "sub": "usr-ü", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "nbf": NOW,
                       "exp": NOW + TTL, "auth_time": NOW - 5, "amr": ["pwd", "otp"], "acr": "mfa",
                       "jti": decoded["jti"], "auth_methods": [{"name": "pwd", "time": NOW - 5},
                                                               {"name": "otp", "time": NOW}], "mfa_epoch": 3}


def test_every_token_gets_its_own_jti() -> None:
    tokens = make_issuer()
    assert tokens.verify(issue(tokens), NOW)["jti"] != tokens.verify(issue(tokens), NOW)["jti"]


def test_a_token_is_valid_until_the_second_before_exp() -> None:
    tokens = make_issuer()
    token = issue(tokens)
    assert tokens.verify(token, now=NOW + TTL - 1)["sub"] == "u-1"
    assert refused(tokens, token, now=NOW + TTL) == "token has expired"


def test_a_token_is_not_valid_before_nbf() -> None:
    tokens = make_issuer()
    assert refused(tokens, issue(tokens), now=NOW - 1) == "token is not valid yet"


def test_a_token_for_another_audience_is_refused() -> None:
    other = issue(make_issuer(audience="another-app"))
    assert refused(make_issuer(), other) == "token audience is wrong"


def test_a_token_from_another_issuer_name_is_refused() -> None:
    other = issue(make_issuer(issuer="https://evil.example.net"))
    assert refused(make_issuer(), other) == "token issuer is wrong"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_tampered_payload_is_refused(algorithm: str) -> None:
    tokens = make_issuer(algorithm)
    header, payload, signature = issue(tokens).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "u-admin"
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    assert refused(tokens, forged) == "token signature is invalid"


def test_a_token_signed_by_another_key_is_refused() -> None:
    stranger = TokenIssuer(ISSUER, AUDIENCE, TTL, "RS256", generate_private_key_pem("RS256"))
    assert refused(make_issuer("RS256"), issue(stranger)) == "token signature is invalid"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_unsigned_alg_none_token_is_refused(algorithm: str) -> None:
    tokens = make_issuer(algorithm)
    claims = tokens.verify(issue(tokens), NOW)
    unsigned = jwt.encode(claims, "", algorithm="none")
    assert refused(tokens, unsigned) == "token algorithm is not allowed"


def test_an_hs256_token_keyed_with_the_rs256_public_key_is_refused() -> None:
    tokens = make_issuer("RS256")
    public_pem = serialization.load_pem_private_key(signing_key("RS256").encode(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = tokens.verify(issue(tokens), NOW)
    # Built by hand: PyJWT itself refuses to use a PEM as an HMAC secret.
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    signature = b64url(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    assert refused(tokens, f"{signing_input}.{signature}") == "token algorithm is not allowed"


def test_a_token_of_another_asymmetric_family_is_refused() -> None:
    assert refused(make_issuer("ES256"), issue(make_issuer("EdDSA"))) == "token algorithm is not allowed"


def test_a_token_without_a_jti_is_refused() -> None:
    tokens = make_issuer()
    claims = {"sub": "u-1", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "nbf": NOW, "exp": NOW + TTL}
    assert refused(tokens, jwt.encode(claims, HS_SECRET, algorithm="HS256")) == "token lacks the jti claim"


def test_a_token_whose_times_are_not_integers_is_refused() -> None:
    tokens = make_issuer()
    claims = {"sub": "u-1", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "nbf": NOW, "exp": "9999999999", "jti": "j"}
    assert refused(tokens, jwt.encode(claims, HS_SECRET, algorithm="HS256")) == "token times are not integers"


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "...."])
def test_garbage_is_refused_as_malformed(garbage: str) -> None:
    with pytest.raises(InvalidToken, match="token is malformed"):
        make_issuer().verify(garbage, NOW)


def test_rule_claims_cannot_override_registered_claims(caplog: pytest.LogCaptureFixture) -> None:
    tokens = make_issuer()
    hostile = {name: "rule-value" for name in REGISTERED_CLAIMS} | {"https://example.com/plan": "pro"}
    with caplog.at_level(logging.WARNING, logger="engine.tokens"):
        claims = tokens.verify(issue(tokens, hostile), NOW)
    assert claims["https://example.com/plan"] == "pro"
    assert all(claims.get(name) != "rule-value" for name in REGISTERED_CLAIMS)
    assert (claims["sub"], claims["aud"], claims["exp"], claims["amr"]) == ("u-1", AUDIENCE, NOW + TTL, ["pwd", "otp"])
    warning = caplog.records[-1].getMessage()
    assert "sub" in warning and "rule-value" not in warning


def test_the_issuer_drops_every_claim_name_the_rule_api_refuses() -> None:
    assert RESERVED_CLAIMS <= REGISTERED_CLAIMS


def test_hs256_publishes_no_jwks_and_no_kid() -> None:
    tokens = make_issuer("HS256")
    assert tokens.jwks() is None
    assert "kid" not in jwt.get_unverified_header(issue(tokens))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_the_jwks_key_verifies_tokens_for_a_relying_party(algorithm: str) -> None:
    tokens = make_issuer(algorithm)
    token = issue(tokens)
    jwks = tokens.jwks()
    assert jwks is not None and len(jwks["keys"]) == 1
    published = jwks["keys"][0]
    assert (published["alg"], published["use"], published["kid"]) == (algorithm, "sig", tokens.kid)
    assert not {"d", "p", "q", "dp", "dq", "qi", "key_ops"} & set(published)  # public members only
    assert jwt.get_unverified_header(token)["kid"] == published["kid"]
    key = jwt.PyJWK(published)
    claims = jwt.decode(token, key, algorithms=[algorithm], audience=AUDIENCE, issuer=ISSUER,
                        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    assert claims["sub"] == "u-1"


def test_jwk_thumbprint_matches_the_rfc_7638_example() -> None:
    example = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZC"
        "iFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnY"
        "b9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1j"
        "F44-csFCur-kEgU8awapJzKnqDKgw")}
    assert jwk_thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_rs256_kid_is_the_thumbprint_of_the_signing_keys_public_half() -> None:
    private = serialization.load_pem_private_key(signing_key("RS256").encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    numbers = private.public_key().public_numbers()

    def member(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    # RFC 7638 section 3.3: required members in lexicographic order, no whitespace.
    canonical = f'{{"e":"{member(numbers.e)}","kty":"RSA","n":"{member(numbers.n)}"}}'
    assert make_issuer("RS256").kid == b64url(hashlib.sha256(canonical.encode()).digest())


@pytest.mark.parametrize(("algorithm", "key", "error"), [
    ("HS256", "too-short", "at least 32 characters"),
    ("RS256", "not a pem", "not an unencrypted PEM private key"),
    ("RS256", "ed25519", "cannot sign RS256"),
    ("EdDSA", "es256", "cannot sign EdDSA"),
    ("none", HS_SECRET, "unsupported token algorithm"),
    ("HS512", HS_SECRET, "unsupported token algorithm"),
])
def test_a_key_that_does_not_fit_the_algorithm_fails_at_startup(algorithm: str, key: str, error: str) -> None:
    pem = {"ed25519": signing_key("EdDSA"), "es256": signing_key("ES256")}.get(key, key)
    with pytest.raises(ValueError, match=error):
        TokenIssuer(ISSUER, AUDIENCE, TTL, algorithm, pem)


def test_generating_a_key_for_hs256_is_refused() -> None:
    with pytest.raises(ValueError, match="no private key"):
        generate_private_key_pem("HS256")


def test_the_development_issuer_warns_and_its_tokens_die_with_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.tokens"):
        first = TokenIssuer.development(ISSUER, AUDIENCE, TTL)
    assert "tokens die on restart" in caplog.text
    token = issue(first)
    assert first.verify(token, NOW)["sub"] == "u-1"
    assert first.algorithm == "HS256"
    restarted = TokenIssuer.development(ISSUER, AUDIENCE, TTL)
    assert refused(restarted, token) == "token signature is invalid"


def test_an_hs256_secret_shaped_like_a_public_key_is_refused_when_the_issuer_is_built() -> None:
    # PyJWT refuses such a secret when it prepares the key: before, at the first token, after
    # the user had passed MFA; now at startup, as the ValueError the other key checks raise.
    with pytest.raises(ValueError, match="does not fit HS256"):
        TokenIssuer("https://issuer.test", "app", 300, "HS256", "ssh-rsa " + "A" * 64)
