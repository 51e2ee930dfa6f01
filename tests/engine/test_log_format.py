"""The JSON log formatter, request ids and the request log line (engine/log_format.py, engine/http/request_log.py)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from engine.http.request_log import RequestLog, printable_path, request_id_from
from engine.log_format import JsonFormatter, template_fields
from engine.request_context import CURRENT, RequestInfo
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.login_harness import start_service
from tests.engine.service import auth, evaluate_body, make_settings


def record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("engine.flow", logging.INFO, __file__, 1, message, args, exc_info)  # type: ignore[arg-type]


def test_a_record_is_one_json_object_with_the_fields_of_its_template() -> None:
    line = JsonFormatter().format(record("login decision=%s user_id=%s rate=%.1f%% note %s", "mfa", "u-1", 2.5,
                                         "free"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "login decision=mfa user_id=u-1 rate=2.5% note free"
    assert (entry["event"], entry["decision"], entry["user_id"], entry["rate"]) == ("login", "mfa", "u-1", 2.5)
    assert (entry["level"], entry["logger"]) == ("INFO", "engine.flow")
    assert "free" not in set(entry) - {"message"}  # an argument without key= is in the message only


def test_fields_never_replace_the_line_s_own_keys_and_odd_templates_keep_the_message_only() -> None:
    entry = json.loads(JsonFormatter().format(record("x level=%s message=%s logger=%s", "a", "b", "c")))
    assert (entry["level"], entry["logger"], entry["message"]) == ("INFO", "engine.flow", "x level=a message=b logger=c")
    assert template_fields("w=%*d v=%s") is None
    assert template_fields("%% a=%s %d b=%-5.2f") == ("a", None, "b")
    entry = json.loads(JsonFormatter().format(record("Started server process [%d]", 42)))
    assert entry["message"] == "Started server process [42]" and "event" not in entry


def test_a_traceback_is_a_field_of_the_same_line_and_the_request_id_joins_every_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failure = record("worker_start_failed", exc_info=sys.exc_info())
    token = CURRENT.set(RequestInfo("req-1"))
    try:
        line = JsonFormatter().format(failure)
    finally:
        CURRENT.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["exception"].startswith("Traceback") and "ValueError: boom" in entry["exception"]
    assert entry["request_id"] == "req-1"
    assert "request_id" not in json.loads(JsonFormatter().format(record("idle")))


@pytest.mark.parametrize(("header", "kept"), [
    (b"abc-123", True), (b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", True),
    (b"x" * 128, True), (b"x" * 129, False), (b"", False), (b"has space", False), (b'quo"te', False),
    (b"back\\slash", False), (b"new\nline", False), ("caf\u00e9".encode(), False), (b"\x7f", False),
])
def test_a_client_request_id_is_kept_only_when_sane(header: bytes, kept: bool) -> None:
    request_id = request_id_from([(b"host", b"x"), (b"x-request-id", header)])
    assert (request_id == header.decode("utf-8", "replace")) is kept
    if not kept:
        assert len(request_id) == 16 and int(request_id, 16) >= 0
    assert request_id_from([]) != request_id_from([])


def test_a_path_is_logged_as_sent_or_escaped_and_bounded() -> None:
    assert printable_path("/v1/login") == "/v1/login"
    assert printable_path("/a\nb") == "'/a\\nb'"
    assert printable_path("/a b") == "'/a b'"
    assert printable_path("/\u00e9") == "'/\\xe9'"
    assert len(printable_path("/" + "a" * 1000)) == 259


def test_the_request_line_is_written_by_its_thread_after_the_answer(tmp_path: Path, loop_thread: LoopThread,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from engine.app import create_app

    caplog.set_level(logging.INFO, logger="engine.request")
    app = create_app(make_settings(tmp_path, {}))
    with ServiceClient(app, loop_thread) as client:
        answer = client.post("/v1/evaluate", json=evaluate_body(), headers={**auth(), "X-Request-ID": "r-42"})
        request_log: RequestLog = app.state.request_log
        request_log.drain()
    assert answer.headers["x-request-id"] == "r-42"
    lines = [r for r in caplog.records if r.name == "engine.request"]
    assert len(lines) == 1
    assert lines[0].getMessage().startswith("request method=POST path=/v1/evaluate route=evaluate status=200 ")
    assert lines[0].getMessage().endswith(" request_id=r-42 user_id=u-1")
    assert lines[0].threadName == "request-log"


def test_the_request_lines_of_enrollment_and_recovery_codes_name_their_user(
        tmp_path: Path, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.request")
    for service in start_service(tmp_path, loop_thread, "memory"):
        user = service.create_user()
        enrolled = service.first_login_enrolling_otp()  # /v1/mfa/enroll with an enrollment token, then confirm
        codes = service.post("/v1/mfa/recovery-codes", {"user_token": enrolled["token"]})
        assert codes.status_code == 200, codes.text
        request_log: RequestLog = service.client.app.state.request_log
        request_log.drain()
    named = {line.args[1]: line.args[6] for line in caplog.records  # type: ignore[index]
             if line.name == "engine.request"}
    assert named["/v1/mfa/enroll"] == named["/v1/mfa/enroll/confirm"] == named["/v1/mfa/recovery-codes"] \
        == user["user_id"]  # "user id where known" (issue 12)
