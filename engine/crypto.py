"""The engine's secret key material: encrypts secrets at rest and keys the MACs of stored codes.

One 32-byte master key; every use gets its own key derived with HKDF-SHA256, so the master
key never serves two purposes. Errors:

    ValueError        a key setting that is not base64 of exactly 32 bytes (the value is never echoed)
    DecryptionError   a ciphertext that was tampered with, moved to another context or sealed
                      under another key; decrypt never returns unauthenticated bytes
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

logger = logging.getLogger("engine.crypto")

KEY_BYTES = 32
NONCE_BYTES = 12  # 96 bits: the GCM nonce size that needs no extra hashing (NIST SP 800-38D 8.2)
TAG_BYTES = 16
TOKEN_PREFIX = "v1."  # the format version, so a later scheme can be told apart and rotated in

# HKDF info labels: distinct labels give independent keys from the one master key.
_ENCRYPTION_INFO = b"mfa-engine/v1/encryption"
_MAC_INFO = b"mfa-engine/v1/mac"


class DecryptionError(Exception):
    """The ciphertext is not authentic under this key and context."""


def _derive(key: bytes, info: bytes) -> bytes:
    # The input is already uniformly random, so no salt is needed (RFC 5869 section 3.1).
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


def _decode_base64(value: str) -> bytes:
    """Standard or URL-safe base64, padding optional; raises ValueError on anything else."""
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text.encode("ascii"), validate=True)


def _key_setting(value: str, name: str) -> bytes:
    try:
        key = _decode_base64(value)
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        # from None: the cause's message could quote the setting.
        raise ValueError(f"{name}: must be base64 of exactly {KEY_BYTES} random bytes") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{name}: must be base64 of exactly {KEY_BYTES} random bytes")
    return key


# Where development keeps its generated key, relative to the config file's folder.
DEV_KEY_FILE = "var/dev-secret.key"


class Keyring:
    """Holds only derived keys: the master key itself is not kept after construction.

    Rotation: the keys in `previous` (the old `secrets.key` values, `secrets.previous_keys`)
    never seal or make a MAC; they still open what they sealed (`decrypt`, `reseal`) and match
    the MACs they made (`macs`, `matches`), so that a new key can be put in place without
    losing a TOTP secret, a recovery code or a remembered browser.
    """

    __slots__ = ("_aead", "_mac_root", "_previous")

    def __init__(self, master_key: bytes, previous: Sequence[bytes] = ()) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError(f"the master key must be exactly {KEY_BYTES} bytes")
        self._aead = AESGCM(_derive(master_key, _ENCRYPTION_INFO))
        self._mac_root = _derive(master_key, _MAC_INFO)
        self._previous = tuple(Keyring(key) for key in previous)
        roots = [self._mac_root, *(keyring._mac_root for keyring in self._previous)]
        if len(set(roots)) != len(roots):
            raise ValueError("secrets.previous_keys: repeats secrets.key or another previous key")

    def __repr__(self) -> str:
        return "Keyring(<secret>)"

    @classmethod
    def from_setting(cls, value: str, previous: Sequence[str] = ()) -> Keyring:
        """The `secrets.key` setting: base64 (standard or URL-safe) of exactly 32 bytes; and
        `secrets.previous_keys`, each in the same form."""
        return cls(_key_setting(value, "secrets.key"),
                   [_key_setting(item, "secrets.previous_keys") for item in previous])

    @classmethod
    def configured(cls, value: str, dev_key_path: Path, previous: Sequence[str] = ()) -> Keyring:
        """The `secrets.key` setting's keyring; without one (development), the key kept in
        `dev_key_path` (DEV_KEY_FILE below the config's folder), created on first use."""
        return cls.from_setting(value, previous) if value else cls.load_or_create_dev_key(dev_key_path)

    @classmethod
    def load_or_create_dev_key(cls, path: Path) -> Keyring:
        """Reads the base64 key in `path`, first creating it (mode 0600) with a random key.

        For development only: a key that lives next to the database protects nothing if both
        leak together, so every call logs a WARNING.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting at once cannot both write a key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii") + "\n")
        keyring = cls.from_setting(path.read_text(encoding="ascii"))
        logger.warning("using the development secret key in %s; set secrets.key in production", path)
        return keyring

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """AES-256-GCM; `context` (e.g. "totp:{factor_id}") is bound as associated data, so the
        ciphertext only decrypts under the same context: it cannot be copied to another row."""
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe for well under 2**32 messages per key
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, *, context: str) -> str:
        """The plaintext of `encrypt(..., context=context)` under this key or a previous one;
        raises DecryptionError otherwise."""
        try:
            return self._open(token, context)
        except DecryptionError:
            for keyring in self._previous:
                try:
                    return keyring._open(token, context)
                except DecryptionError:
                    continue
            raise

    def reseal(self, token: str, *, context: str) -> str | None:
        """`token` sealed again under the current key, when a previous key sealed it; None when
        the current key did already. Raises DecryptionError for a token no key opens."""
        try:
            self._open(token, context)
        except DecryptionError:
            return self.encrypt(self.decrypt(token, context=context), context=context)
        return None

    def _open(self, token: str, context: str) -> str:
        if not token.startswith(TOKEN_PREFIX):
            raise DecryptionError("unknown ciphertext format")
        try:
            raw = base64.b64decode(token[len(TOKEN_PREFIX):].encode("ascii"), altchars=b"-_", validate=True)
        except ValueError:
            raise DecryptionError("malformed ciphertext") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("malformed ciphertext")
        try:
            plaintext = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError("ciphertext is not authentic under this key and context") from None
        return plaintext.decode("utf-8")

    def mac(self, purpose: str, *parts: str) -> str:
        """HMAC-SHA256 (hex) of `parts` under a key of its own for each `purpose`
        (e.g. "sms-code", "recovery-code"), so a MAC made for one use proves nothing in another."""
        # Each part is length-prefixed: ("ab", "c") and ("a", "bc") must not collide.
        encoded = [part.encode("utf-8") for part in parts]
        message = b"".join(len(data).to_bytes(8, "big") + data for data in encoded)
        key = _derive(self._mac_root, purpose.encode("utf-8"))
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def macs(self, purpose: str, *parts: str) -> tuple[str, ...]:
        """`mac(purpose, *parts)` under the current key, then under each previous one: the
        stored forms a value made before a rotation may have (a recovery code's hash)."""
        return (self.mac(purpose, *parts), *(keyring.mac(purpose, *parts) for keyring in self._previous))

    def matches(self, candidate: str, purpose: str, *parts: str) -> bool:
        """Whether `candidate` is the MAC of `parts` under any key, each compared in constant time."""
        return sum(Keyring.equal(candidate, mac) for mac in self.macs(purpose, *parts)) > 0

    @staticmethod
    def equal(a: str, b: str) -> bool:
        """Constant-time comparison of two secrets or MACs: no timing oracle on the matching prefix."""
        return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
