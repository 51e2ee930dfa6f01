"""The pages' session: a signed cookie naming server-side state in the challenge store.

The cookie holds only `<session id>.<HMAC of the id>` (Keyring purpose `page-session`): HttpOnly,
SameSite=Lax, Secure (except plain http to a loopback host in development), `__Host-` prefixed
when Secure, and as short-lived as the state itself (SESSION_SECONDS, renewed by each step).
The state (the login's client, redirect URI, state and PKCE challenge, its CSRF token, the flow's
challenge or enrollment token, the step reached) is a record of the challenge store (kind
`page`), so every instance sharing Redis serves every step. Each change stores the state under a
fresh id and deletes the old one: an id seen before a step (a copied cookie, a fixed session)
names nothing after it.

Until the user acts, nothing is stored: the sign-in form (GET /login, /account/security) is
*offered* with a cookie that carries the state itself, `ps_offer.<base64url JSON>.<HMAC>` (Keyring
purpose `page-offer`, with its expiry inside), and the record is created at the first step that
saves (a password the directory accepted, a step-up, a change asked for). So a flood of GET /login
costs CPU only, never store memory, from any number of addresses (docs/architecture.md). The offer
holds only what its URL held plus a fresh CSRF token: a copied offer is a sign-in form, as the
URL is, and the signature keeps its CSRF token the server's (signed double-submit).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from starlette.requests import Request
from starlette.responses import Response

from engine.clock import Clock
from engine.crypto import Keyring
from engine.stores.challenges import Challenge, ChallengeStore

SESSION_SECONDS = 900
KIND = "page"
MAC_PURPOSE = "page-session"
OFFER_PURPOSE = "page-offer"
# A browser keeps at most 4096 bytes of a cookie's name, value and attributes (RFC 6265 6.1); a
# larger offer (a registered redirect URI near its 2 KiB maximum and a long state) is stored instead.
MAX_OFFER_CHARS = 3500
_COOKIE = re.compile(r"(ps_[A-Za-z0-9_-]{22})\.([0-9a-f]{64})")
_OFFER = re.compile(r"ps_offer\.([A-Za-z0-9_-]{1,%d})\.([0-9a-f]{64})" % MAX_OFFER_CHARS)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# Written `SameSite=Lax`, as RFC 6265bis and the README spell it (browsers read any case); Starlette
# types the value in lower case but writes it as given.
SAME_SITE = cast(Literal["lax"], "Lax")


@dataclass(slots=True)
class PageSession:
    session_id: str | None  # None until first stored (new, or offered)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        return str(self.data["csrf"])


def is_secure(request: Request, environment: str) -> bool:
    """Cookies are Secure everywhere but plain http to a loopback host in development."""
    return not (environment == "development" and request.url.scheme == "http" and request.url.hostname in LOOPBACK)


def cookie_name(base: str, secure: bool) -> str:
    # __Host-: the browser keeps it only if Secure, from this host, for path / (no subdomain can plant one).
    return f"__Host-{base}" if secure else base


def set_cookie(response: Response, name: str, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(cookie_name(name, secure), value, max_age=max_age, path="/", secure=secure, httponly=True,
                        samesite=SAME_SITE)


def clear_cookie(response: Response, name: str, secure: bool) -> None:
    response.delete_cookie(cookie_name(name, secure), path="/", secure=secure, httponly=True, samesite=SAME_SITE)


class PageSessions:
    COOKIE = "mfa-login"

    def __init__(self, store: ChallengeStore, keyring: Keyring, clock: Clock) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock

    def new(self, data: Mapping[str, Any]) -> PageSession:
        return PageSession(None, {**data, "csrf": secrets.token_urlsafe(24)})

    async def load(self, request: Request, secure: bool) -> PageSession | None:
        """The session the request's cookie names or offers, or None (no cookie, a forged one, expired)."""
        value = request.cookies.get(cookie_name(self.COOKIE, secure), "")
        offered = _OFFER.fullmatch(value)
        if offered is not None:
            return self._offered(*offered.groups())
        matched = _COOKIE.fullmatch(value)
        if matched is None:
            return None
        session_id, mac = matched.groups()
        if not self.keyring.matches(mac, MAC_PURPOSE, session_id):  # any key: a secrets.key rotation signs no one out
            return None
        held = await self.store.get(session_id, self.clock.now().timestamp())
        if held is None or held.kind != KIND:
            return None
        return PageSession(session_id, dict(held.data))

    async def save(self, session: PageSession, response: Response, secure: bool) -> None:
        """Store the state under a fresh id, forget the old one, and point the cookie at the new."""
        now = self.clock.now().timestamp()
        fresh = "ps_" + secrets.token_urlsafe(16)
        record = Challenge(fresh, KIND, str(session.data.get("user_id") or ""), str(session.data["client_id"]), (),
                           now + SESSION_SECONDS, data=session.data)
        await self.store.create(record, now)
        if session.session_id is not None:
            await self.store.delete(session.session_id)
        session.session_id = fresh
        set_cookie(response, self.COOKIE, f"{fresh}.{self._mac(fresh)}", SESSION_SECONDS, secure)

    async def offer(self, session: PageSession, response: Response, secure: bool) -> None:
        """Hand an unsaved session to the browser in its signed cookie, storing nothing; the first
        `save` stores it. Too large for a cookie: stored at once."""
        if session.session_id is not None:
            raise ValueError("a stored session is saved, not offered")
        expires_at = int(self.clock.now().timestamp()) + SESSION_SECONDS
        plain = json.dumps({"expires_at": expires_at, "data": session.data}, separators=(",", ":"),
                           ensure_ascii=False)
        payload = base64.urlsafe_b64encode(plain.encode("utf-8")).rstrip(b"=").decode("ascii")
        if len(payload) > MAX_OFFER_CHARS:
            await self.save(session, response, secure)
            return
        set_cookie(response, self.COOKIE, f"ps_offer.{payload}.{self.keyring.mac(OFFER_PURPOSE, payload)}",
                   SESSION_SECONDS, secure)

    async def end(self, session: PageSession, response: Response, secure: bool) -> None:
        if session.session_id is not None:
            await self.store.delete(session.session_id)
        clear_cookie(response, self.COOKIE, secure)

    def csrf_ok(self, session: PageSession, presented: str | None) -> bool:
        return presented is not None and Keyring.equal(presented, session.csrf)

    def _offered(self, payload: str, mac: str) -> PageSession | None:
        if not self.keyring.matches(mac, OFFER_PURPOSE, payload):
            return None
        try:
            offer = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):  # signed by us, so never; but never a 500 either
            return None
        if not isinstance(offer, dict) or not isinstance(offer.get("data"), dict) \
                or not isinstance(offer.get("expires_at"), int) or offer["expires_at"] <= self.clock.now().timestamp():
            return None
        return PageSession(None, offer["data"])

    def _mac(self, session_id: str) -> str:
        return self.keyring.mac(MAC_PURPOSE, session_id)
