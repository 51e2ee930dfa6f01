"""The pages' route table (mounted beside engine/http/routes.py's by app.py), their static files,
and `build_pages`, which app.py calls once to assemble what the pages need."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from engine.authcodes import AuthorizationCodes
from engine.config import ConfigError, Settings
from engine.pages import account_pages, branding, enroll, login
from engine.pages.account import AccountSessions
from engine.pages.client_ip import networks
from engine.pages.context import Pages, page
from engine.pages.session import PageSessions
from engine.services import Services


def build_pages(settings: Settings, services: Services) -> Pages:
    """Raises ConfigError for branding that cannot be served (a missing file, an unknown text)."""
    try:
        look = branding.build(settings)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"branding: {exc}") from exc
    return Pages(look, PageSessions(services.store, services.keyring, services.clock),
                 AccountSessions(services.store, services.keyring, services.clock),
                 AuthorizationCodes(services.store, services.clock, services.clients),
                 networks(settings.http.trusted_proxies))


async def static(request: Request) -> Response:
    pages: Pages = request.app.state.pages
    found = pages.branding.static.get(request.path_params["name"])
    if found is None:
        return PlainTextResponse("not found", 404, headers={"X-Content-Type-Options": "nosniff"})
    return Response(found.body, media_type=found.media_type,
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"})


PAGE_ROUTES = [
    Route("/login", page(login.start, needs_session=False), methods=["GET"], name="page_start"),
    Route("/login", page(login.password), methods=["POST"], name="page_password"),
    Route("/login/factor", page(login.factor_page), methods=["GET"], name="page_factor"),
    Route("/login/factor", page(login.choose_factor), methods=["POST"], name="page_choose_factor"),
    Route("/login/code", page(login.code_page), methods=["GET"], name="page_code"),
    Route("/login/code", page(login.verify), methods=["POST"], name="page_verify"),
    Route("/login/resend", page(login.resend), methods=["POST"], name="page_resend"),
    Route("/login/enroll", page(enroll.choose_page), methods=["GET"], name="page_enroll"),
    Route("/login/enroll", page(enroll.choose), methods=["POST"], name="page_enroll_choose"),
    Route("/login/enroll/phone", page(enroll.phone_page), methods=["GET"], name="page_enroll_phone"),
    Route("/login/enroll/phone", page(enroll.phone), methods=["POST"], name="page_enroll_send"),
    Route("/login/enroll/code", page(enroll.code_page), methods=["GET"], name="page_enroll_code"),
    Route("/login/enroll/confirm", page(enroll.confirm), methods=["POST"], name="page_enroll_confirm"),
    Route("/login/continue", page(enroll.proceed), methods=["POST"], name="page_continue"),
    Route("/account/security", page(account_pages.overview, needs_session=False), methods=["GET"],
          name="page_account"),
    Route("/account/security", page(account_pages.change), methods=["POST"], name="page_account_change"),
    Route("/login/static/{name}", static, methods=["GET"], name="page_static"),
]
