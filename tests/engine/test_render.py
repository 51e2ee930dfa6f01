"""engine.http.render: JSON answers, with the headers Starlette's Response writes for them."""

from __future__ import annotations

import orjson
import pytest
from starlette.responses import Response

from engine.http.render import json_response

BODY = {"decision": "allow", "text": "é\u2028", "numbers": [1, 0.1, 2**53], "none": None}


def starlettes(status: int, headers: dict[str, str] | None = None) -> Response:
    """What json_response answered when it was a plain Response."""
    return Response(orjson.dumps(BODY), status, headers=dict(headers or {}) | {"cache-control": "no-store"},
                    media_type="application/json")


@pytest.mark.parametrize("status", [100, 200, 201, 204, 304, 400, 401, 404, 413, 429, 500, 503])
@pytest.mark.parametrize("headers", [None, {}, {"Retry-After": "3"}, {"Cache-Control": "private", "X-A": "b"}])
def test_json_answers_carry_the_headers_and_body_a_plain_response_would(status: int,
                                                                        headers: dict[str, str] | None) -> None:
    answer, expected = json_response(BODY, status, headers), starlettes(status, headers)

    assert (answer.status_code, answer.body, answer.raw_headers) == (expected.status_code, expected.body,
                                                                      expected.raw_headers)
    assert answer.media_type == "application/json"


def test_headers_can_be_added_to_an_answer() -> None:
    answer = json_response(BODY, 503)
    answer.headers["Connection"] = "close"

    assert answer.raw_headers[-1] == (b"connection", b"close")
