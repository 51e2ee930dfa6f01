"""One page request: the services, the pages' own parts, the session, the language, the address.

`page(handler)` wraps every page handler: it reads the session (and, for a POST, the form and its
CSRF token), and turns whatever the flow raises that the handler did not answer into a page:
service unavailable, or an opaque error page logged as ErrorBoundary logs (type and place,
never values). A page never shows a stack trace or a JSON error."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from engine import formats
from engine.authcodes import AuthorizationCodes
from engine.errors import ServiceUnavailable
from engine.http.errors import _raised_at
from engine.pages import i18n
from engine.pages.account import AccountSessions
from engine.pages.branding import Branding
from engine.pages.client_ip import Network, client_ip
from engine.pages.forms import BadForm, read_form
from engine.pages.render import render_page
from engine.pages.session import PageSession, PageSessions, cookie_name, is_secure
from engine.services import Services

log = logging.getLogger("engine.pages")

DEVICE_COOKIE = "mfa-device"
DEVICE_ID = re.compile(r"dev_[A-Za-z0-9_-]{22}")
MAX_USER_AGENT_LENGTH = 1024  # as the API's context.user_agent


@dataclass(frozen=True, slots=True)
class Pages:
    """The pages' parts, built once by app.py (engine/pages/routes.py: build_pages)."""

    branding: Branding
    sessions: PageSessions
    accounts: AccountSessions
    codes: AuthorizationCodes
    trusted_proxies: tuple[Network, ...]


@dataclass(slots=True)
class PageCall:
    request: Request
    services: Services
    pages: Pages
    secure: bool
    session: PageSession | None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def locale(self) -> str:
        chosen = i18n.from_ui_locales(self.request.query_params.get("ui_locales"))
        if chosen is None and self.session is not None:
            chosen = self.session.data.get("locale")
        return chosen or i18n.from_accept_language(self.request.headers.get("accept-language"))

    @property
    def ip(self) -> str | None:
        peer = self.request.client.host if self.request.client else None
        forwarded = ", ".join(self.request.headers.getlist("x-forwarded-for")) or None
        return client_ip(peer, forwarded, self.pages.trusted_proxies)

    @property
    def data(self) -> dict[str, Any]:
        assert self.session is not None
        return self.session.data

    @property
    def device_id(self) -> str | None:
        """This browser's device id (a cookie the password step sets), when it has a valid one."""
        device_id = self.cookie(DEVICE_COOKIE) or ""
        return device_id if DEVICE_ID.fullmatch(device_id) else None

    def cookie(self, name: str) -> str | None:
        return self.request.cookies.get(cookie_name(name, self.secure))

    def flow_context(self, device_id: str | None) -> dict[str, Any]:
        """What the API's caller would send as `context`, from the browser's request (and checked by
        the same schema as the API's bodies). A user agent the schema would refuse is left out
        rather than failing the login."""
        context: dict[str, Any] = {}
        if device_id is not None:
            context["device_id"] = device_id
        if self.ip is not None:
            context["ip"] = self.ip
        agent = self.request.headers.get("user-agent")
        if agent and len(agent) <= MAX_USER_AGENT_LENGTH and formats.is_free_text(agent):
            context["user_agent"] = agent
        if self.data.get("client_name"):  # as registered when /login started
            context["client_name"] = self.data["client_name"]
        return context

    async def client_registered(self) -> bool:
        """Whether the session's client is still registered with the session's redirect URI, read
        now (engine/clients.py): a client deleted or changed meanwhile, on any instance, gets no
        code. Self-service (/account/security) has no client."""
        if self.session is None or not self.data.get("client_id"):
            return True
        client = await self.services.clients.find(self.data["client_id"])
        return client is not None and self.data.get("redirect_uri") in client.redirect_uris

    async def client_gone(self) -> Response:
        """The page of a login whose client is no longer registered: never a redirect anywhere."""
        return await self.end(self.message("title_bad_request", [self.t("bad_client")], 400))

    def t(self, key: str, **values: object) -> str:
        texts = self.pages.branding.texts[self.locale]
        return i18n.fill(texts.get(key) or i18n.EN[key], values)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        session = self.session
        context: dict[str, Any] = {"csrf": session.csrf if session else "",
                                   "action": session.data.get("action") if session else None}
        if session is not None and session.data.get("client_id"):
            context["client_name"] = session.data.get("client_name") or session.data["client_id"]
        target = session.data.get("redirect_uri") if session is not None else None
        return render_page(self.pages.branding, self.locale, template, context | values, status, target)

    def message(self, title: str, paragraphs: list[str], status: int, *, start_again: bool = False,
                alert: bool = True) -> Response:
        return self.render("message.html", status, title=self.t(title), paragraphs=paragraphs, alert=alert,
                           start_again=self.start_url() if start_again else None)

    def start_url(self) -> str | None:
        """/login again for this session's application, as it first came (None without a session)."""
        if self.session is None:
            return None
        data = self.session.data
        if not data.get("client_id"):
            return "/account/security"
        query = {name: data[key] for name, key in (("client_id", "client_id"), ("redirect_uri", "redirect_uri"),
                                                    ("state", "state"), ("code_challenge", "code_challenge"))
                 if data.get(key)}
        if data.get("code_challenge"):
            query["code_challenge_method"] = "S256"
        return "/login?" + urlencode(query)

    async def save(self, response: Response) -> Response:
        assert self.session is not None
        await self.pages.sessions.save(self.session, response, self.secure)
        return response

    async def offer(self, response: Response) -> Response:
        """The first page of a session, which stores nothing yet (session.py: PageSessions.offer)."""
        assert self.session is not None
        await self.pages.sessions.offer(self.session, response, self.secure)
        return response

    async def keep(self, response: Response) -> Response:
        """The session as it is now: offered while nothing is stored yet, else saved (stored anew)."""
        assert self.session is not None
        return await (self.offer if self.session.session_id is None else self.save)(response)

    async def end(self, response: Response) -> Response:
        if self.session is not None:
            await self.pages.sessions.end(self.session, response, self.secure)
        return response

    # The pages every step may end on.

    async def expired(self) -> Response:
        if self.session is None:
            return self.message("title_expired", [self.t("expired_no_session")], 410)
        return await self.end(self.message("title_expired", [self.t("expired_body")], 410, start_again=True))

    async def locked(self, retry_after: int | None) -> Response:
        minutes = max(1, math.ceil((retry_after or 60) / 60))
        return await self.end(self.message("title_locked", [self.t("locked_body", minutes=minutes)], 429,
                                           start_again=False))

    def unavailable(self) -> Response:
        return self.message("title_unavailable", [self.t("unavailable_body")], 503)


Handler = Callable[[PageCall], Awaitable[Response]]


def page(handler: Handler, *, needs_session: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        pages: Pages = request.app.state.pages
        secure = is_secure(request, services.settings.environment)
        call = PageCall(request, services, pages, secure, None)
        try:
            call.session = await pages.sessions.load(request, secure)
            if request.method == "POST":
                try:
                    call.form = await read_form(request)
                except BadForm:
                    return call.message("title_forbidden", [call.t("csrf_body")], 400, start_again=True)
                if call.session is None:
                    return await call.expired()
                if not pages.sessions.csrf_ok(call.session, call.form.get("csrf")):
                    log.info("page_refused reason=csrf route=%s", request.url.path)
                    return call.message("title_forbidden", [call.t("csrf_body")], 403, start_again=True)
            elif needs_session and call.session is None:
                return await call.expired()
            return await handler(call)
        except ServiceUnavailable:
            return call.unavailable()
        except Exception as exc:
            log.error("page_error route=%s type=%s at=%s", request.url.path, type(exc).__name__, _raised_at(exc))
            return call.message("title_error", [call.t("error_body")], 500, start_again=call.session is not None)
    return endpoint
