"""Step-up on the hosted pages: the application sends the browser to /login?...&action=<sensitive
action>; Flow.step_up decides with the browser's signed-in token what it needs now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from engine.config import SensitiveActionsTrigger, TriggersSettings
from tests.conftest import LoopThread
from tests.engine.login_harness import totp_now
from tests.engine.pages.harness import CALLBACK, PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.pages.test_login_pages import START, exchange, sign_in_with_app

LOGIN_NEEDS_A_FACTOR = '''"""A second factor at every login (step-ups follow mfa.triggers.sensitive_actions)."""

def rule(user, context):
    if context.action == "login":
        context.multifactor.enable()
'''
STEP_UP = "/login?" + urlencode({"client_id": "demo", "redirect_uri": CALLBACK, "state": "st-7", "action": "transfer"})


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, "memory", rules={"10-login": LOGIN_NEEDS_A_FACTOR},
                                   mfa={"triggers": TriggersSettings(sensitive_actions=SensitiveActionsTrigger(
                                       actions=("transfer",), within_minutes=5))})


def code_of(location: str) -> str:
    assert location.startswith(CALLBACK + "?"), location
    return parse_qs(urlsplit(location).query)["code"][0]


def signed_in_with_app(service: PagesService, browser: PageBrowser) -> dict[str, str]:
    enrolled, done = sign_in_with_app(service, browser)
    assert "mfa-account=pa_" in done.headers["set-cookie"]
    exchange(service, code_of(done.headers["location"]))
    return enrolled


def test_a_fresh_factor_is_enough_and_the_application_gets_its_token_back(service: PagesService,
                                                                           browser: PageBrowser) -> None:
    signed_in_with_app(service, browser)
    service.clock.advance(60)
    back = browser.get(STEP_UP)
    assert back.status_code == 303
    token = exchange(service, code_of(back.headers["location"])).json()
    assert service.decode(token["token"])["amr"] == ["pwd", "otp"]


def test_an_old_factor_asks_for_a_new_one_and_the_new_token_says_when(service: PagesService,
                                                                        browser: PageBrowser) -> None:
    enrolled = signed_in_with_app(service, browser)
    first_login = service.clock.now().timestamp()
    service.clock.advance(600)
    assert browser.get(STEP_UP).headers["location"] == "/login/factor"
    choice = browser.follow()
    assert "To continue with transfer, confirm it is you." in text_of(choice.text)
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    browser.follow()
    done = browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now())})
    claims = service.decode(exchange(service, code_of(done.headers["location"])).json()["token"])
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["auth_time"] == int(first_login)  # the password's, as the API's step-up keeps it
    assert {method["name"]: method["time"] for method in claims["auth_methods"]}["otp"] == \
        int(service.clock.now().timestamp())


def test_without_a_signed_in_browser_the_step_up_starts_with_the_password(service: PagesService,
                                                                           browser: PageBrowser) -> None:
    assert "Password" in text_of(browser.get(STEP_UP).text)
    _, done = sign_in_with_app(service, browser, start=STEP_UP)
    # The login's factor is fresh: the step-up needs nothing more.
    assert service.decode(exchange(service, code_of(done.headers["location"])).json()["token"])["amr"] == \
        ["pwd", "otp"]


def test_login_is_no_sensitive_action(browser: PageBrowser) -> None:
    assert browser.get(START + "&action=login").status_code == 400
    assert browser.get(START + "&action=Transfer%0A").status_code == 400
