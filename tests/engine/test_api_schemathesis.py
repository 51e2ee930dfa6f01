"""schemathesis against a live uvicorn, reading the engine's own GET /openapi.json.

Every operation of the document, with the API key, the admin token or the metrics token its
security names, in both of schemathesis's modes: positive (bodies, parameters and paths the
document says are valid) and negative (ones it says are not). The checks: no 5xx; every status,
content type, required header and JSON body as the document says; data the document refuses is
refused (negative_data_rejection); a missing or wrong credential is refused (ignored_auth).

Random ids name nothing, so half of each operation's positive examples use the path ids of a
user, factors, a decision, a rule and a setting made for the test: the handlers then run on
real records with random bodies. Bounded for ./dev test: a fixed seed (derandomize) and
MAX_EXAMPLES per operation and mode, a few hundred requests in all.

Findings that were not engine bugs, and why they are not suppressed but answered here:
- jwks and healthz take no input at all: there is no negative example to make (skipped for that
  mode only: Hypothesis cannot satisfy the strategy, it is not a check that failed).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.app import create_app
from engine.http import openapi
from engine.http.routes import ROUTES
from tests.engine.live_process import serve_in_thread
from tests.engine.service import ADMIN_TOKEN, API_KEY, METRICS_TOKEN, US_IP, admin_auth, auth, make_settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 3
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, ignored_auth]
CREDENTIALS = {"apiKey": API_KEY, "adminToken": ADMIN_TOKEN, "metricsToken": METRICS_TOKEN}
DOCUMENT = openapi.build(ROUTES)
OPERATIONS = [(operation["operationId"], path, method) for path, item in DOCUMENT["paths"].items()
              for method, operation in item.items()]
_usernames = itertools.count()


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(make_settings(tmp_path_factory.mktemp("schemathesis")))
    server, thread, url = serve_in_thread(app)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def api_schema(engine_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{engine_url}/openapi.json")


def real_ids(url: str) -> dict[str, str]:
    """Path ids that name records: a fresh user (with a phone and an authenticator), a decision,
    the first rule, a setting, a client of the admin API. Fresh for each operation: the deletes must not starve the others."""
    with httpx.Client(base_url=url, timeout=10) as client:
        user = client.post("/admin/users", headers=admin_auth(),
                           json={"username": f"probe{next(_usernames)}", "password": "correct horse battery"}).json()
        factor = client.post(f"/admin/users/{user['user_id']}/factors", headers=admin_auth(),
                             json={"type": "sms", "phone_number": "+14155550123"}).json()
        decision = client.post("/v1/evaluate", headers=auth(),
                               json={"user": {"user_id": user["user_id"]}, "context": {"ip": US_IP}}).json()
        rules = client.get("/admin/rules", headers=admin_auth()).json()["rules"]
        client.put("/admin/rules/settings/probe.key", headers=admin_auth(), json={"value": "x"})
        shop = f"probe-client-{next(_usernames)}"
        client.put(f"/admin/clients/{shop}", headers=admin_auth(),
                   json={"name": "Probe", "redirect_uris": ["https://probe.example.com/cb"]})
    return {"client_id": shop, "user_id": user["user_id"], "factor_id": factor["id"], "browser_id": "rb_unknown",
            "decision_id": decision["decision_id"], "rule_id": rules[0]["id"], "key": "probe.key"}


@pytest.mark.parametrize(("operation_id", "path", "method"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_every_operation_answers_as_the_document_says(api_schema: Any, engine_url: str, operation_id: str,
                                                      path: str, method: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]
    definition = DOCUMENT["paths"][path][method]
    if mode is GenerationMode.NEGATIVE and not definition.get("parameters") and "requestBody" not in definition \
            and not definition["security"]:
        pytest.skip("no input to make invalid")
    security = definition["security"]
    headers = {"Authorization": f"Bearer {CREDENTIALS[next(iter(security[0]))]}"} if security else {}
    strategies = [operation.as_strategy(mode)]
    if mode is GenerationMode.POSITIVE and "{" in path:
        ids = real_ids(engine_url)
        strategies.append(operation.as_strategy(mode, path_parameters={
            name: ids[name] for name in openapi.PATH_PARAMETERS if "{" + name + "}" in path}))
    for strategy in strategies:
        @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def answers_as_documented(case: Any) -> None:
            case.call_and_validate(base_url=engine_url, headers=headers, checks=CHECKS)

        answers_as_documented()
