"""Enrollment, remembered browsers, languages, branding and the client's address on the hosted pages
(no JavaScript; memory store: the store's part is covered by test_login_pages on both)."""

from __future__ import annotations


import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.config import BrandingSettings, ConfigError, HttpSettings
from engine.errors import StoreUnavailable
from engine.stores.challenges import ChallengeStore
from tests.conftest import LoopThread
from tests.engine.login_harness import totp_now
from tests.engine.pages.harness import CALLBACK, PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.pages.test_login_pages import MFA_ALWAYS, PASSWORD, START, exchange, sign_in, sign_in_with_app

SHOW_IP = '''"""Refuse everyone, naming the address the engine saw."""

def rule(user, context):
    context.deny("seen from " + context.connection.ip)
'''


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, "memory", rules={"10-mfa": MFA_ALWAYS})


def code_of(location: str) -> str:
    assert location.startswith(CALLBACK + "?"), location
    return parse_qs(urlsplit(location).query)["code"][0]


def test_a_first_login_enrols_the_authenticator_app_and_shows_the_recovery_codes_once(
        service: PagesService, browser: PageBrowser) -> None:
    service.create_user()
    assert sign_in(browser).headers["location"] == "/login/enroll"
    choice = browser.follow()
    assert "Authenticator app" in text_of(choice.text) and "Text message (SMS)" in text_of(choice.text)
    page = browser.submit("/login/enroll", {"factor": "otp"})
    assert page.status_code == 200
    assert re.search(r'<img class="qr" src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="QR code', page.text)
    secret = re.search(r'<code class="secret" id="secret">([A-Z2-7]+)</code>', page.text).group(1)

    wrong = browser.submit("/login/enroll/confirm", {"code": "000000"})
    assert "Attempts left: 4" in text_of(wrong.text)
    codes_page = browser.submit("/login/enroll/confirm", {"code": totp_now(secret, service.clock.now())})
    codes = re.findall(r"<li><code>([^<]+)</code></li>", codes_page.text)
    assert len(codes) == 10
    assert 'download="recovery-codes.txt"' in codes_page.text
    done = browser.submit("/login/continue")
    token = exchange(service, code_of(done.headers["location"])).json()
    assert service.decode(token["token"])["amr"] == ["pwd", "otp"]


def test_a_first_login_enrols_a_phone(service: PagesService, browser: PageBrowser) -> None:
    service.create_user()
    sign_in(browser)
    browser.follow()
    browser.submit("/login/enroll", {"factor": "sms"})
    form = browser.follow()
    assert '<label for="phone">Phone number</label>' in form.text
    bad = browser.submit("/login/enroll/phone", {"phone": "12"})
    assert bad.status_code == 400 and "Enter a valid phone number" in text_of(bad.text)
    browser.submit("/login/enroll/phone", {"phone": "+1 415 555 0123"})
    assert "+1 *** *** 0123" in text_of(browser.follow().text)
    codes_page = browser.submit("/login/enroll/confirm", {"code": service.sms.last_code_for("+14155550123")})
    assert len(re.findall(r"<li><code>", codes_page.text)) == 10
    done = browser.submit("/login/continue")
    assert service.decode(exchange(service, code_of(done.headers["location"])).json()["token"])["amr"] == \
        ["pwd", "sms"]


def test_a_remembered_browser_skips_the_factor_on_its_next_login(service: PagesService,
                                                                 browser: PageBrowser) -> None:
    enrolled, first = sign_in_with_app(service, browser, remember="1")
    assert "mfa-remember=rmb_" in first.headers.get("set-cookie", "")
    assert "remember_token" not in exchange(service, code_of(first.headers["location"])).json()

    again = sign_in(browser)
    token = exchange(service, code_of(again.headers["location"])).json()
    assert token["remembered_browser"] is True
    assert service.decode(token["token"])["amr"] == ["pwd"]


@pytest.mark.parametrize(("how", "labels"), [
    ({"headers": {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}}, ("Benutzername", "Passwort", "Anmelden")),
    ({"query": "&ui_locales=de"}, ("Benutzername", "Passwort", "Anmelden")),
    ({"headers": {"Accept-Language": "fr-FR, en;q=0.5"}}, ("Username", "Password", "Sign in")),
])
def test_the_language_follows_ui_locales_or_accept_language(browser: PageBrowser, how: dict[str, object],
                                                           labels: tuple[str, ...]) -> None:
    page = browser.get(START + str(how.get("query", "")), headers=how.get("headers", {}))
    for label in labels:
        assert label in text_of(page.text)
    assert f'<html lang="{"de" if labels[0] == "Benutzername" else "en"}">' in page.text


def test_a_denied_login_in_german_reads_german(service: PagesService, browser: PageBrowser) -> None:
    service.create_user("mallory", PASSWORD)
    browser.get(START + "&ui_locales=de")
    page = browser.submit("/login", {"username": "mallory", "password": PASSWORD})
    assert "Anmeldung abgelehnt" in text_of(page.text)


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path, loop_thread: LoopThread) -> None:
    for trusted in ((), ("127.0.0.0/8",)):
        folder = tmp_path / str(len(trusted))
        folder.mkdir()
        for service in start_pages_service(folder, loop_thread, "memory", rules={"10-ip": SHOW_IP},
                                           http=HttpSettings(trusted_proxies=trusted)):
            service.create_user()
            browser = PageBrowser(service)
            browser.get(START)
            assert browser.last is not None
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.last.text)
            assert csrf is not None
            page = browser.post("/login", {"csrf": csrf.group(1), "username": "alice", "password": PASSWORD},
                                headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.5"})
            seen = "203.0.113.5" if trusted else "127.0.0.1"
            assert f"seen from {seen}" in text_of(page.text)
            browser.close()


def test_branding_names_the_product_adds_css_and_replaces_texts_and_templates(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    (tmp_path / "theme").mkdir()
    (tmp_path / "theme" / "message.html").write_text(
        '{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}'
        '{% block content %}<p class="themed">THEMED {{ paragraphs[0] }}</p>{% endblock %}', encoding="utf-8")
    (tmp_path / "acme.css").write_text("body { font-family: serif; }", encoding="utf-8")
    branding = BrandingSettings(product_name="Acme Corp", primary_color="#aa0000", custom_css="acme.css",
                                support_url="https://help.example.com", templates_dir="theme",
                                texts={"en": {"title_password": "Welcome to Acme"}})
    for service in start_pages_service(tmp_path, loop_thread, "memory", branding=branding):
        browser = PageBrowser(service)
        page = browser.get(START)
        assert "Welcome to Acme · Acme Corp" in page.text
        assert '<link rel="stylesheet" href="/login/static/custom.css">' in page.text
        assert 'href="https://help.example.com"' in page.text
        assert browser.get("/login/static/theme.css").text == ":root { --primary: #aa0000; --background: #f3f4f6; }\n"
        assert browser.get("/login/static/custom.css").text == "body { font-family: serif; }"
        assert browser.get("/login/static/..%2Fconfig.yaml").status_code == 404
        assert "THEMED" in browser.get("/login?client_id=nobody").text
        browser.close()


def test_an_unknown_branding_text_stops_startup(tmp_path: Path, loop_thread: LoopThread) -> None:
    with pytest.raises(ConfigError, match="branding: branding.texts.en.no_such_text: no such text"):
        next(start_pages_service(tmp_path, loop_thread, "memory",
                                 branding=BrandingSettings(texts={"en": {"no_such_text": "x"}})))




class OutageStore:
    """The real store, until `down` is set: then every call fails as an unreachable Redis does."""

    def __init__(self, inner: ChallengeStore) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name == "close":
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailable("the challenge store is unavailable")
            return await attribute(*args, **kwargs)
        return call


def test_a_store_outage_is_the_service_unavailable_page_never_a_trace(tmp_path: Path,
                                                                       loop_thread: LoopThread) -> None:
    stores: list[OutageStore] = []

    def outage(inner: ChallengeStore) -> ChallengeStore:
        stores.append(OutageStore(inner))
        return stores[-1]  # type: ignore[return-value]

    for service in start_pages_service(tmp_path, loop_thread, "memory", wrap_store=outage,
                                       rules={"10-mfa": MFA_ALWAYS}):
        service.create_user()
        browser = PageBrowser(service)
        browser.get(START)
        stores[0].down = True
        page = browser.submit("/login", {"username": "alice", "password": PASSWORD})
        assert page.status_code == 503
        assert "We cannot sign you in right now." in text_of(page.text)
        assert "Traceback" not in page.text and "store" not in text_of(page.text).lower()
        browser.close()
