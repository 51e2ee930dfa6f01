"""Page responses: a template rendered in the request's language, with the pages' security headers.

Every page carries a Content-Security-Policy without 'unsafe-inline' (scripts and styles are
files under /login/static), `frame-ancestors 'none'` (and X-Frame-Options for older browsers),
`nosniff`, `Referrer-Policy: no-referrer` (the query of /login holds the application's state)
and `Cache-Control: no-store`. `form-action` names the pages' own origin and, while a login is
under way, the origin of its registered redirect URI: browsers check form-action on the
redirect that follows a form, and the last form's answer is the redirect back to the application.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.responses import HTMLResponse, RedirectResponse, Response

from engine.pages import i18n
from engine.pages.branding import Branding


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(form_target: str | None = None, logo_origin: str | None = None) -> dict[str, str]:
    images = "'self' data:" + (f" {logo_origin}" if logo_origin else "")
    forms = "'self'" + (f" {origin_of(form_target)}" if form_target else "")
    policy = (f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; form-action {forms}; "
              "frame-ancestors 'none'; base-uri 'none'")
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class Translator:
    """`t(key, **values)` in templates: the locale's text (English when a theme lacks one), filled."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = texts

    def __call__(self, key: str, **values: object) -> str:
        return i18n.fill(self.texts.get(key) or i18n.EN[key], values)


def render_page(branding: Branding, locale: str, template: str, values: Mapping[str, Any], status: int = 200,
                form_target: str | None = None) -> HTMLResponse:
    t = Translator(branding.texts[locale])
    body = branding.templates.get_template(template).render(
        {"t": t, "lang": locale, "brand": branding, "csrf": "", "client_name": "", "error": None, "action": None,
         "done_href": None, **values})
    return HTMLResponse(body, status, headers=security_headers(form_target, branding.logo_origin))


def with_headers(response: Response, form_target: str | None = None) -> Response:
    response.headers.update(security_headers(form_target))
    return response


def go(path: str) -> Response:
    """Post/redirect/get: a reload of the next page never sends the form again."""
    return with_headers(RedirectResponse(path, 303))


def text_download(lines: list[str]) -> str:
    """A data: URL of `lines` as a text file, for a download link (no request, nothing stored)."""
    return "data:text/plain;charset=utf-8," + quote("\n".join(lines) + "\n")


def data_uri(media_type: str, content: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode('ascii')}"
