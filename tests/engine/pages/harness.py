"""A running service with clients for the hosted pages: real HTTP stack, SQLite, a chosen challenge
store, a recording SMS gateway and a clock the test moves (tests/engine/login_harness.py's, plus
`clients:` and a handle on the store, so a test can issue an authorization code directly)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from engine.clock import FrozenClock
from engine.config import ClientSettings, Settings
from engine.sms.recording import RecordingSmsGateway
from engine.stores.challenges import ChallengeStore
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import LoginService, flushed_redis_url, running
from tests.engine.service import make_settings

CALLBACK = "https://app.example.com/callback"
SPA_CALLBACK = "http://127.0.0.1:5173/callback"
CLIENTS = {
    "demo": ClientSettings(name="Demo App", redirect_uris=(CALLBACK, "https://app.example.com/other")),
    "spa": ClientSettings(name="Single-page App", redirect_uris=(SPA_CALLBACK,), public=True),
}
ALLOW_ALL = '''"""Let everyone in."""

def rule(user, context):
    pass
'''


class PagesService(LoginService):
    def __init__(self, client: ServiceClient, clock: FrozenClock, sms: RecordingSmsGateway, store: ChallengeStore,
                 settings: Settings, loop: LoopThread) -> None:
        super().__init__(client, clock, sms)
        self.store = store
        self.settings = settings
        self.loop = loop


def settings_with_clients(tmp_path: Path, redis_url: str = "", **options: Any) -> Settings:
    branding = options.pop("branding", None)
    http = options.pop("http", None)
    settings = make_settings(tmp_path, redis_url=redis_url, **options)
    settings = dataclasses.replace(settings, clients=CLIENTS)
    if branding is not None:
        settings = dataclasses.replace(settings, branding=branding)
    if http is not None:
        settings = dataclasses.replace(settings, http=http)
    return settings


def start_pages_service(tmp_path: Path, loop: LoopThread, store: str,
                        wrap_store: Callable[[ChallengeStore], ChallengeStore] | None = None,
                        **options: Any) -> Iterator[PagesService]:
    settings = settings_with_clients(tmp_path, flushed_redis_url(store), **options)
    with running(settings, loop, wrap_store=wrap_store) as service:
        yield PagesService(service.client, service.clock, service.sms, service.store, settings, loop)


class PageBrowser:
    """A browser without JavaScript: httpx on the app (its own cookie jar), following no
    redirects by itself, reading each page's forms. `base` picks the origin (http://127.0.0.1 is
    development's plain-http exception; https://login.example.test gets Secure cookies)."""

    def __init__(self, service: PagesService, base: str = "http://127.0.0.1:8000",
                 headers: dict[str, str] | None = None) -> None:
        """`headers` go with every request (e.g. X-Forwarded-For, to come from another address)."""
        self.service = service
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.client.app), base_url=base,
                                         headers=headers)
        self.last: httpx.Response | None = None

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        self.last = self.service.loop.call(self._client.get(url, **kwargs))
        return self.last

    def post(self, url: str, form: dict[str, str], **kwargs: Any) -> httpx.Response:
        self.last = self.service.loop.call(self._client.post(url, data=form, **kwargs))
        return self.last

    def submit(self, action: str, fields: dict[str, str] | None = None, csrf: str | None = None) -> httpx.Response:
        """Post the form of the last page whose action is `action`, with its CSRF token (or `csrf`)."""
        assert self.last is not None
        token = csrf if csrf is not None else csrf_of(self.last.text, action)
        return self.post(action, {"csrf": token, **(fields or {})})

    def follow(self) -> httpx.Response:
        """GET the Location of the last answer (a 303 of the pages)."""
        assert self.last is not None and self.last.status_code == 303, self.last
        return self.get(self.last.headers["location"])

    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    def close(self) -> None:
        self.service.loop.call(self._client.aclose())


def csrf_of(html: str, action: str) -> str:
    """The CSRF token of the form posting to `action`."""
    form = re.search(r'<form method="post" action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', html, re.S)
    assert form is not None, f"no form posting to {action}"
    token = re.search(r'name="csrf" value="([^"]+)"', form.group(1))
    assert token is not None
    return token.group(1)


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    without_head = re.sub(r"<head>.*?</head>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", without_head)).split())
