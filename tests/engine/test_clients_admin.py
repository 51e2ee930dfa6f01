"""The admin API of the hosted pages' clients: /admin/clients... behind the admin token, over the real
HTTP stack (every answer checked against the API document by tests/engine/asgi.py). config.yaml's
clients (harness: demo, spa) are listed and read, never changed here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LoopThread
from tests.engine.pages.harness import CALLBACK, SPA_CALLBACK, PagesService, start_pages_service
from tests.engine.service import admin_auth, auth

SHOP = {"name": "Shop", "redirect_uris": ["https://shop.example.com/cb"]}


@pytest.fixture
def service(tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, "memory")


def put(service: PagesService, client_id: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return service.client.request("PUT", f"/admin/clients/{client_id}", headers=admin_auth() if headers is None else headers,
                                  json=body)


def get(service: PagesService, path: str = "") -> httpx.Response:
    return service.client.get(f"/admin/clients{path}", headers=admin_auth())


def delete(service: PagesService, client_id: str) -> httpx.Response:
    return service.client.request("DELETE", f"/admin/clients/{client_id}", headers=admin_auth())


def audit_of(service: PagesService, type_: str) -> list[dict[str, Any]]:
    events = service.client.get("/admin/audit", params={"type": type_}, headers=admin_auth()).json()["events"]
    return events  # type: ignore[no-any-return]


@pytest.mark.parametrize("headers", [{}, admin_auth("wrong-token-0123456789abcdef"), auth()])
def test_every_client_route_needs_the_admin_token(service: PagesService, headers: dict[str, str]) -> None:
    assert service.client.get("/admin/clients", headers=headers).status_code == 401
    assert service.client.get("/admin/clients/demo", headers=headers).status_code == 401
    assert put(service, "shop", SHOP, headers).status_code == 401
    assert service.client.request("DELETE", "/admin/clients/demo", headers=headers).status_code == 401
    assert get(service, "/shop").status_code == 404  # nothing was created


def test_the_list_has_configs_clients_then_the_admin_apis(service: PagesService) -> None:
    assert put(service, "shop", SHOP).status_code == 201

    assert get(service).json() == {"clients": [
        {"client_id": "demo", "name": "Demo App", "redirect_uris": [CALLBACK, "https://app.example.com/other"],
         "public": False, "source": "config"},
        {"client_id": "spa", "name": "Single-page App", "redirect_uris": [SPA_CALLBACK], "public": True,
         "source": "config"},
        {"client_id": "shop", "name": "Shop", "redirect_uris": ["https://shop.example.com/cb"], "public": False,
         "source": "admin"},
    ]}
    assert get(service, "/demo").json()["source"] == "config"


def test_a_put_creates_with_201_then_replaces_with_200_and_each_is_audited(service: PagesService) -> None:
    created = put(service, "shop", SHOP)
    assert created.status_code == 201
    assert created.json() == {**SHOP, "client_id": "shop", "public": False, "source": "admin"}

    replaced = put(service, "shop", {"name": "Shop SPA", "redirect_uris": ["http://localhost:3000/cb"],
                                     "public": True})
    assert replaced.status_code == 200
    assert get(service, "/shop").json() == {"client_id": "shop", "name": "Shop SPA",
                                            "redirect_uris": ["http://localhost:3000/cb"], "public": True,
                                            "source": "admin"}
    [made] = audit_of(service, "client.created")
    [changed] = audit_of(service, "client.updated")
    assert made["actor"] == "admin" and made["user_id"] is None
    assert made["details"] == {"client_id": "shop", "name": "Shop", "redirect_uris": ["https://shop.example.com/cb"],
                               "public": False}
    assert changed["details"] == {"client_id": "shop", "name": "Shop SPA",
                                  "redirect_uris": ["http://localhost:3000/cb"], "public": True}


def test_a_delete_answers_204_then_404_and_is_audited_once(service: PagesService) -> None:
    put(service, "shop", SHOP)

    assert delete(service, "shop").status_code == 204
    gone = delete(service, "shop")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert get(service, "/shop").status_code == 404
    assert [event["details"] for event in audit_of(service, "client.deleted")] == [{"client_id": "shop"}]
    assert all(client["client_id"] != "shop" for client in get(service).json()["clients"])


@pytest.mark.parametrize("client_id", ["nobody", "-bad", "a" * 129])
def test_an_unknown_or_impossible_client_id_is_a_404(service: PagesService, client_id: str) -> None:
    for answer in (get(service, f"/{client_id}"), delete(service, client_id)):
        assert answer.status_code == 404 and answer.json()["error"] == "not_found"


@pytest.mark.parametrize("client_id", ["demo", "spa"])
def test_a_client_of_config_yaml_is_not_changed_or_deleted_through_the_api(service: PagesService,
                                                                           client_id: str) -> None:
    before = get(service, f"/{client_id}").json()
    for answer in (put(service, client_id, SHOP), delete(service, client_id)):
        assert answer.status_code == 409
        assert answer.json()["error"] == "client_in_config" and answer.json()["field"] == "client_id"
    assert get(service, f"/{client_id}").json() == before
    assert audit_of(service, "client.updated") == audit_of(service, "client.deleted") == []


@pytest.mark.parametrize(("body", "field"), [
    ({"redirect_uris": ["https://shop.example.com/cb"]}, "name"),
    ({"name": "Shop"}, "redirect_uris"),
    ({**SHOP, "redirect_uris": []}, "redirect_uris"),
    ({**SHOP, "redirect_uris": "https://shop.example.com/cb"}, "redirect_uris"),
    ({**SHOP, "redirect_uris": [f"https://shop.example.com/{n}" for n in range(17)]}, "redirect_uris"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com/cb", "http://shop.example.com/cb"]}, "redirect_uris[1]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com/cb#x"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://u:p@shop.example.com/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["javascript:alert(1)"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com/" + "a" * 2048]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": [7]}, "redirect_uris[0]"),
    # Each of these went into the pages' Location or Content-Security-Policy header as it was:
    # a non-Latin-1 host made every GET /login of the client a 500, ; and , split the policy,
    # a backslash is a slash to browsers (red-team findings).
    ({**SHOP, "redirect_uris": ["https://例え.jp/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com/caf\u00e9"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://evil.example\\.shop.example.com/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com;script-src/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com,x/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com:abc/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["https://shop.example.com:99999/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "redirect_uris": ["HTTPS://shop.example.com/cb"]}, "redirect_uris[0]"),
    ({**SHOP, "name": ""}, "name"),
    ({**SHOP, "name": "a" * 257}, "name"),
    ({**SHOP, "name": "Shop\u202e"}, "name"),
    ({**SHOP, "public": "yes"}, "public"),
    ({**SHOP, "secret": "x"}, "secret"),
])
def test_a_bad_body_is_a_400_naming_the_field_and_creates_nothing(service: PagesService, body: dict[str, Any],
                                                                  field: str) -> None:
    answer = put(service, "shop", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request" and answer.json()["field"] == field
    assert get(service, "/shop").status_code == 404


@pytest.mark.parametrize("client_id", ["-bad", "sh%20op", "a" * 129])
def test_a_put_to_an_id_no_client_can_have_is_a_400_naming_client_id(service: PagesService, client_id: str) -> None:
    answer = put(service, client_id, SHOP)
    assert answer.status_code == 400 and answer.json()["field"] == "client_id"


def test_repeated_redirect_uris_are_kept_once(service: PagesService) -> None:
    answer = put(service, "shop", {**SHOP, "redirect_uris": ["https://shop.example.com/cb"] * 2})
    assert answer.json()["redirect_uris"] == ["https://shop.example.com/cb"]


def test_a_delete_of_a_config_id_removes_a_row_the_api_added_before_config_took_the_id(
        service: PagesService) -> None:
    """Config shadows the row, which nothing lists or reads; left there, it is in force again, with
    its old redirect URIs, the day the id leaves config.yaml (red-team finding)."""
    directory = service.client.app.state.services.directory
    service.loop.call(directory.put_client("demo", "Old Demo", ["https://old.example.com/cb"], False,
                                           service.clock.now()))

    assert delete(service, "demo").status_code == 204
    assert service.loop.call(directory.get_client("demo")) is None
    assert [event["details"] for event in audit_of(service, "client.deleted")] == [{"client_id": "demo"}]
    again = delete(service, "demo")
    assert again.status_code == 409 and again.json()["error"] == "client_in_config"
    assert get(service, "/demo").json()["source"] == "config"
