"""The browser's signed-in session at the pages: the token of its last finished login, so that a
step-up (`/login?...&action=`) asks only for what the rules want now, not the password again.

Like the login's page session it is a signed cookie (`mfa-account`: HttpOnly, SameSite=Lax, Secure
and `__Host-` outside loopback development) naming a record of the challenge store (kind
`account`), which lives exactly as long as the token. The token itself is checked at every use
by `Sessions.resume` inside `Flow.step_up` (a user deleted or reset since is refused there)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine.clock import Clock
from engine.crypto import Keyring
from engine.pages.session import clear_cookie, cookie_name, set_cookie
from engine.stores.challenges import Challenge, ChallengeStore

KIND = "account"
COOKIE = "mfa-account"
MAC_PURPOSE = "page-account"
_COOKIE = re.compile(r"(pa_[A-Za-z0-9_-]{22})\.([0-9a-f]{64})")


class AccountSessions:
    def __init__(self, store: ChallengeStore, keyring: Keyring, clock: Clock) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock

    async def open(self, request: Request, response: Response, answer: Mapping[str, Any], secure: bool,
                   client_id: str) -> None:
        """Remember `answer` (a finished login's token body) for this browser, instead of any
        earlier one, bound to the application it signed in to (`client_id`; "" for none: then no
        application's step-up may use it). The remember token is not kept: it is the browser's
        cookie already, and a copy of the store must not hold one."""
        now = self.clock.now().timestamp()
        lifetime = int(answer["expires_in"])
        if lifetime <= 0:
            return
        await self._forget(request, secure)
        account_id = "pa_" + secrets.token_urlsafe(16)
        kept = {key: value for key, value in answer.items() if not key.startswith("remember_token")}
        await self.store.create(Challenge(account_id, KIND, str(answer["user_id"]), client_id, (), now + lifetime,
                                          data={"answer": kept}), now)
        set_cookie(response, COOKIE, f"{account_id}.{self._mac(account_id)}", lifetime, secure)

    async def current(self, request: Request, secure: bool, *, client_id: str | None = None) -> dict[str, Any] | None:
        """The signed-in login's token body (expires_in what is left of it), or None; with
        `client_id`, None unless the login was to that application (a step-up never crosses
        from one application's sign-in to another's)."""
        account_id = self._named(request, secure)
        now = self.clock.now().timestamp()
        held = None if account_id is None else await self.store.get(account_id, now)
        if held is None or held.kind != KIND or (client_id is not None and held.client_id != client_id):
            return None
        return dict(held.data["answer"]) | {"expires_in": int(held.expires_at - now)}

    async def close(self, request: Request, response: Response, secure: bool) -> None:
        await self._forget(request, secure)
        clear_cookie(response, COOKIE, secure)

    async def _forget(self, request: Request, secure: bool) -> None:
        account_id = self._named(request, secure)
        if account_id is not None:
            await self.store.delete(account_id)

    def _named(self, request: Request, secure: bool) -> str | None:
        matched = _COOKIE.fullmatch(request.cookies.get(cookie_name(COOKIE, secure), ""))
        # Any key, current or previous: a secrets.key rotation signs no browser out of its account.
        if matched is None or not self.keyring.matches(matched.group(2), MAC_PURPOSE, matched.group(1)):
            return None
        return matched.group(1)

    def _mac(self, account_id: str) -> str:
        return self.keyring.mac(MAC_PURPOSE, account_id)
