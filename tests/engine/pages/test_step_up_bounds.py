"""Where a step-up may reuse the browser's signed-in login (red-team finding: `&action=x` on the
application's login link made a login with neither password nor factor, on a shared browser):
only for an action the operator declared sensitive, and only for the application signed in to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from engine.config import SensitiveActionsTrigger, TriggersSettings
from tests.conftest import LoopThread
from tests.engine.pages.harness import SPA_CALLBACK, PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.pages.test_login_pages import START
from tests.engine.pages.test_step_up_pages import LOGIN_NEEDS_A_FACTOR, signed_in_with_app


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, "memory", rules={"10-login": LOGIN_NEEDS_A_FACTOR},
                                   mfa={"policy": "required", "triggers": TriggersSettings(
                                       sensitive_actions=SensitiveActionsTrigger(actions=("transfer",),
                                                                                 within_minutes=5))})


def test_an_action_no_one_declared_sensitive_is_refused_not_a_passwordless_login(service: PagesService) -> None:
    browser = PageBrowser(service)
    signed_in_with_app(service, browser)
    service.clock.advance(50 * 60)
    page = browser.get(START + "&action=x")
    assert page.status_code == 400, page.headers.get("location")
    assert "not one of this service's sensitive actions" in text_of(page.text)


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
