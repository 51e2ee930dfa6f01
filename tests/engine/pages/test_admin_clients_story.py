"""A client added through the admin API serves the hosted pages like one of config.yaml, and stops
the moment it is deleted: /login refuses it (an error page, never a redirect), a login under way
gets no code, and an outstanding code fails at /v1/token as an unknown client's does, also when the
client was deleted through another instance sharing the directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from engine.app import build_store, create_app
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.pages.harness import ALLOW_ALL, PageBrowser, PagesService, start_pages_service, text_of
from tests.engine.service import admin_auth

SHOP_CALLBACK = "https://shop.example.com/cb"
START = "/login?" + urlencode({"client_id": "shop", "redirect_uri": SHOP_CALLBACK, "state": "st-7"})
PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, request.param, rules={"10-allow": ALLOW_ALL})


def add_shop(client: ServiceClient) -> None:
    answer = client.request("PUT", "/admin/clients/shop", headers=admin_auth(),
                            json={"name": "Shop", "redirect_uris": [SHOP_CALLBACK]})
    assert answer.status_code == 201, answer.text


def delete_shop(client: ServiceClient) -> None:
    assert client.request("DELETE", "/admin/clients/shop", headers=admin_auth()).status_code == 204


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(SHOP_CALLBACK + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-7"]
    return query["code"][0]


def sign_in(browser: PageBrowser) -> httpx.Response:
    page = browser.get(START)
    assert page.status_code == 200, page.text
    assert "Shop" in text_of(page.text)
    return browser.submit("/login", {"username": "alice", "password": PASSWORD})


def exchange(service: PagesService, code: str, client_id: str = "shop") -> httpx.Response:
    return service.post("/v1/token", {"code": code, "client_id": client_id, "redirect_uri": SHOP_CALLBACK})


def assert_refused_page(response: httpx.Response) -> None:
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_a_client_added_through_the_api_signs_in_and_once_deleted_is_refused_everywhere(
        service: PagesService, browser: PageBrowser) -> None:
    service.create_user()
    assert_refused_page(browser.get(START))  # not registered yet
    add_shop(service.client)

    token = exchange(service, code_from(sign_in(browser)))
    assert token.status_code == 200, token.text
    assert service.decode(token.json()["token"])["sub"] == token.json()["user_id"]
    outstanding = code_from(sign_in(browser))

    delete_shop(service.client)

    assert_refused_page(browser.get(START))
    refused = exchange(service, outstanding)
    assert refused.status_code == 401
    unknown = exchange(service, "A" * 22, client_id="nobody")
    assert refused.json() == unknown.json() and refused.json()["error"] == "invalid_grant"


def test_a_login_under_way_when_its_client_is_deleted_gets_an_error_page_not_a_code(
        service: PagesService, browser: PageBrowser) -> None:
    service.create_user()
    add_shop(service.client)
    assert browser.get(START).status_code == 200

    delete_shop(service.client)

    assert_refused_page(browser.submit("/login", {"username": "alice", "password": PASSWORD}))


def test_a_redirect_uri_removed_by_a_put_stops_the_logins_and_codes_that_used_it(
        service: PagesService, browser: PageBrowser) -> None:
    service.create_user()
    add_shop(service.client)
    outstanding = code_from(sign_in(browser))

    moved = service.client.request("PUT", "/admin/clients/shop", headers=admin_auth(),
                                   json={"name": "Shop", "redirect_uris": ["https://shop.example.com/new"]})
    assert moved.status_code == 200

    assert_refused_page(browser.get(START))
    assert exchange(service, outstanding).json()["error"] == "invalid_grant"


def test_a_client_deleted_through_another_instance_stops_at_this_ones_next_login_and_exchange(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    for service in start_pages_service(tmp_path, loop_thread, "memory", rules={"10-allow": ALLOW_ALL}):
        other = create_app(service.settings, clock=service.clock, store=build_store(service.settings))
        with ServiceClient(other, loop_thread) as instance_b:  # the same SQLite directory, its own store
            service.create_user()
            add_shop(instance_b)
            browser = PageBrowser(service)
            try:
                outstanding = code_from(sign_in(browser))  # served by this instance, A

                delete_shop(instance_b)

                assert_refused_page(browser.get(START))
                assert exchange(service, outstanding).json()["error"] == "invalid_grant"
            finally:
                browser.close()
