"""`logging.format: json` on a live server (issue 12): every line it writes is one JSON object,
one line per request carries its request id, and no secret of a login story is in any of them."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.live_process import ServerProcess, start_server, write_config
from tests.engine.login_harness import totp_now
from tests.engine.service import ADMIN_TOKEN, API_KEY, METRICS_TOKEN, SECRET_KEY, SIGNING_KEY

pytestmark = pytest.mark.slow

ALWAYS_MFA = '"""Every login needs a second factor."""\n\n\ndef rule(user, context):\n    context.multifactor.enable()\n'
PASSWORD = "correct horse battery staple"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = write_config(tmp_path, {"10-always-mfa": ALWAYS_MFA}, logging={"format": "json", "level": "INFO"},
                          metrics={"token": METRICS_TOKEN})
    yield from start_server(tmp_path, config)


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    server.stop()
    text = server.log()
    assert text.strip(), "the server wrote nothing"
    lines = [json.loads(line) for line in text.splitlines()]  # fails on any line that is not JSON
    assert all(isinstance(line, dict) for line in lines)
    return lines


def test_every_line_of_a_login_story_is_json_with_one_request_line_per_request(server: ServerProcess) -> None:
    secret = base64.b32encode(secrets.token_bytes(20)).decode()
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
            answers.append(client.request(method, path, headers=headers, json=body))
            return answers[-1]

        user = call("POST", "/admin/users", ADMIN, {"username": "alice", "password": PASSWORD}).json()
        call("POST", f"/admin/users/{user['user_id']}/factors", ADMIN, {"type": "otp", "secret": secret})
        login = call("POST", "/v1/login", {**AUTH, "X-Request-ID": "story-login-1"},
                     {"username": "alice", "password": PASSWORD, "client_id": "app-1",
                      "context": {"ip": "203.0.113.7", "device_id": "d-1"}})
        assert login.status_code == 200 and login.json()["status"] == "mfa_required", login.text
        code = totp_now(secret, datetime.now(UTC))
        done = call("POST", "/v1/mfa/verify", AUTH, {"challenge_id": login.json()["challenge_id"],
                                                     "factor_id": login.json()["factors"][0]["id"], "code": code})
        assert done.status_code == 200, done.text
        wrong = call("POST", "/v1/login", {**AUTH, "X-Request-ID": 'quoted "id" ' + "x" * 200},
                     {"username": "alice", "password": PASSWORD + "!", "client_id": "app-1"})
        unknown = call("GET", "/no/such/path%0Ainjected", {"X-Request-ID": "r" * 129})
        refused = call("GET", "/metrics", {})
        scraped = call("GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert login.headers["x-request-id"] == "story-login-1"  # the client's, round trip
    assert (wrong.status_code, unknown.status_code, refused.status_code, scraped.status_code) == (401, 404, 401, 200)
    for generated in (wrong, unknown):  # not sane (quotes, spaces, too long): replaced
        assert len(generated.headers["x-request-id"]) == 16 and int(generated.headers["x-request-id"], 16) >= 0
    lines = log_lines(server)

    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line), line
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None
    assert any(line["logger"].startswith("uvicorn") for line in lines), "uvicorn's own lines are JSON too"
    assert any(line.get("event") == "serve_config" for line in lines)

    # wait_ready's /healthz polls aside, the story's requests.
    requests = [line for line in lines if line["logger"] == "engine.request" and line["path"] != "/healthz"]
    by_id = {line["request_id"]: line for line in requests}
    assert len(requests) == len(answers) == len(by_id)  # one line per request, each with its own id
    for answer in answers:
        line = by_id[answer.headers["x-request-id"]]
        assert (line["method"], line["status"]) == (answer.request.method, answer.status_code)
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert by_id["story-login-1"]["path"] == "/v1/login" and by_id["story-login-1"]["route"] == "login"
    assert by_id["story-login-1"]["user_id"] == user["user_id"]
    assert by_id[done.headers["x-request-id"]]["user_id"] == user["user_id"]
    assert by_id[wrong.headers["x-request-id"]]["user_id"] is None
    assert by_id[unknown.headers["x-request-id"]]["path"] == "'/no/such/path\\ninjected'"
    # The engine's own events carry the fields of their text and the request they belong to.
    decision = next(line for line in lines if line.get("event") == "login")
    assert (decision["decision"], decision["user_id"], decision["request_id"]) == ("mfa", user["user_id"],
                                                                                  "story-login-1")

    written = "\n".join(json.dumps(line) for line in lines)
    for secret_text in (PASSWORD, secret, code, done.json()["token"], API_KEY, ADMIN_TOKEN, METRICS_TOKEN,
                        SECRET_KEY, SIGNING_KEY):
        assert secret_text not in written
