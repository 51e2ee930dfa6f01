"""GET /openapi.json and GET /docs: the API document, written from the route table and the declarations.

Every answer of the other tests is also read against this document (tests/engine/asgi.py,
tests/engine/api_conformance.py); schemathesis explores it live (test_api_schemathesis.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import Response
from starlette.routing import Route

from engine.app import create_app
from engine.errors import EngineError
from engine.http import api_page, audit_admin, openapi, schema
from engine.http.json_schema import SchemaWriter, UndescribedCheck
from engine.http.schema_checks import Obj
from engine.http.routes import ROUTES
from tests.conftest import LoopThread
from tests.engine.api_conformance import ApiDocument, NonConforming
from tests.engine.asgi import ServiceClient, serve
from tests.engine.service import admin_auth, make_settings


@pytest.fixture
def client(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with serve(create_app(make_settings(tmp_path)), loop_thread) as client:
        yield client


@pytest.fixture
def document(client: ServiceClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    return answer.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): operation for path, item in document["paths"].items()
            for method, operation in item.items()}


def test_the_document_is_openapi_3_1_and_describes_every_api_route_of_the_table(
        client: ServiceClient, document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    expected = {(method, route.path) for route in client.app.routes
                if isinstance(route, Route) and route.path.startswith(("/v1/", "/admin/", "/.well-known/"))
                and route.name not in openapi.NOT_OPERATIONS for method in route.methods or () if method != "HEAD"}
    described = set(operations(document))
    assert expected <= described
    assert {path for _, path in described - expected} == {"/healthz", "/metrics"}
    assert ("POST", "/v1/token") in described
    assert not any(path.startswith("/login") for _, path in described)  # the hosted pages are HTML
    assert len({operation["operationId"] for operation in operations(document).values()}) == len(described)


def test_request_bodies_are_the_schemas_that_validate_them(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, body in openapi.BODIES.items():
        if not isinstance(body, Obj):
            continue
        operation = next(operation for operation in operations(document).values() if operation["operationId"] == name)
        reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        written = schemas[reference.rsplit("/", 1)[-1]]
        assert list(written["properties"]) == list(body.fields), name
        assert written.get("required", []) == sorted(body.required), name
        assert written["additionalProperties"] is False
    token = schemas["TokenRequest"]
    assert token["required"] == ["client_id", "code", "redirect_uri"]
    assert token["properties"]["client_id"]["pattern"] == "^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127})$"
    # Optional fields are nullable, as the validator reads null as absent.
    assert token["properties"]["code_verifier"]["type"] == ["string", "null"]
    assert token["properties"]["code_verifier"]["maxLength"] == 128


def test_a_declaration_is_written_field_by_field_with_its_bounds() -> None:
    declared = schema.obj({"code": schema.text(32), "tries": schema.count, "at": schema.timestamp,
                           "tags": schema.list_of(schema.choice("a", "b"), 3)}, frozenset({"code"}))
    assert SchemaWriter().write(declared) == {
        "type": "object", "additionalProperties": False, "required": ["code"], "properties": {
            "code": {"type": "string", "minLength": 1, "maxLength": 32,
                     "description": "identifier: must be printable, without spaces at either end, line breaks, "
                                    "control or invisible characters"},
            "tries": {"type": ["integer", "null"], "minimum": 0, "maximum": 10**12},
            "at": {"type": ["string", "null"], "format": "date-time", "maxLength": 64,
                   "description": "ISO 8601 date-time with a time zone, from 1900 to 9000 (UTC)"},
            "tags": {"type": ["array", "null"], "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 3}}}


def test_security_is_the_api_key_for_v1_the_admin_token_for_admin_and_none_for_keys_and_health(
        document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {name: (scheme["type"], scheme["scheme"]) for name, scheme in schemes.items()} == {
        "apiKey": ("http", "bearer"), "adminToken": ("http", "bearer"), "metricsToken": ("http", "bearer")}
    for (_, path), operation in operations(document).items():
        expected: list[dict[str, list[str]]] = ([{"apiKey": []}] if path.startswith("/v1/") else [{"adminToken": []}] if path.startswith("/admin/")
                    else [{"metricsToken": []}] if path == "/metrics" else [])
        assert operation["security"] == expected, path
        assert ("401" in operation["responses"]) == bool(expected), path


def test_errors_share_one_body_with_the_codes_of_each_status(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    assert {"field", "retry_after", "reason", "errors"} <= set(error["properties"])
    responses = document["components"]["responses"]
    assert responses["Error400"]["content"]["application/json"]["schema"]["allOf"][1] == {
        "properties": {"error": {"enum": ["invalid_request", "invalid_json"]}}}
    assert "too_many_attempts" in responses["Error429"]["description"]
    assert responses["Error503"]["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    # 405 answers a method no operation has; 500 is no answer the engine means to give.
    every_code = {error.code for error in _tree(EngineError) if error.status not in (405, 500)}
    assert every_code == {code for status in responses for code in openapi.error_codes(int(status[5:]))}
    for (_, path), operation in operations(document).items():
        if "requestBody" in operation:
            assert {"400", "408", "413", "415"} <= set(operation["responses"]), path
        assert "503" in operation["responses"], path


def _tree(root: type[EngineError]) -> Iterator[type[EngineError]]:
    yield root
    for child in root.__subclasses__():
        yield from _tree(child)


def test_a_named_check_that_says_nothing_of_its_json_stops_the_document() -> None:
    def shoe_size(value: Any, path: str) -> int:
        return int(value)

    with pytest.raises(UndescribedCheck, match="shoe_size"):
        SchemaWriter().write(schema.obj({"shoe_size": shoe_size}))


def test_a_route_without_a_declared_answer_stops_the_document() -> None:
    async def endpoint(request: Any) -> Response:
        return Response()

    with pytest.raises(openapi.UndocumentedRoute, match="v1_new"):
        openapi.build([*ROUTES, Route("/v1/new", endpoint, methods=["POST"], name="v1_new")])


def test_the_conformance_check_refuses_an_answer_the_document_does_not_list(document: dict[str, Any]) -> None:
    checker = ApiDocument(document)
    request = httpx.Request("GET", "http://engine.test/admin/users")
    with pytest.raises(NonConforming, match="lists only"):
        checker.check("GET", "/admin/users", httpx.Response(418, json={"error": "teapot"}, request=request))
    with pytest.raises(NonConforming, match="logins_count"):
        checker.check("GET", "/admin/users", httpx.Response(200, json={"users": [{"logins_count": True}], "limit": 1,
                                                                         "offset": 0},
                                                          headers={"X-Request-Id": "r"}, request=request))


def test_the_docs_page_renders_every_operation_and_loads_nothing(client: ServiceClient,
                                                                  document: dict[str, Any]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; ") and "unsafe-inline" not in policy
    style = re.search(r"<style>(.*?)</style>", page.text, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # the one inline style, allowed by its hash alone
    assert not re.search(r"<(script|link|img|iframe)\b", page.text)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page.text)
    for operation in operations(document).values():
        assert f"id='op-{operation['operationId']}'" in page.text
    assert "Bearer &lt;An application&#x27;s API key (`api.keys`)&gt;" in page.text


def test_the_docs_page_escapes_what_the_document_says() -> None:
    document = openapi.build(ROUTES)
    document["info"]["description"] = "<script>alert(1)</script>"
    document["paths"]["/healthz"]["get"]["summary"] = "<img src=x onerror=alert(1)>"
    page = api_page.render(document)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_setting_body_is_refused_as_before_with_the_field_named(client: ServiceClient) -> None:
    put = "/admin/rules/settings/plan.limit"
    for body, field in [({"value": 1, "colour": "red"}, "colour"), ({"secret": False}, "value"),
                        ({"value": "x", "secret": "yes"}, "secret")]:
        answer = client.request("PUT", put, headers=admin_auth(), json=body)
        assert (answer.status_code, answer.json()["error"], answer.json()["field"]) == (400, "invalid_request", field)
    answer = client.request("PUT", put, headers=admin_auth(), json=[1])
    assert (answer.status_code, answer.json()["error"], "field" in answer.json()) == (400, "invalid_request", False)
    assert client.request("PUT", put, headers=admin_auth(), json={"value": None}).status_code == 200


def test_query_parameters_are_the_ones_the_handlers_read(document: dict[str, Any]) -> None:
    listed = operations(document)
    users = {parameter["name"]: parameter["schema"] for parameter in listed["GET", "/admin/users"]["parameters"]}
    assert users == {"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                     "offset": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0}}
    audit = {parameter["name"]: parameter["schema"] for parameter in listed["GET", "/admin/audit"]["parameters"]}
    assert tuple(audit) == audit_admin.PARAMETERS
    assert "login.failed" in audit["type"]["enum"]
