"""The hosted pages in a real browser: Debian's Chromium, driven by Playwright, against a live
uvicorn, from a small application's /start to its /callback. Every page visited is checked with
axe-core (no serious or critical violation) and no Content-Security-Policy violation, and
screenshotted in English and German under var/test-output/pages/."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from engine.app import create_app
from engine.clock import FrozenClock
from engine.config import ClientSettings, SensitiveActionsTrigger, TriggersSettings
from engine.sms.recording import RecordingSmsGateway
from tests.engine.live_process import serve_in_thread
from tests.engine.login_harness import START, totp_now
from tests.engine.pages.conftest import CHROMIUM
from tests.engine.pages.demo_app import DemoApp
from tests.engine.pages.test_login_pages import MFA_ALWAYS, PASSWORD
from tests.engine.service import ADMIN_TOKEN, API_KEY, SIGNING_KEY, make_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[3]
AXE = (REPO / "tests" / "data" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
SCREENSHOTS = Path(os.environ.get("TEST_OUTPUT_DIR", REPO / "var" / "test-output")) / "pages"
PHONE = "+14155550123"


@dataclass
class Live:
    engine: str
    demo: DemoApp
    clock: FrozenClock
    sms: RecordingSmsGateway
    ttl: int

    def api(self, path: str, body: dict[str, Any], token: str = API_KEY) -> httpx.Response:
        return httpx.post(self.engine + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def create_user(self, username: str) -> None:
        response = self.api("/admin/users", {"username": username, "password": PASSWORD}, ADMIN_TOKEN)
        assert response.status_code == 201, response.text

    def _first_login(self, username: str) -> str:
        self.create_user(username)
        login = self.api("/v1/login", {"username": username, "password": PASSWORD, "client_id": "demo",
                                       "context": {"ip": "203.0.113.7", "device_id": "setup"}}).json()
        assert login["status"] == "mfa_enrollment_required", login
        return str(login["enrollment_token"])

    def user_with_sms(self, username: str) -> list[str]:
        """A user with a phone; their recovery codes."""
        started = self.api("/v1/mfa/enroll", {"factor": "sms", "phone_number": PHONE,
                                              "enrollment_token": self._first_login(username)}).json()
        done = self.api("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"],
                                                   "code": self.sms.last_code_for(PHONE)}).json()
        return list(done["recovery_codes"])

    def user_with_app(self, username: str) -> str:
        """A user with an authenticator app; its secret (the clock moved past the code it used)."""
        started = self.api("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": self._first_login(username)}).json()
        done = self.api("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"],
                                                   "code": totp_now(started["secret"], self.clock.now())})
        assert done.status_code == 200, done.text
        self.clock.advance(30)
        return str(started["secret"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp_path = tmp_path_factory.mktemp("browser")
    demo = DemoApp()
    demo_server, demo_thread, demo.own_url = serve_in_thread(demo.app)
    settings = make_settings(tmp_path, {"10-mfa": MFA_ALWAYS}, mfa={"triggers": TriggersSettings(
        sensitive_actions=SensitiveActionsTrigger(actions=("account_security",)))})
    settings = dataclasses.replace(settings, clients={"demo": ClientSettings("Demo App", (demo.redirect_uri,))})
    clock, sms = FrozenClock(START), RecordingSmsGateway()
    server, thread, demo.engine_url = serve_in_thread(create_app(settings, clock=clock, gateway=sms))
    yield Live(demo.engine_url, demo, clock, sms, settings.mfa.challenge_ttl_seconds)
    for stopping, stopped in ((server, thread), (demo_server, demo_thread)):
        stopping.should_exit = True
        stopped.join(10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Tab:
    """One browser tab, checking every page it lands on (axe-core, CSP) and screenshotting."""

    def __init__(self, chromium: Any, locale: str) -> None:
        self.locale = locale
        self.context = chromium.new_context(locale={"en": "en-US", "de": "de-DE"}[locale])
        self.page = self.context.new_page()
        self.csp_violations: list[str] = []
        self.page.on("console", lambda message: self.csp_violations.append(message.text)
                     if "Content Security Policy" in message.text else None)

    def check(self, name: str) -> None:
        """The page is accessible (no serious axe violation) and screenshotted as `name`."""
        self.page.wait_for_load_state("load")
        folder = SCREENSHOTS / self.locale
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        self.page.evaluate(AXE + "\n;0")  # through DevTools: a page's CSP does not apply to the test's own script
        violations = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, targets: v.nodes.map(n => n.target.join(' '))}))")
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{name}: {serious}"
        assert self.csp_violations == [], f"{name}: {self.csp_violations}"

    def sign_in(self, live: Live, username: str, password: str = PASSWORD) -> None:
        self.page.goto(f"{live.demo.own_url}/start?ui_locales={self.locale}")
        assert self.page.url.startswith(live.engine + "/login?")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")

    def enter_code(self, code: str, remember: bool = False) -> None:
        """Type a code; six digits submit the form by themselves (pages.js) unless it has a checkbox."""
        if remember:
            self.page.check("#remember")
        autosubmits = (re.fullmatch(r"[0-9]{6}", code) is not None
                       and self.page.locator("form:has(#code) input[type=checkbox]").count() == 0
                       and self.page.locator("#code[data-autosubmit]").count() == 1)
        with self.page.expect_navigation():
            self.page.fill("#code", code)
            if not autosubmits:
                self.page.click("form:has(#code) button[type=submit]")

    def submit(self) -> None:
        with self.page.expect_navigation():
            self.page.click("main form button[type=submit]:not(.link)")

    def text(self) -> str:
        return str(self.page.inner_text("main")) if self.page.locator("main").count() else self.page.content()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(params=["en", "de"])
def tab(request: pytest.FixtureRequest, chromium: Any) -> Iterator[Tab]:
    opened = Tab(chromium, request.param)
    yield opened
    opened.close()


@pytest.fixture
def english(chromium: Any) -> Iterator[Tab]:
    opened = Tab(chromium, "en")
    yield opened
    opened.close()


def amr_of(live: Live) -> list[str]:
    token = live.demo.signed_in[-1]["token"]
    claims = jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], audience="mfa-engine-clients",
                        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    return list(claims["amr"])


def back_at_the_app(tab: Tab, live: Live, amr: list[str]) -> None:
    assert tab.page.url.startswith(live.demo.redirect_uri + "?code=")
    assert tab.page.inner_text("#welcome") == "Signed in"
    assert amr_of(live) == amr


def test_the_sms_story_from_the_application_and_back(tab: Tab, live: Live) -> None:
    username = f"sms-{tab.locale}"
    live.user_with_sms(username)
    tab.page.goto(f"{live.demo.own_url}/start?ui_locales={tab.locale}")
    assert tab.page.get_by_label({"en": "Username", "de": "Benutzername"}[tab.locale]).count() == 1
    assert tab.page.get_by_label({"en": "Password", "de": "Passwort"}[tab.locale]).count() == 1
    tab.check("01-password")
    tab.page.fill("#username", username)
    tab.page.fill("#password", "wrong password")
    tab.submit()
    assert tab.page.locator(".alert").count() == 1
    tab.check("02-wrong-password")
    tab.page.fill("#password", PASSWORD)
    tab.submit()
    assert tab.page.url.endswith("/login/factor")
    assert tab.page.locator("input[name=factor_id]").first.is_checked()
    assert "+1 *** *** 0123" in tab.text()
    tab.check("03-factor-choice")
    tab.submit()
    assert tab.page.get_attribute("#code", "autocomplete") == "one-time-code"
    assert tab.page.get_attribute("#code", "inputmode") == "numeric"
    assert tab.page.get_by_label("Code", exact=True).count() == 1
    tab.check("04-code-sms")
    code = live.sms.last_code_for(PHONE)
    assert code is not None
    tab.enter_code("000000" if code != "000000" else "111111")
    assert tab.page.get_attribute("#code", "aria-invalid") == "true"
    assert "4" in tab.page.inner_text("#code-error")
    tab.check("05-wrong-code")
    tab.enter_code(code)
    back_at_the_app(tab, live, ["pwd", "sms"])


def test_the_authenticator_app(english: Tab, live: Live) -> None:
    secret = live.user_with_app("app-user")
    english.sign_in(live, "app-user")
    english.submit()  # the app is the default factor
    english.check("06-code-app")
    english.enter_code(totp_now(secret, live.clock.now()))
    back_at_the_app(english, live, ["pwd", "otp"])


def test_enrollment_reads_the_secret_from_the_page(tab: Tab, live: Live) -> None:
    username = f"new-{tab.locale}"
    live.create_user(username)
    tab.sign_in(live, username)
    assert tab.page.url.endswith("/login/enroll")
    tab.check("07-enroll-choice")
    tab.submit()  # the authenticator app is first
    secret = tab.page.inner_text("#secret").strip()
    assert tab.page.locator("img.qr").count() == 1
    tab.check("08-enroll-app")
    tab.enter_code(totp_now(secret, live.clock.now()))
    assert tab.page.locator("#recovery-codes li").count() == 10
    tab.check("09-recovery-codes")
    tab.submit()
    back_at_the_app(tab, live, ["pwd", "otp"])
    live.clock.advance(30)


def test_enrolling_a_phone(tab: Tab, live: Live) -> None:
    username = f"phone-{tab.locale}"
    live.create_user(username)
    tab.sign_in(live, username)
    tab.page.check("#enroll-sms")
    tab.submit()
    tab.check("10-enroll-phone")
    tab.page.fill("#phone", "+1 415 555 0199")
    tab.submit()
    tab.check("11-enroll-sms-code")
    tab.enter_code(str(live.sms.last_code_for("+14155550199")))
    tab.submit()  # past the recovery codes
    back_at_the_app(tab, live, ["pwd", "sms"])


def test_a_recovery_code(english: Tab, live: Live) -> None:
    codes = live.user_with_sms("lost-phone")
    english.sign_in(live, "lost-phone")
    english.page.check("input[value=recovery]")
    english.submit()
    english.check("12-recovery-code")
    english.enter_code(codes[0])
    back_at_the_app(english, live, ["pwd", "recovery"])


def test_an_expired_challenge_starts_again(tab: Tab, live: Live) -> None:
    username = f"slow-{tab.locale}"
    secret = live.user_with_app(username)
    tab.sign_in(live, username)
    tab.submit()
    live.clock.advance(live.ttl + 1)
    tab.enter_code(totp_now(secret, live.clock.now()))
    assert tab.page.locator("a.button").count() == 1
    tab.check("13-expired")
    with tab.page.expect_navigation():
        tab.page.click("a.button")
    assert tab.page.locator("#username").count() == 1
    live.clock.advance(30)


def test_a_remembered_browser_skips_the_factor_next_time(english: Tab, live: Live) -> None:
    secret = live.user_with_app("regular")
    english.sign_in(live, "regular")
    english.submit()
    english.enter_code(totp_now(secret, live.clock.now()), remember=True)
    back_at_the_app(english, live, ["pwd", "otp"])
    english.sign_in(live, "regular")
    back_at_the_app(english, live, ["pwd"])
    assert live.demo.signed_in[-1]["remembered_browser"] is True
    live.clock.advance(30)


def test_a_tampered_csrf_token_is_refused(tab: Tab, live: Live) -> None:
    tab.page.goto(f"{live.demo.own_url}/start?ui_locales={tab.locale}")
    tab.page.evaluate("document.querySelector('input[name=csrf]').value = 'tampered-' + 'x'.repeat(24)")
    tab.page.fill("#username", "nobody")
    tab.page.fill("#password", PASSWORD)
    tab.submit()
    assert tab.page.locator("#username").count() == 0
    tab.check("14-form-refused")


def test_an_unregistered_redirect_uri_is_refused(tab: Tab, live: Live) -> None:
    query = urlencode({"client_id": "demo", "redirect_uri": "https://evil.example/callback", "state": "x",
                       "ui_locales": tab.locale})
    response = tab.page.goto(f"{live.engine}/login?{query}")
    assert response is not None and response.status == 400
    assert tab.page.url.startswith(live.engine + "/login?")
    tab.check("15-unregistered-redirect")


def test_a_denied_and_a_locked_sign_in(tab: Tab, live: Live) -> None:
    if tab.locale == "en":
        live.create_user("mallory")
    tab.sign_in(live, "mallory")
    assert "blocked by the security team" in tab.text()
    tab.check("16-denied")
    username = f"locked-{tab.locale}"
    secret = live.user_with_app(username)
    wrong = "000000" if totp_now(secret, live.clock.now()) != "000000" else "111111"
    for _ in range(2):
        tab.sign_in(live, username)
        tab.submit()
        for _ in range(5):
            tab.enter_code(wrong)
            if tab.page.locator("#code").count() == 0:
                break
        if "15" in tab.text():
            break
    assert tab.page.locator("#code").count() == 0
    tab.check("17-locked")


def test_account_security_after_a_sign_in(tab: Tab, live: Live) -> None:
    username = f"self-service-{tab.locale}"
    secret = live.user_with_app(username)
    tab.sign_in(live, username)
    tab.submit()
    tab.enter_code(totp_now(secret, live.clock.now()))
    back_at_the_app(tab, live, ["pwd", "otp"])
    tab.page.goto(f"{live.engine}/account/security?ui_locales={tab.locale}")
    assert tab.page.locator("ul.factors li").count() == 1
    tab.check("18-account-security")
    live.clock.advance(30)  # the app's next code
    tab.page.fill("#phone", "+1 415 555 0177")
    with tab.page.expect_navigation():
        tab.page.click("form:has(#phone) button[type=submit]")
    # The rules ask for a factor at every step-up here: the change waits for it.
    assert tab.page.url.endswith("/login/factor")
    tab.submit()
    tab.enter_code(totp_now(secret, live.clock.now()))
    assert tab.page.url.endswith("/login/enroll/code")
    tab.enter_code(str(live.sms.last_code_for("+14155550177")))
    assert tab.page.locator("ul.factors li").count() == 2
    live.clock.advance(30)
