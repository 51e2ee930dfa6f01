"""The tokens a finished login receives: signed JWTs (HS256, RS256, ES256 or EdDSA), their verification and the JWKS.

InvalidToken is raised by `TokenIssuer.verify` for any token it refuses; its message names
the reason (expired, wrong audience...) and never carries the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode

log = logging.getLogger("engine.tokens")

SYMMETRIC = "HS256"
ASYMMETRIC = ("RS256", "ES256", "EdDSA")

# The engine's own claims: each method of the session with the time it was completed
# ([{"name": "pwd", "time": 1764237600}, {"name": "otp", "time": ...}], one entry per name, its latest
# time; `amr` lists the same names), which a step-up reads back; and the user's MFA epoch when the
# token was issued (an MFA reset moves it on, and older tokens are refused: engine/sessions.py).
AUTH_METHODS = "auth_methods"
MFA_EPOCH = "mfa_epoch"
# Claims the engine sets or reads itself (RFC 7519 and OpenID Connect); a rule's `context.claims`
# may never set them, or a rule could mint a token for another subject, audience, client
# (enrollment reads `azp`) or lifetime, or fake the methods used. rule_api refuses the same names.
REGISTERED_CLAIMS = frozenset({"sub", "iss", "aud", "exp", "nbf", "iat", "jti", "amr", "acr", "auth_time", "azp",
                               "sid", "nonce", "at_hash", AUTH_METHODS, MFA_EPOCH})
# Refused when missing from a presented token: verify checks each of them.
_REQUIRED_CLAIMS = ["sub", "iss", "aud", "exp", "nbf", "iat", "jti"]

# RFC 7638 section 3.2: the members a thumbprint covers, per key type (all a public JWK needs).
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}

_KEY_TYPES: dict[str, type[Any]] = {"RS256": rsa.RSAPrivateKey, "ES256": ec.EllipticCurvePrivateKey,
                                    "EdDSA": ed25519.Ed25519PrivateKey}
_PUBLIC_KEY_TYPES: dict[str, type[Any]] = {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey,
                                           "EdDSA": ed25519.Ed25519PublicKey}
_JWK_WRITERS: dict[str, Any] = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}
_MIN_RSA_BITS = 2048
_MIN_HS256_SECRET_CHARS = 32


class InvalidToken(Exception):
    """The token is not one this issuer would accept now; the message says why, without the token."""


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members, sorted, without whitespace, base64url."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def generate_private_key_pem(algorithm: str) -> str:
    """A new unencrypted PKCS#8 PEM private key for RS256 (2048-bit), ES256 (P-256) or EdDSA (Ed25519)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=_MIN_RSA_BITS)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no private key for {algorithm!r}: expected one of {', '.join(ASYMMETRIC)}")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


@dataclass(frozen=True, slots=True)
class _VerifyingKey:
    """A key tokens are checked with: the HS256 secret, or a public key with its JWK and kid."""

    key: Any
    kid: str | None = None
    public_jwk: dict[str, Any] | None = None


class TokenIssuer:
    """Issues and verifies the engine's JWTs with one pinned algorithm and key.

    HS256: `signing_key` is the shared secret (at least 32 characters). RS256/ES256/EdDSA:
    `signing_key` is a PEM private key of the matching type; the public key is published by
    `jwks()` under a `kid` that is its RFC 7638 thumbprint. Raises ValueError for a key that
    does not fit the algorithm.

    Rotation: `previous_keys` (same algorithm; for the asymmetric ones a private or a public PEM
    key) never sign, but still verify the tokens they signed, and stay in the JWKS, until the
    operator drops them (after `ttl_seconds`, when every such token has expired). An asymmetric
    token is checked with the key its `kid` names; an HS256 token (which carries no kid, so its
    bytes do not change) with each secret in turn, the current one first.
    """

    def __init__(self, issuer: str, audience: str, ttl_seconds: int, algorithm: str, signing_key: str,
                 previous_keys: Sequence[str] = ()) -> None:
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.algorithm = algorithm
        self._signing_key: Any
        if algorithm == SYMMETRIC:
            _check_secret(signing_key, "an HS256 secret")
            self._signing_key = signing_key.encode("utf-8")
            current = _VerifyingKey(self._signing_key)
        elif algorithm in ASYMMETRIC:
            private_key = _load_private_key(algorithm, signing_key)
            self._signing_key = private_key
            current = _public_key(algorithm, private_key.public_key())
        else:
            raise ValueError(f"unsupported token algorithm {algorithm!r}: expected HS256, RS256, ES256 or EdDSA")
        self.kid: str | None = current.kid
        self._public_jwk = current.public_jwk
        self._verifying_keys = (current, *(_previous_key(algorithm, key) for key in previous_keys))
        seen = [key.kid if key.kid is not None else key.key for key in self._verifying_keys]
        if len(set(seen)) != len(seen):
            raise ValueError(f"{_PREVIOUS}: repeats the signing key or another previous key")
        self._by_kid = {key.kid: key for key in self._verifying_keys if key.kid is not None}
        # What jwt.encode redoes at every call, done once: the algorithm object, the key it signs
        # with (preparing an HS256 secret scans it for PEM and SSH shapes: half an encode's
        # time) and the header segment. `issue` then builds the same bytes jwt.encode would.
        self._signer = jwt.get_algorithm_by_name(algorithm)
        try:
            self._prepared_key = self._signer.prepare_key(self._signing_key)
        except jwt.InvalidKeyError as exc:  # an HS256 secret shaped like a PEM or SSH key, refused here
            raise ValueError(f"the signing key does not fit {algorithm}: {exc}") from None
        header = {"typ": "JWT", "alg": algorithm} | ({"kid": self.kid} if self.kid is not None else {})
        self._header_segment = base64url_encode(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())

    @classmethod
    def development(cls, issuer: str, audience: str, ttl_seconds: int) -> TokenIssuer:
        """HS256 with a random per-process secret: every token dies when the process restarts."""
        log.warning("tokens_development_secret: no tokens.signing_key, using a random HS256 secret; "
                    "tokens die on restart and other instances cannot verify them")
        return cls(issuer, audience, ttl_seconds, SYMMETRIC, secrets.token_urlsafe(48))

    def issue(self, user_id: str, amr: list[str], acr: str, auth_time: int, claims: Mapping[str, Any],
              now: int, *, methods: Sequence[tuple[str, int]] = (), mfa_epoch: int | None = None) -> str:
        """A signed token for `user_id`, valid from `now` for ttl_seconds.

        `claims` (a rule's `context.claims`) are added as they are, except registered names,
        which are dropped with a warning naming them (never their values). `methods` (name,
        completion time) become `auth_methods`, `mfa_epoch` the claim of that name, when given.
        """
        overriding = sorted(name for name in claims if name in REGISTERED_CLAIMS)
        if overriding:
            log.warning("token_claims_dropped names=%s reason=registered claims are set by the engine",
                        ",".join(overriding))
        payload: dict[str, Any] = {name: value for name, value in claims.items() if name not in REGISTERED_CLAIMS}
        payload.update(sub=user_id, iss=self.issuer, aud=self.audience, iat=now, nbf=now,
                       exp=now + self.ttl_seconds, auth_time=auth_time, amr=list(amr), acr=acr,
                       jti=secrets.token_urlsafe(16))
        if methods:
            payload[AUTH_METHODS] = [{"name": name, "time": at} for name, at in methods]
        if mfa_epoch is not None:
            payload[MFA_EPOCH] = mfa_epoch
        # As jwt.encode(payload, key, algorithm, headers={"kid": kid}) writes it, byte for byte
        # (tests/engine/test_tokens.py checks): the payload as PyJWT serialises it.
        signing_input = self._header_segment + b"." + base64url_encode(
            json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        signature = self._signer.sign(signing_input, self._prepared_key)
        return (signing_input + b"." + base64url_encode(signature)).decode("ascii")

    def verify(self, token: str, now: int) -> dict[str, Any]:
        """The claims of a token this issuer signed, checked against `now`; raises InvalidToken."""
        for key in self._candidates(token):
            try:
                claims = self._decode(token, key.key)
            except InvalidToken as refused:
                if refused.args[0] != _BAD_SIGNATURE:
                    raise
            else:
                _check_times(claims, now)
                return claims
        raise InvalidToken(_BAD_SIGNATURE)

    def _candidates(self, token: str) -> Sequence[_VerifyingKey]:
        """The keys that may have signed `token`: the one its kid names, when it names one we
        know; none when it names another (asymmetric) key; else every key, the current first."""
        if len(self._verifying_keys) == 1:
            return self._verifying_keys
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("token is malformed") from exc
        if self.algorithm != SYMMETRIC and isinstance(kid, str):
            key = self._by_kid.get(kid)
            return () if key is None else (key,)
        return self._verifying_keys

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(
                token, key,
                # Pinned: a token naming "none" or another family (HS256 keyed with our public
                # key, the classic confusion) is refused before any key is used.
                algorithms=[self.algorithm], audience=self.audience, issuer=self.issuer, leeway=0,
                # PyJWT reads the wall clock for these; time is an argument here, checked below.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "strict_aud": True,
                         "require": _REQUIRED_CLAIMS},
            )
        except jwt.InvalidAlgorithmError as exc:
            raise InvalidToken("token algorithm is not allowed") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken(_BAD_SIGNATURE) from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token audience is wrong") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token issuer is wrong") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the {exc.claim} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("token is malformed") from exc

    def jwks(self) -> dict[str, Any] | None:
        """The public key set for relying parties ({"keys": [...]}: the current key, then the
        previous ones), or None with HS256 (nothing to publish)."""
        if self._public_jwk is None:
            return None
        return {"keys": [{**key.public_jwk, "kid": key.kid, "alg": self.algorithm, "use": "sig"}
                         for key in self._verifying_keys if key.public_jwk is not None]}


_BAD_SIGNATURE = "token signature is invalid"
_PREVIOUS = "tokens.previous_signing_keys"


def _check_secret(secret: str, what: str) -> None:
    if len(secret) < _MIN_HS256_SECRET_CHARS:
        raise ValueError(f"{what} must be at least {_MIN_HS256_SECRET_CHARS} characters")


def _public_key(algorithm: str, public_key: Any) -> _VerifyingKey:
    written = _JWK_WRITERS[algorithm].to_jwk(public_key, as_dict=True)
    # Only the key members: PyJWT adds "key_ops", which RFC 7517 says not to combine with "use".
    jwk = {name: written[name] for name in _THUMBPRINT_MEMBERS[written["kty"]]}
    return _VerifyingKey(public_key, jwk_thumbprint(jwk), jwk)


def _previous_key(algorithm: str, key: str) -> _VerifyingKey:
    """A `tokens.previous_signing_keys` entry: an HS256 secret, or a private or public PEM key."""
    if algorithm == SYMMETRIC:
        _check_secret(key, f"{_PREVIOUS}: an HS256 secret")
        return _VerifyingKey(key.encode("utf-8"))
    try:
        loaded: Any = serialization.load_pem_public_key(key.encode("utf-8"))
    except (ValueError, TypeError):
        loaded = _load_private_key(algorithm, key, _PREVIOUS, "verify").public_key()
    if not isinstance(loaded, _PUBLIC_KEY_TYPES[algorithm]):
        raise ValueError(f"{_PREVIOUS}: a {type(loaded).__name__} cannot verify {algorithm}")
    if isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size < _MIN_RSA_BITS:
        raise ValueError(f"{_PREVIOUS}: RSA keys must have at least {_MIN_RSA_BITS} bits")
    if isinstance(loaded, ec.EllipticCurvePublicKey) and not isinstance(loaded.curve, ec.SECP256R1):
        raise ValueError(f"{_PREVIOUS}: ES256 needs a P-256 key")
    return _public_key(algorithm, loaded)


def _load_private_key(algorithm: str, pem: str, setting: str = "tokens.signing_key", use: str = "sign") -> Any:
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        # from None: the parser's message is about the text, which is a secret.
        what = "an unencrypted PEM private key" if use == "sign" else "a PEM key (an unencrypted private key or a public key)"
        raise ValueError(f"{setting}: not {what} for {algorithm}") from None
    if not isinstance(key, _KEY_TYPES[algorithm]):
        raise ValueError(f"{setting}: a {type(key).__name__} cannot {use} {algorithm}")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < _MIN_RSA_BITS:
        raise ValueError(f"{setting}: RSA keys must have at least {_MIN_RSA_BITS} bits")
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{setting}: ES256 needs a P-256 key")
    return key


def _check_times(claims: Mapping[str, Any], now: int) -> None:
    exp, nbf = claims["exp"], claims["nbf"]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (exp, nbf, claims["iat"])):
        raise InvalidToken("token times are not integers")
    # RFC 7519 section 4.1.4: expired at exp itself; section 4.1.5: valid from nbf on.
    if now >= exp:
        raise InvalidToken("token has expired")
    if now < nbf:
        raise InvalidToken("token is not valid yet")
