"""Admin query and path parameters are parsed strictly (issue 6, item 12).

`GET /admin/users?limit=-1` answered 500, and `int()` is generous: it takes `'\u0661\u0662'` (Arabic-Indic
digits), `'+5'`, `' 5 '` and `'5_000'`. Integers are ASCII digits in a stated range, a bad one is a
400 naming the parameter, and no hostile query or path value reaches a 5xx on any admin route.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from engine.http.routes import ROUTES
from tests.conftest import LoopThread
from tests.engine.login_harness import LoginService, start_service
from tests.engine.service import admin_auth

REPO = Path(__file__).resolve().parents[2]

ADMIN_ROUTES = [(route.path, method) for route in ROUTES if isinstance(route, Route)
                and route.path.startswith("/admin") for method in sorted(route.methods or ()) if method != "HEAD"]
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/admin/users", "POST"): {"username": "query-victim", "password": "correct horse battery staple"},
    ("/admin/users/{user_id}", "PATCH"): {"name": "Changed"},
    ("/admin/users/{user_id}/factors", "POST"): {"type": "sms", "phone_number": "+14155550123"},
    ("/admin/clients/{client_id}", "PUT"): {"name": "Query", "redirect_uris": ["https://query.example.com/cb"]},
}

NOT_STRICT_INTEGERS = [
    "-1", "-0", "abc", "", " ", "\u0661\u0662", "\uff15", "\u00b2", "+5", " 5", "5 ", "5_000", "0x10", "1e3", "5.0",
    "\u0665", "5\n", "5\x00", "99999999999999999999999", "9" * 5000,
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path_factory.mktemp("admin-query"), loop_thread, "memory")


def get_users(service: LoginService, query: str) -> Any:
    return service.client.get("/admin/users?" + query, headers=admin_auth())


@pytest.mark.parametrize("value", NOT_STRICT_INTEGERS, ids=repr)
@pytest.mark.parametrize("name", ["limit", "offset"])
def test_a_limit_or_offset_that_is_not_plain_ascii_digits_is_a_400_naming_it(service: LoginService, name: str,
                                                                              value: str) -> None:
    response = service.client.get("/admin/users", params={name: value}, headers=admin_auth())
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == name


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("offset=1000000001", "offset"),
    ("limit=5&limit=6", "limit"), ("offset=0&offset=1", "offset"), ("limt=5", "limt"), ("limit", "limit"),
])
def test_out_of_range_repeated_or_unknown_parameters_are_a_400_naming_them(service: LoginService, query: str,
                                                                           field: str) -> None:
    response = get_users(service, query)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_limit_and_offset_in_range_page_through_the_users(service: LoginService) -> None:
    for name in ("pager-a", "pager-b", "pager-c"):
        service.create_user(name)
    everyone = [u["username"] for u in get_users(service, "limit=1000").json()["users"]]
    first = get_users(service, "limit=2&offset=0").json()
    assert [u["username"] for u in first["users"]] == everyone[:2]
    assert (first["limit"], first["offset"]) == (2, 0)
    assert [u["username"] for u in get_users(service, "limit=1&offset=1").json()["users"]] == everyone[1:2]
    assert get_users(service, "offset=1000000000").json()["users"] == []
    assert get_users(service, "limit=007").json()["limit"] == 7
    assert get_users(service, "").json()["limit"] == 100


HOSTILE_PATH_VALUES = ["%0A", "usr_x%0A", "%00", "%ED%A0%80", "%FF", "%E2%80%AE", "x" * 5000, "%D9%A1%D9%A2",
                       "-1", "%20", "usr_%F0%9F%98%80", "%25", "%2F", "usr_%0D%0Ax"]
HOSTILE_QUERIES = ["limit=-1", "offset=-1", "limit=abc", "limit=", "offset=", "limit=%D9%A1%D9%A2", "limit=%2B5",
                   "limit=%205", "limit=5_000", "offset=99999999999999999999999", "limit=" + "9" * 5000,
                   "limit=5&limit=6", "limit=%00", "offset=1e3", "%FF=1", "limit", "%00=%00", "x=" + "y" * 5000]


@pytest.mark.parametrize(("path", "method"), ADMIN_ROUTES, ids=[f"{m} {p}" for p, m in ADMIN_ROUTES])
def test_no_hostile_query_or_path_value_makes_an_admin_route_fail(service: LoginService, path: str,
                                                                  method: str) -> None:
    targets = iter(range(10**6))

    def fresh_ids() -> dict[str, str]:
        user = service.create_user(f"target-{method.lower()}-{ADMIN_ROUTES.index((path, method))}-{next(targets)}")
        factor = service.post(f"/admin/users/{user['user_id']}/factors",
                              {"type": "sms", "phone_number": "+14155550123"}, admin_auth()).json()
        service.client.request("PUT", "/admin/clients/query-client", headers=admin_auth(),
                               json=BODIES[("/admin/clients/{client_id}", "PUT")])
        return {"user_id": user["user_id"], "factor_id": factor["id"], "rule_id": "10-deny-blocked-users",
                "rule_path": "a/b", "decision_id": "dec_0123", "key": "region", "key_path": "a/b",
                "browser_id": "rmb_0123", "client_id": "query-client"}

    ids = fresh_ids()
    attempts = [("query", query) for query in HOSTILE_QUERIES]
    if "{" in path:
        attempts += [("path", value) for value in HOSTILE_PATH_VALUES]
    tried = 0
    template = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)  # {rule_path:path} -> {rule_path}
    for where, hostile in attempts:
        if where == "query":
            url = template.format(**ids) + "?" + hostile
        else:
            url = template.format(**{name: hostile for name in ids})
        response = service.client.request(method, url, json=BODIES.get((path, method)), headers=admin_auth())
        tried += 1
        assert response.status_code < 500, (url[:120], response.text)
        if response.status_code >= 400:
            assert "error" in response.json()
        if response.status_code == 204:  # deleted: the next attempt needs a target again
            ids = fresh_ids()
    assert tried >= len(HOSTILE_QUERIES)


@pytest.mark.parametrize("odd", ["usr_x%0A", "%00", "%E2%80%AE", "x" * 5000, "%D9%A1%D9%A2", "%20"])
def test_a_malformed_id_in_the_path_is_not_found(service: LoginService, odd: str) -> None:
    user = service.create_user(f"odd-{abs(hash(odd)) % 10**6}")
    for method, url in [("GET", f"/admin/users/{odd}"), ("GET", f"/admin/users/{odd}/factors"),
                        ("DELETE", f"/admin/users/{user['user_id']}/factors/{odd}"),
                        ("POST", f"/admin/users/{odd}/reset-mfa")]:
        response = service.client.request(method, url, headers=admin_auth())
        assert response.status_code == 404, (method, url[:80], response.text)
        assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("limit", ["-1", "0", "+5", " 5", "5_000", "\u0661\u0662", "1001"])
def test_users_list_with_a_limit_that_is_not_plain_digits_in_range_is_a_usage_error_not_a_traceback(
        tmp_path: Path, limit: str) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "config.yaml").write_text("rules: {dir: rules}\ndirectory: {url: 'sqlite:///users.db'}\n")
    listed = subprocess.run([sys.executable, "-m", "engine", "users", "--config", str(tmp_path / "config.yaml"),
                             "list", "--limit", limit], capture_output=True, text=True, timeout=60, cwd=REPO,
                            env={"PATH": "/usr/bin:/bin"})
    assert listed.returncode == 2
    assert "Traceback" not in listed.stderr
    assert "limit" in listed.stderr
