"""The hosted login pages without JavaScript, over the real HTTP stack, on both challenge stores:
from the application's redirect to /login, through password and second factor, back to the
application with a code that /v1/token exchanges for the login's token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from engine.authcodes import s256
from tests.conftest import LoopThread
from tests.engine.login_harness import totp_now
from tests.engine.pages.harness import CALLBACK, PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.service import admin_auth

MFA_ALWAYS = '''"""A second factor for every login; the browser may be remembered; mallory is refused."""

def rule(user, context):
    if user.username == "mallory":
        context.deny("blocked by the security team")
    context.multifactor.enable(allow_remember_browser=True)
'''
PHONE = "+14155550123"
PASSWORD = "correct horse battery staple"
START = "/login?" + urlencode({"client_id": "demo", "redirect_uri": CALLBACK, "state": "st-42"})


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, request.param, rules={"10-mfa": MFA_ALWAYS},
                                   mfa={"lockout_threshold": 7})


@pytest.fixture
def memory_browser(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PageBrowser]:
    """For what no store takes part in (pages refused before any session exists)."""
    for service in start_pages_service(tmp_path, loop_thread, "memory", rules={"10-mfa": MFA_ALWAYS}):
        opened = PageBrowser(service)
        yield opened
        opened.close()


def sms_user(service: PagesService) -> dict[str, str]:
    service.create_user()
    enrolled = service.first_login_enrolling_sms(phone=PHONE)
    return {"sms": enrolled["factor_id"], "recovery": enrolled["recovery_codes"][0]}


def otp_user(service: PagesService) -> dict[str, str]:
    service.create_user()
    return service.first_login_enrolling_otp()


def sign_in(browser: PageBrowser, password: str = PASSWORD, start: str = START) -> httpx.Response:
    page = browser.get(start)
    assert page.status_code == 200, page.text
    return browser.submit("/login", {"username": "alice", "password": password})


def sign_in_with_app(service: PagesService, browser: PageBrowser, start: str = START,
                     **code_fields: str) -> tuple[dict[str, str], httpx.Response]:
    """A new user with an authenticator app signs in from `start`: password, the app chosen, its
    code (plus `code_fields`, e.g. remember="1"). The enrolled factor and the code's answer."""
    enrolled = otp_user(service)
    sign_in(browser, start=start)
    browser.follow()
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    browser.follow()
    done = browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now()), **code_fields})
    return enrolled, done


def callback_code(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return parse_qs(urlsplit(location).query)


def assert_descriptions_exist(html: str) -> None:
    """Every aria-describedby names an element of the page: a dangling one ties the field to nothing."""
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    named = [name for value in re.findall(r'aria-describedby="([^"]+)"', html) for name in value.split()]
    assert named and set(named) <= ids, (named, ids)


def exchange(service: PagesService, code: str, **extra: str) -> httpx.Response:
    return service.post("/v1/token", {"code": code, "client_id": "demo", "redirect_uri": CALLBACK, **extra})


def test_the_sms_story_ends_back_at_the_application_with_a_code_for_a_pwd_sms_token(
        service: PagesService, browser: PageBrowser) -> None:
    sms_user(service)
    assert sign_in(browser).headers["location"] == "/login/factor"
    choice = browser.follow()
    assert "Text message to +1 *** *** 0123" in text_of(choice.text)
    assert re.search(r'<input type="radio" name="factor_id" id="factor-1" value="fac_[^"]+" checked>', choice.text)

    browser.submit("/login/factor", {"factor_id": re.search(r'value="(fac_[^"]+)"', choice.text).group(1)})
    code_page = browser.follow()
    assert "We sent a code by text message to +1 *** *** 0123." in text_of(code_page.text)
    assert 'autocomplete="one-time-code"' in code_page.text and 'inputmode="numeric"' in code_page.text
    assert "<label for=\"code\">Code</label>" in code_page.text
    assert "Remember this browser for 30 days" in text_of(code_page.text)
    code = service.sms.last_code_for(PHONE)
    assert code is not None

    wrong = browser.submit("/login/code", {"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 401
    assert "That code is not right. Attempts left: 4." in text_of(wrong.text)
    assert 'aria-describedby="code-hint code-error"' in wrong.text

    back = callback_code(browser.submit("/login/code", {"code": code}))
    assert back["state"] == ["st-42"]
    assert len(back["code"][0]) == 22
    token = exchange(service, back["code"][0])
    assert token.status_code == 200, token.text
    assert service.decode(token.json()["token"])["amr"] == ["pwd", "sms"]
    assert exchange(service, back["code"][0]).json()["error"] == "invalid_grant"


def test_the_authenticator_app_needs_only_its_code(service: PagesService, browser: PageBrowser) -> None:
    enrolled = otp_user(service)
    sign_in(browser)
    choice = browser.follow()
    assert "Authenticator app" in text_of(choice.text)
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    page = browser.follow()
    assert "Open your authenticator app" in text_of(page.text)
    assert "Send a new code" not in text_of(page.text)
    back = callback_code(browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now())}))
    assert service.decode(exchange(service, back["code"][0]).json()["token"])["amr"] == ["pwd", "otp"]


def test_a_wrong_code_at_the_pages_is_audited_from_the_browsers_address(service: PagesService,
                                                                       browser: PageBrowser) -> None:
    enrolled = otp_user(service)
    sign_in(browser)
    browser.follow()
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    browser.follow()
    wrong = "000000" if totp_now(enrolled["secret"], service.clock.now()) != "000000" else "111111"
    assert browser.submit("/login/code", {"code": wrong}).status_code == 401
    trail = service.client.get("/admin/audit", params={"type": "factor.failed"}, headers=admin_auth())
    assert [(event["details"]["factor_id"], event["ip"]) for event in trail.json()["events"]] == \
        [(enrolled["factor_id"], "127.0.0.1")]  # the socket's address, as the password step's


def test_a_recovery_code_signs_in_once(service: PagesService, browser: PageBrowser) -> None:
    enrolled = sms_user(service)
    sign_in(browser)
    browser.follow()
    browser.submit("/login/factor", {"factor_id": "recovery"})
    page = browser.follow()
    assert "Recovery code" in text_of(page.text)
    back = callback_code(browser.submit("/login/code", {"code": enrolled["recovery"]}))
    assert service.decode(exchange(service, back["code"][0]).json()["token"])["amr"] == ["pwd", "recovery"]


def test_a_wrong_password_shows_the_form_again_with_the_error(service: PagesService, browser: PageBrowser) -> None:
    sms_user(service)
    page = sign_in(browser, password="wrong")
    assert page.status_code == 401
    assert "The username or password is not right." in text_of(page.text)
    assert 'value="alice"' in page.text
    assert 'aria-describedby="form-error"' in page.text
    assert_descriptions_exist(page.text)
    assert service.sms.messages == []


def test_a_missing_username_or_password_is_described_by_its_own_error(browser: PageBrowser) -> None:
    assert browser.get(START).status_code == 200
    page = browser.submit("/login", {"username": "", "password": ""})
    assert page.status_code == 400
    assert 'aria-describedby="username-error"' in page.text and 'aria-describedby="password-error"' in page.text
    assert_descriptions_exist(page.text)


def test_a_rules_denial_shows_its_reason(service: PagesService, browser: PageBrowser) -> None:
    service.create_user("mallory", PASSWORD)
    browser.get(START)
    page = browser.submit("/login", {"username": "mallory", "password": PASSWORD})
    assert page.status_code == 403
    assert "Reason: blocked by the security team" in text_of(page.text)


def test_an_expired_challenge_says_so_and_offers_to_start_again(service: PagesService, browser: PageBrowser) -> None:
    enrolled = otp_user(service)
    sign_in(browser)
    browser.follow()
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    browser.follow()
    service.clock.advance(service.settings.mfa.challenge_ttl_seconds + 1)
    page = browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now())})
    assert page.status_code == 410
    assert "This sign-in has expired" in text_of(page.text)
    assert 'href="/login?client_id=demo&amp;redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&amp;state=st-42"' \
        in page.text


def test_too_many_wrong_codes_lock_the_factor_and_say_when_to_retry(service: PagesService,
                                                                   browser: PageBrowser) -> None:
    enrolled = otp_user(service)
    for _ in range(2):
        sign_in(browser)
        browser.follow()
        browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
        browser.follow()
        for _ in range(5):
            page = browser.submit("/login/code", {"code": "12345a"})
            if page.status_code != 401:
                break
    assert page.status_code == 429
    assert "Try again in 15 minutes." in text_of(page.text)


def test_a_tampered_csrf_token_is_refused_before_the_flow_runs(service: PagesService, browser: PageBrowser) -> None:
    sms_user(service)
    sign_in(browser)
    choice = browser.follow()
    factor_id = re.search(r'value="(fac_[^"]+)"', choice.text).group(1)
    refused = browser.submit("/login/factor", {"factor_id": factor_id}, csrf="x" * 32)
    assert refused.status_code == 403
    assert "The form had expired or was altered." in text_of(refused.text)
    assert service.sms.messages == []


def test_a_form_without_a_session_is_an_expired_sign_in(service: PagesService, browser: PageBrowser) -> None:
    page = browser.post("/login/code", {"csrf": "x", "code": "123456"})
    assert page.status_code == 410
    assert "Go back to the application and sign in again." in text_of(page.text)


@pytest.mark.parametrize("query", [
    {"client_id": "nobody", "redirect_uri": CALLBACK},
    {"client_id": "demo", "redirect_uri": "https://evil.example/callback"},
    {"client_id": "demo", "redirect_uri": CALLBACK + "/"},
    {"client_id": "demo", "redirect_uri": CALLBACK.upper()},
    {"client_id": "demo"},
])
def test_an_unregistered_client_or_redirect_uri_gets_an_error_page_never_a_redirect(
        memory_browser: PageBrowser, query: dict[str, str]) -> None:
    page = memory_browser.get("/login?" + urlencode(query))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "This sign-in link is not valid" in text_of(page.text)
    assert "evil.example" not in page.text


def test_a_repeated_parameter_is_refused(memory_browser: PageBrowser) -> None:
    page = memory_browser.get(START + "&redirect_uri=" + "https%3A%2F%2Fevil.example%2F")
    assert page.status_code == 400


def test_pkce_s256_is_required_of_a_public_client(service: PagesService, browser: PageBrowser) -> None:
    spa = {"client_id": "spa", "redirect_uri": "http://127.0.0.1:5173/callback"}
    assert "must send a PKCE code challenge" in text_of(browser.get("/login?" + urlencode(spa)).text)
    plain = browser.get("/login?" + urlencode(spa | {"code_challenge": "x" * 43, "code_challenge_method": "plain"}))
    assert plain.status_code == 400
    verifier = "v" * 50
    ok = browser.get("/login?" + urlencode(spa | {"code_challenge": s256(verifier), "code_challenge_method": "S256"}))
    assert ok.status_code == 200


def test_the_pages_send_their_security_headers_and_a_strict_session_cookie(browser: PageBrowser) -> None:
    page = browser.get(START)
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' https://app.example.com" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("mfa-login=ps_")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=900" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http to 127.0.0.1 in development
    assert "<script>" not in page.text and "style=" not in page.text


def test_outside_loopback_development_the_cookie_is_secure_and_host_only(service: PagesService) -> None:
    browser = PageBrowser(service, base="https://login.example.test")
    try:
        cookie = browser.get(START).headers["set-cookie"]
        assert cookie.startswith("__Host-mfa-login=") and "Secure" in cookie and "SameSite=Lax" in cookie
    finally:
        browser.close()


def test_a_forged_session_cookie_is_no_session(service: PagesService, browser: PageBrowser) -> None:
    browser.get(START)
    value = browser.cookies()["mfa-login"]
    browser.cookies().set("mfa-login", value[:-1] + ("0" if value[-1] != "0" else "1"), domain="127.0.0.1")
    page = browser.post("/login", {"csrf": "anything", "username": "alice", "password": PASSWORD})
    assert page.status_code == 410
