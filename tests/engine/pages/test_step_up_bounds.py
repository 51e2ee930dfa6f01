"""Where a step-up may reuse the browser's signed-in login (red-team finding: `&action=x` on the
application's login link made a login with neither password nor factor, on a shared browser):
an action is a step-up only when something asks for a factor (a rule, a sensitive action's
freshness); one that asks for nothing is a sign-in with the password. And only for the
application signed in to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from engine.config import SensitiveActionsTrigger, TriggersSettings
from tests.conftest import LoopThread
from tests.engine.pages.harness import SPA_CALLBACK, PageBrowser, PagesService, start_pages_service
from tests.engine.pages.test_login_pages import START
from tests.engine.login_harness import totp_now
from tests.engine.pages.test_login_pages import exchange, sign_in_with_app
from tests.engine.pages.test_step_up_pages import LOGIN_NEEDS_A_FACTOR, code_of, signed_in_with_app

APPROVE_NEEDS_A_FACTOR = '''"""Approving asks for a factor of the last five minutes."""

def rule(user, context):
    if context.action == "approve" and not context.authentication.completed_within(minutes=5):
        context.multifactor.enable()
'''


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, "memory", rules={"10-login": LOGIN_NEEDS_A_FACTOR},
                                   mfa={"policy": "required", "triggers": TriggersSettings(
                                       sensitive_actions=SensitiveActionsTrigger(actions=("transfer",),
                                                                                 within_minutes=5))})


def test_an_action_nothing_asks_a_factor_for_is_a_sign_in_not_a_passwordless_login(service: PagesService) -> None:
    browser = PageBrowser(service)
    signed_in_with_app(service, browser)
    service.clock.advance(50 * 60)
    moved = browser.get(START + "&action=x")
    assert (moved.status_code, moved.headers["location"]) == (303, "/login"), "no code without password or factor"
    page = browser.follow()
    assert page.status_code == 200 and 'name="password"' in page.text


def test_an_action_a_rule_asks_a_factor_for_is_a_step_up(tmp_path: Path, loop_thread: LoopThread) -> None:
    """Not listed in sensitive_actions: the rules decide, as POST /v1/step-up lets them. (Had they
    asked for nothing, the password would be asked: the pages cannot tell a rule's freshness check
    that passed from no check at all, and a sign-in is the safe side.)"""
    for service in start_pages_service(tmp_path, loop_thread, "memory", rules={
            "10-login": LOGIN_NEEDS_A_FACTOR, "20-approve": APPROVE_NEEDS_A_FACTOR}):
        browser = PageBrowser(service)
        enrolled = signed_in_with_app(service, browser)
        service.clock.advance(10 * 60)  # the sign-in's factor is older than the rule's five minutes
        assert browser.get(START + "&action=approve").headers["location"] == "/login/factor"
        browser.follow()
        browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
        browser.follow()
        done = browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now())})
        claims = service.decode(exchange(service, code_of(done.headers["location"])).json()["token"])
        assert {method["name"]: method["time"] for method in claims["auth_methods"]}["otp"] == \
            int(service.clock.now().timestamp())
        browser.close()


def test_a_step_up_for_another_application_asks_for_the_password(service: PagesService) -> None:
    """Signed in to `demo`; the public `spa` asks for a step-up: no code for demo's login."""
    browser = PageBrowser(service)
    signed_in_with_app(service, browser)
    other = "/login?" + urlencode({"client_id": "spa", "redirect_uri": SPA_CALLBACK, "state": "s", "action": "transfer",
                                   "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                   "code_challenge_method": "S256"})
    page = browser.get(other)
    assert page.status_code == 200, page.headers.get("location")
    assert 'name="password"' in page.text


def test_a_sign_in_for_an_action_nothing_asks_a_factor_for_ends_at_the_application(service: PagesService) -> None:
    """Not signed in: the password (and the login's own factor) and then back with a code, not
    round again to the password page."""
    browser = PageBrowser(service)
    _, done = sign_in_with_app(service, browser, start=START + "&action=x")
    assert done.status_code == 303 and done.headers["location"].startswith("https://app.example.com/callback?code=")
    browser.close()



DENY_X = '''"""Action x is refused."""

def rule(user, context):
    if context.action == "x":
        context.deny("no_x")
'''


def test_a_sign_in_that_enrolls_a_factor_still_runs_the_actions_rules(tmp_path: Path, loop_thread: LoopThread) -> None:
    """&action=x, the password, a first factor enrolled on the way: the rules for x (here a
    denial) still decide, as after a factor's verify; the enrollment never skips them."""
    for service in start_pages_service(tmp_path, loop_thread, "memory", rules={"10-deny-x": DENY_X},
                                       mfa={"policy": "required", "factors": ["otp", "recovery"]}):
        service.create_user()
        browser = PageBrowser(service)
        browser.get(START + "&action=x")
        assert browser.submit("/login", {"username": "alice", "password": "correct horse battery staple"}) \
            .headers["location"] == "/login/enroll"
        browser.follow()
        secret = re.search(r"[A-Z2-7]{32}", browser.submit("/login/enroll", {"factor": "otp"}).text)
        assert secret is not None
        browser.submit("/login/enroll/confirm", {"code": totp_now(secret.group(0), service.clock.now())})
        done = browser.submit("/login/continue")
        assert done.status_code == 403 and "location" not in done.headers, done.headers.get("location")
        browser.close()
