"""Checks real answers against the API document (engine/http/openapi.py), as a client reading it would.

`DOCUMENT.check(method, path, response)` raises NonConforming when the answer's status is not one
the document lists for that operation, its content type differs, a required header is missing
(X-Request-Id, Retry-After), or its JSON body does not validate against the documented schema.
Paths the document does not describe (the hosted pages, unknown paths) are not checked.

tests/engine/asgi.py checks every answer of every test that goes through ServiceClient, so the
whole test story is read against the document, not only the answers a test thought of.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import httpx
import jsonschema_rs
import orjson

from engine.http import openapi
from engine.http.routes import ROUTES

_PARAMETER = re.compile(r"\{([^}:]+)\}")


class NonConforming(AssertionError):
    pass


class ApiDocument:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        # In the route table's order, as Starlette matches: /admin/rules/reload before /admin/rules/{rule_id}.
        self._paths = [(re.compile("^" + _PARAMETER.sub("[^/]+", re.escape(template).replace(r"\{", "{")
                                                         .replace(r"\}", "}")) + "$"), template)
                       for template in document["paths"]]
        self._validators: dict[tuple[str, str, str], Any] = {}

    def operation(self, method: str, path: str) -> tuple[str, Mapping[str, Any]] | None:
        for pattern, template in self._paths:
            found = self.document["paths"][template].get(method.lower())
            if found is not None and pattern.match(path):
                return template, found
        return None

    def check(self, method: str, path: str, response: httpx.Response) -> None:
        found = self.operation(method, path)
        if found is None:
            return
        template, operation = found
        where = f"{method} {path} ({template}) answered {response.status_code}"
        if response.is_success and "requestBody" in operation:
            self._check_accepted_body(where, template, method, response.request)
        documented = operation["responses"].get(str(response.status_code))
        if documented is None:
            raise NonConforming(f"{where}: the document lists only {sorted(operation['responses'])}: "
                                f"{response.text[:500]}")
        documented = self._resolve(documented)
        for name, header in documented.get("headers", {}).items():
            if self._resolve(header).get("required") and name not in response.headers:
                raise NonConforming(f"{where}: no {name} header")
        content = documented.get("content")
        if content is None:
            if response.content:
                raise NonConforming(f"{where}: a body where the document has none")
            return
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in content:
            raise NonConforming(f"{where}: {media_type!r}, not {sorted(content)}")
        if media_type != "application/json":
            return
        validator = self._validator(template, method, str(response.status_code), media_type)
        body = orjson.loads(response.content)
        errors = [f"{'/'.join(map(str, error.instance_path))}: {error.message}"
                  for error in validator.iter_errors(body)]
        if errors:
            raise NonConforming(f"{where}: the body does not match the document:\n" + "\n".join(errors[:10])
                                + f"\n{response.text[:1000]}")

    def _check_accepted_body(self, where: str, template: str, method: str, request: httpx.Request) -> None:
        """A body the engine accepted is one the document allows: the document is never stricter
        than the validators it is written from."""
        key = (template, method, "request")
        if key not in self._validators:
            schema = self.document["paths"][template][method.lower()]["requestBody"]["content"]["application/json"]
            self._validators[key] = jsonschema_rs.Draft202012Validator(
                {**schema["schema"], "components": self.document["components"]})
        try:
            body = orjson.loads(request.content)
        except httpx.RequestNotRead:  # a body streamed in chunks by the test: not kept to read again
            return
        errors = [f"{'/'.join(map(str, error.instance_path))}: {error.message}"
                  for error in self._validators[key].iter_errors(body)]
        if errors:
            raise NonConforming(f"{where}, yet the document refuses its body:\n" + "\n".join(errors[:10]))

    def _resolve(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in item:
            _, section, name = item["$ref"].removeprefix("#/").split("/")
            item = self.document["components"][section][name]
        return item

    def _validator(self, template: str, method: str, status: str, media_type: str) -> Any:
        key = (template, method, status)
        if key not in self._validators:
            response = self._resolve(self.document["paths"][template][method.lower()]["responses"][status])
            schema = response["content"][media_type]["schema"]
            # The references point into the document: validate from a root that holds its components.
            self._validators[key] = jsonschema_rs.Draft202012Validator(
                {**schema, "components": self.document["components"]})
        return self._validators[key]


@functools.cache
def document() -> ApiDocument:
    return ApiDocument(openapi.build(ROUTES))
