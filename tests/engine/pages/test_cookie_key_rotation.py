"""A `secrets.key` rotation signs no browser out of the hosted pages: the page-session, offer and
account cookies MACed under the old key are still read while it is listed in
`secrets.previous_keys`, and no longer once it is dropped. New cookies are MACed with the new key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from http.cookies import SimpleCookie

from starlette.requests import Request
from starlette.responses import Response

from engine.clock import FrozenClock
from engine.crypto import Keyring
from engine.pages.account import COOKIE as ACCOUNT_COOKIE
from engine.pages.account import AccountSessions
from engine.pages.session import PageSessions
from engine.stores.memory import MemoryChallengeStore

OLD, NEW = bytes(range(32)), bytes(range(1, 33))
CLOCK = FrozenClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
ANSWER = {"user_id": "usr_1", "access_token": "a.b.c", "token_type": "Bearer", "expires_in": 3600}


def carrying(response: Response) -> Request:
    """A request from the browser that received `response`: its cookies, sent back."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            jar.load(value.decode("latin-1"))
    header = "; ".join(f"{key}={morsel.value}" for key, morsel in jar.items())
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", header.encode())]})


def test_a_page_session_and_an_offer_survive_the_rotation_until_the_old_key_is_dropped() -> None:
    store = MemoryChallengeStore()

    async def main() -> None:
        before = PageSessions(store, Keyring(OLD), CLOCK)
        stored, offered = Response(), Response()
        await before.save(before.new({"step": "password", "client_id": "demo"}), stored, secure=False)
        await before.offer(before.new({"step": "password", "client_id": "demo"}), offered, secure=False)

        rotated = PageSessions(store, Keyring(NEW, previous=[OLD]), CLOCK)
        for response in (stored, offered):
            session = await rotated.load(carrying(response), secure=False)
            assert session is not None and session.data["step"] == "password"

        dropped = PageSessions(store, Keyring(NEW), CLOCK)
        for response in (stored, offered):
            assert await dropped.load(carrying(response), secure=False) is None

        # What the rotated service issues is MACed with the new key: the old one alone cannot read it.
        fresh = Response()
        await rotated.offer(rotated.new({"step": "password", "client_id": "demo"}), fresh, secure=False)
        assert await dropped.load(carrying(fresh), secure=False) is not None
        assert await PageSessions(store, Keyring(OLD), CLOCK).load(carrying(fresh), secure=False) is None

    asyncio.run(main())


def test_a_signed_in_browser_stays_signed_in_across_the_rotation() -> None:
    store = MemoryChallengeStore()

    async def main() -> None:
        signed_in = Response()
        await AccountSessions(store, Keyring(OLD), CLOCK).open(
            Request({"type": "http", "method": "GET", "path": "/", "headers": []}), signed_in, ANSWER, False, "demo")
        assert ACCOUNT_COOKIE in signed_in.headers["set-cookie"]

        rotated = AccountSessions(store, Keyring(NEW, previous=[OLD]), CLOCK)
        current = await rotated.current(carrying(signed_in), secure=False)
        assert current is not None and current["user_id"] == "usr_1"
        assert await AccountSessions(store, Keyring(NEW), CLOCK).current(carrying(signed_in), secure=False) is None

    asyncio.run(main())
