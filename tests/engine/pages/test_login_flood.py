"""A flood of GET /login (red-team review): the sign-in form stores nothing until the user acts, so
any number of them, from one address or many, leave the challenge store as it was (memory and
Redis), while the same address's real sign-in and everyone else's keep working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine.config import HttpSettings
from engine.stores.memory import MemoryChallengeStore
from tests.conftest import LoopThread
from tests.engine.login_harness import REDIS_URL, totp_now
from tests.engine.pages.harness import PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.pages.test_login_pages import MFA_ALWAYS, START, callback_code, otp_user, sign_in

FLOOD = 300
FLOODER_IP = "203.0.113.66"
NEIGHBOUR_IP = "198.51.100.7"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, request.param, rules={"10-mfa": MFA_ALWAYS},
                                   http=HttpSettings(trusted_proxies=("127.0.0.0/8",)))


def stored_records(service: PagesService) -> int:
    """Every record of the challenge store: the keys of the test's Redis database, or the memory
    store's entries of every kind."""
    if isinstance(service.store, MemoryChallengeStore):
        memory = service.store
        return len(memory._challenges) + len(memory._rates) + len(memory._failures) + len(memory._totp_steps)
    with redis.Redis.from_url(REDIS_URL) as client:
        return int(client.dbsize())


def browser_at(service: PagesService, ip: str) -> PageBrowser:
    return PageBrowser(service, headers={"x-forwarded-for": ip})


def signs_in_with_the_app(service: PagesService, browser: PageBrowser, enrolled: dict[str, str]) -> None:
    assert sign_in(browser).headers["location"] == "/login/factor"
    browser.follow()
    browser.submit("/login/factor", {"factor_id": enrolled["factor_id"]})
    browser.follow()
    back = callback_code(browser.submit("/login/code", {"code": totp_now(enrolled["secret"], service.clock.now())}))
    assert back["state"] == ["st-42"]


def test_a_flood_of_sign_in_forms_from_one_address_leaves_the_store_as_it_was(service: PagesService) -> None:
    enrolled = otp_user(service)
    before = stored_records(service)
    flooder = browser_at(service, FLOODER_IP)
    for _ in range(FLOOD):
        flooder.cookies().clear()  # a script keeps no cookies: each GET starts a sign-in of its own
        page = flooder.get(START)
        assert page.status_code == 200 and 'name="password"' in page.text
    assert stored_records(service) == before
    flooder.close()

    same_address, neighbour = browser_at(service, FLOODER_IP), browser_at(service, NEIGHBOUR_IP)
    signs_in_with_the_app(service, same_address, enrolled)
    service.clock.advance(30)  # the next TOTP code from a later time step (replay)
    signs_in_with_the_app(service, neighbour, enrolled)
    same_address.close()
    neighbour.close()


def test_wrong_passwords_store_nothing_and_the_first_passed_step_stores_one_session(service: PagesService) -> None:
    otp_user(service)
    browser = browser_at(service, FLOODER_IP)
    browser.get(START)
    before = stored_records(service)
    for _ in range(3):
        wrong = browser.submit("/login", {"username": "alice", "password": "not the password"})
        assert wrong.status_code == 401
    # The password throttle counts the failures (its own bounded counters); no page session is stored.
    counted = stored_records(service)
    assert sign_in(browser).headers["location"] == "/login/factor"
    assert "Authenticator app" in text_of(browser.follow().text)
    assert browser.cookies()["mfa-login"].startswith("ps_") and not browser.cookies()["mfa-login"].startswith(
        "ps_offer.")
    assert stored_records(service) > counted >= before
    browser.close()


def test_an_offered_sign_in_expires_with_the_session_lifetime(service: PagesService) -> None:
    otp_user(service)
    browser = browser_at(service, FLOODER_IP)
    browser.get(START)
    assert browser.cookies()["mfa-login"].startswith("ps_offer.")
    service.clock.advance(901)
    expired = browser.submit("/login", {"username": "alice", "password": "correct horse battery staple"})
    assert expired.status_code == 410
    browser.close()


def test_an_offer_whose_data_was_changed_is_no_session(service: PagesService) -> None:
    browser = browser_at(service, FLOODER_IP)
    browser.get(START)
    _, payload, mac = browser.cookies()["mfa-login"].split(".")
    forged = "ps_offer." + payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    browser.cookies().set("mfa-login", forged, domain="127.0.0.1")
    page = browser.submit("/login", {"username": "alice", "password": "correct horse battery staple"})
    assert page.status_code == 410
    browser.close()
