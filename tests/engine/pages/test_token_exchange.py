"""POST /v1/token: an authorization code of the hosted pages, exchanged once for its login's token.

Codes are issued here with engine.authcodes on the service's own store (the pages issue them the
same way); the exchange goes through the real HTTP stack, on both challenge stores."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.authcodes import AuthorizationCodes, s256
from engine.http.request_log import RequestLog
from tests.conftest import LoopThread
from tests.engine.pages.harness import ALLOW_ALL, CALLBACK, SPA_CALLBACK, PagesService, start_pages_service
from tests.engine.service import auth

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[PagesService]:
    yield from start_pages_service(tmp_path, loop_thread, request.param, rules={"10-allow": ALLOW_ALL})


def login_answer(service: PagesService) -> dict[str, Any]:
    service.create_user()
    answer = service.login().json()
    assert answer["status"] == "authenticated", answer
    return answer  # type: ignore[no-any-return]


def issue(service: PagesService, answer: dict[str, Any], client_id: str = "demo", redirect_uri: str = CALLBACK,
          code_challenge: str | None = None) -> str:
    codes = AuthorizationCodes(service.store, service.clock, service.client.app.state.services.clients)
    return service.loop.call(codes.issue(answer["user_id"], client_id, redirect_uri, code_challenge, answer))


def exchange(service: PagesService, code: str, client_id: str = "demo", redirect_uri: str = CALLBACK,
             **extra: str) -> httpx.Response:
    return service.post("/v1/token", {"code": code, "client_id": client_id, "redirect_uri": redirect_uri, **extra})


def test_the_s256_challenge_is_rfc_7636s_example() -> None:
    assert s256(VERIFIER) == CHALLENGE


def test_a_code_is_exchanged_once_for_the_same_token_body_a_login_gives(service: PagesService) -> None:
    answer = login_answer(service)
    code = issue(service, answer)
    assert len(code) == 22  # 128 bits, URL-safe

    first = exchange(service, code)
    assert first.status_code == 200, first.text
    assert first.json() == answer
    assert service.decode(first.json()["token"])["amr"] == ["pwd"]

    again = exchange(service, code)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_grant"


def test_the_exchanges_request_line_names_the_codes_user(service: PagesService,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.request")
    answer = login_answer(service)
    assert exchange(service, issue(service, answer)).status_code == 200
    request_log: RequestLog = service.client.app.state.request_log
    request_log.drain()
    lines = [line.args for line in caplog.records if line.name == "engine.request"]
    assert [args[6] for args in lines if args[1] == "/v1/token"] == [answer["user_id"]]  # type: ignore[index]


def test_the_token_body_says_how_long_the_token_has_left(service: PagesService) -> None:
    answer = login_answer(service)
    code = issue(service, answer)
    service.clock.advance(20)
    assert exchange(service, code).json()["expires_in"] == answer["expires_in"] - 20


def test_a_code_lives_sixty_seconds(service: PagesService) -> None:
    answer = login_answer(service)
    code = issue(service, answer)
    service.clock.advance(60)
    assert exchange(service, code).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("wrong", [{"client_id": "spa"}, {"client_id": "nobody"},
                                   {"redirect_uri": "https://app.example.com/other"},
                                   {"redirect_uri": CALLBACK + "/"}, {"code_verifier": VERIFIER}])
def test_a_code_for_another_client_or_redirect_uri_is_refused_and_burned(service: PagesService,
                                                                          wrong: dict[str, str]) -> None:
    code = issue(service, login_answer(service))
    refused = exchange(service, code, **wrong)
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_grant", "message": refused.json()["message"]}
    assert exchange(service, code).json()["error"] == "invalid_grant"


def test_pkce_needs_the_verifier_of_the_challenge(service: PagesService) -> None:
    answer = login_answer(service)
    missing = issue(service, answer, code_challenge=CHALLENGE)
    assert exchange(service, missing).json()["error"] == "invalid_grant"
    wrong = issue(service, answer, code_challenge=CHALLENGE)
    assert exchange(service, wrong, code_verifier=VERIFIER[:-1] + "A").json()["error"] == "invalid_grant"
    right = issue(service, answer, code_challenge=CHALLENGE)
    assert exchange(service, right, code_verifier=VERIFIER).status_code == 200


def test_a_public_clients_code_without_a_challenge_is_refused(service: PagesService) -> None:
    answer = login_answer(service)
    code = issue(service, answer, client_id="spa", redirect_uri=SPA_CALLBACK)
    assert exchange(service, code, client_id="spa", redirect_uri=SPA_CALLBACK).json()["error"] == "invalid_grant"
    with_pkce = issue(service, answer, client_id="spa", redirect_uri=SPA_CALLBACK, code_challenge=CHALLENGE)
    assert exchange(service, with_pkce, client_id="spa", redirect_uri=SPA_CALLBACK,
                    code_verifier=VERIFIER).status_code == 200


def test_of_concurrent_exchanges_of_one_code_exactly_one_gets_the_token(service: PagesService) -> None:
    code = issue(service, login_answer(service))
    body = {"code": code, "client_id": "demo", "redirect_uri": CALLBACK}
    statuses = sorted(r.status_code for r in service.client.post_concurrently("/v1/token", [body] * 10, auth()))
    assert statuses == [200] + [401] * 9


def test_the_exchange_needs_the_api_key_and_a_valid_body(service: PagesService) -> None:
    code = issue(service, login_answer(service))
    body = {"code": code, "client_id": "demo", "redirect_uri": CALLBACK}
    assert service.post("/v1/token", body, headers={}).status_code == 401
    assert service.post("/v1/token", {**body, "scope": "x"}).json()["field"] == "scope"
    assert service.post("/v1/token", {"code": code}).json()["field"] == "client_id"
    assert exchange(service, "not-a-code!").json()["error"] == "invalid_grant"
    # The refusals above were not exchanges of this code: it still works.
    assert exchange(service, code).status_code == 200
