"""Self-service at /account/security: a signed-in browser sees its factors and changes them, each
change after a step-up for `account_security`, a sensitive action whether or not
mfa.triggers.sensitive_actions lists it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import SensitiveActionsTrigger, TriggersSettings
from engine.pages import i18n
from tests.conftest import LoopThread
from tests.engine.login_harness import totp_now
from tests.engine.pages.harness import PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.pages.test_login_pages import sign_in_with_app
from tests.engine.pages.test_step_up_pages import LOGIN_NEEDS_A_FACTOR
from tests.engine.service import admin_auth

GUARDED = TriggersSettings(sensitive_actions=SensitiveActionsTrigger(actions=("account_security",),
                                                                     within_minutes=5))


def service_with(tmp_path: Path, loop: LoopThread, triggers: TriggersSettings) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop, "memory", rules={"10-login": LOGIN_NEEDS_A_FACTOR},
                                   mfa={"triggers": triggers})


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from service_with(tmp_path, loop_thread, GUARDED)


def signed_in(service: PagesService, browser: PageBrowser) -> dict[str, str]:
    enrolled, done = sign_in_with_app(service, browser)
    assert done.status_code == 303
    return enrolled


def test_without_a_signed_in_browser_the_page_says_to_sign_in_first(browser: PageBrowser) -> None:
    page = browser.get("/account/security")
    assert page.status_code == 401
    assert "Sign in through your application first" in text_of(page.text)


def test_a_phone_is_added_after_a_fresh_factor_and_the_page_lists_it(service: PagesService,
                                                                     browser: PageBrowser) -> None:
    signed_in(service, browser)
    page = browser.get("/account/security")
    assert "Authenticator app" in text_of(page.text) and "Recovery codes left: 10" in text_of(page.text)
    # The login's factor is fresh (within 5 minutes): the change goes straight on.
    browser.submit("/account/security", {"op": "add_sms", "phone": "+1 415 555 0123"})
    assert browser.last is not None and browser.last.headers["location"] == "/login/enroll/code"
    browser.follow()
    done = browser.submit("/login/enroll/confirm", {"code": service.sms.last_code_for("+14155550123")})
    assert done.headers["location"] == "/account/security"
    assert "Text message to +1 *** *** 0123" in text_of(browser.follow().text)


def test_an_old_factor_is_asked_again_before_new_recovery_codes(service: PagesService,
                                                                browser: PageBrowser) -> None:
    enrolled = signed_in(service, browser)
    service.clock.advance(600)
    browser.get("/account/security")
    asked = browser.submit("/account/security", {"op": "recovery_codes"})
    assert asked.headers["location"] == "/login/factor"
    browser.follow()
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    browser.follow()
    page = browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now())})
    codes = re.findall(r"<li><code>([^<]+)</code></li>", page.text)
    assert len(codes) == 10 and enrolled["recovery_codes"][0] not in codes
    assert 'href="/account/security"' in page.text


def test_a_factor_is_removed_after_a_fresh_factor(service: PagesService, browser: PageBrowser) -> None:
    enrolled = signed_in(service, browser)
    page = browser.get("/account/security")
    assert enrolled["factor_id"] in page.text
    browser.submit("/account/security", {"op": "remove", "factor_id": enrolled["factor_id"]})
    assert "No second factor yet." in text_of(browser.follow().text)
    # The audit trail says the user removed it, not an admin.
    events = service.client.get("/admin/audit", params={"type": "factor.removed"}, headers=admin_auth()).json()
    assert [(event["actor"], event["details"]["factor_id"]) for event in events["events"]] == [
        ("user", enrolled["factor_id"])]


def test_without_any_trigger_configured_each_change_still_needs_a_fresh_factor(tmp_path: Path,
                                                                              loop_thread: LoopThread) -> None:
    """account_security is always sensitive (engine/triggers.py ALWAYS_SENSITIVE), with the default
    five minutes: the page offers its changes with no configuration, and none is made on the
    strength of an old factor, whatever the rules say."""
    for service in service_with(tmp_path, loop_thread, TriggersSettings()):
        browser = PageBrowser(service)
        enrolled = signed_in(service, browser)
        service.clock.advance(600)
        page = browser.get("/account/security")
        assert 'value="remove"' in page.text and 'name="csrf"' in page.text
        asked = browser.submit("/account/security", {"op": "remove", "factor_id": enrolled["factor_id"]})
        assert asked.headers["location"] == "/login/factor"
        assert enrolled["factor_id"] in browser.get("/account/security").text  # nothing removed yet
        browser.close()


def test_removing_a_factor_that_is_gone_is_refused_as_such_not_as_a_missing_sign_in(service: PagesService,
                                                                                    browser: PageBrowser) -> None:
    """A stale tab or an altered factor_id: 400 "could not be made", not 403 "needs a second factor"."""
    signed_in(service, browser)
    browser.get("/account/security")
    browser.submit("/account/security", {"op": "remove", "factor_id": "fac_gone"})
    page = browser.last
    assert page is not None and page.status_code == 400, page
    assert i18n.EN["account_refused"] in text_of(page.text)
