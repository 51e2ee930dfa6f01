"""Authorization codes: how the hosted login pages hand a finished login back to its application.

    /login (engine/pages/) finishes a login -> issue(): a code of 128 random bits, valid 60 s,
      bound to the client, the exact redirect URI and, when the application sent one, its PKCE
      challenge (S256, RFC 7636); the browser carries only the code (never a token) back.
    POST /v1/token {code, client_id, redirect_uri, code_verifier?} -> redeem(): the login's
      answer, the same signed token body /v1/login gives.

A code is stored under the SHA-256 of its value (a copy of the store holds no usable code) as a
record of the challenge store (kind `authcode`), and redeemed by `ChallengeStore.consume`: of
two concurrent exchanges one gets the answer. Any failed exchange has consumed the code too, so
a code is tried once. Unknown, expired, used, another client's or redirect URI's, and a wrong or
missing verifier all answer the same `invalid_grant`; so does a code whose client is no longer
registered, or no longer registers its redirect URI (engine/clients.py reads the client at the
exchange: one deleted through the admin API on another instance is gone here too).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any

from engine.clients import ClientRegistry
from engine.clock import Clock
from engine.crypto import Keyring
from engine.errors import InvalidGrant
from engine.request_context import note_user
from engine.stores.challenges import Challenge, ChallengeStore

CODE_TTL_SECONDS = 60
KIND = "authcode"
CODE = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16): 128 bits
# RFC 7636 4.1 and 4.2: a verifier of 43 to 128 unreserved characters; an S256 challenge is the
# unpadded base64url of a SHA-256 digest, always 43 characters.
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# What the application keeps for itself: a remember token is the browser's (a cookie of the pages).
_BROWSER_ONLY = ("remember_token", "remember_token_expires_in")
_REFUSED = "the code is unknown, expired or used, or was issued for another client or redirect URI"


def s256(verifier: str) -> str:
    """The S256 code challenge of `verifier` (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def record_id(code: str) -> str:
    return "ac_" + hashlib.sha256(code.encode("ascii")).hexdigest()


class AuthorizationCodes:
    def __init__(self, store: ChallengeStore, clock: Clock, clients: ClientRegistry) -> None:
        self.store = store
        self.clock = clock
        self.clients = clients

    async def issue(self, user_id: str, client_id: str, redirect_uri: str, code_challenge: str | None,
                    answer: Mapping[str, Any]) -> str:
        """A fresh code for `answer` (an Authenticated body); the caller checked the client and URI."""
        code = secrets.token_urlsafe(16)
        now = self.clock.now().timestamp()
        data = {"redirect_uri": redirect_uri, "code_challenge": code_challenge, "issued_at": now,
                "answer": {key: value for key, value in answer.items() if key not in _BROWSER_ONLY}}
        await self.store.create(Challenge(record_id(code), KIND, user_id, client_id, (), now + CODE_TTL_SECONDS,
                                          data=data), now)
        return code

    async def redeem(self, code: str, client_id: str, redirect_uri: str, code_verifier: str | None) -> dict[str, Any]:
        """The answer bound to `code`, once; InvalidGrant for anything else."""
        now = self.clock.now().timestamp()
        if CODE.fullmatch(code) is None:
            raise InvalidGrant(_REFUSED)
        record = await self.store.consume(record_id(code), now)
        if record is None or record.kind != KIND \
                or not await self._bound_to(record, client_id, redirect_uri, code_verifier):
            raise InvalidGrant(_REFUSED)
        note_user(record.user_id)
        answer = dict(record.data["answer"])
        # The token was signed when the login finished: what is left of its life.
        answer["expires_in"] = max(int(answer["expires_in"]) - int(now - float(record.data["issued_at"])), 0)
        return answer

    async def _bound_to(self, record: Challenge, client_id: str, redirect_uri: str, verifier: str | None) -> bool:
        challenge = record.data.get("code_challenge")
        if not Keyring.equal(record.client_id, client_id) \
                or not Keyring.equal(str(record.data["redirect_uri"]), redirect_uri):
            return False
        client = await self.clients.find(client_id)
        if client is None or redirect_uri not in client.redirect_uris:
            return False
        if challenge is None:
            # A public client's code always carries a challenge (the pages require one); a
            # verifier with no challenge to meet is a confused client, refused (RFC 9700 2.1.1).
            return not client.public and verifier is None
        return verifier is not None and VERIFIER.fullmatch(verifier) is not None \
            and Keyring.equal(s256(verifier), str(challenge))
