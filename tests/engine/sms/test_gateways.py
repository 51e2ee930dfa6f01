"""Every SMS gateway against what it talks to: a real local HTTP server (Twilio, webhook) or stdout (console)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from engine.app import build_gateway
from engine.clock import FrozenClock
from engine.config import LoggingSettings
from engine.sms.console import ConsoleGateway
from engine.sms.gateway import GatewayError, SmsGateway, SmsMessage
from engine.sms.recording import RecordingSmsGateway
from engine.sms.twilio import TwilioGateway
from engine.sms.webhook import WebhookGateway
from tests.engine.service import make_settings

SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "twilio-auth-token-do-not-leak"
FROM = "+15005550006"
WEBHOOK_SECRET = "webhook-secret-do-not-leak"
MESSAGE = SmsMessage(to="+15555551234", body="918273 is your Example sign-in code. It expires in 5 minutes.",
                     code="918273", user_id="u-1")


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


Answer = Callable[[Seen], tuple[int, bytes]]


class LocalProvider:
    """A real HTTP server on 127.0.0.1 standing in for the provider; `answer` decides each response."""

    def __init__(self, answer: Answer, delay_seconds: float = 0.0) -> None:
        self.seen: list[Seen] = []
        self._release = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                provider.seen.append(seen)
                provider._release.wait(delay_seconds)
                status, payload = answer(seen)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[..., LocalProvider]]:
    providers: list[LocalProvider] = []

    def start(answer: Answer, delay_seconds: float = 0.0) -> LocalProvider:
        providers.append(LocalProvider(answer, delay_seconds))
        return providers[-1]

    yield start
    for provider in providers:
        provider.stop()


def send_and_close(gateway: SmsGateway, message: SmsMessage = MESSAGE) -> None:
    async def run() -> None:
        try:
            await gateway.send(message)
        finally:
            await gateway.close()

    asyncio.run(run())


def twilio_error(status: int, code: int, message: str) -> tuple[int, bytes]:
    error = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
             "status": status}
    return status, json.dumps(error).encode()


def twilio_checks(seen: Seen) -> tuple[int, bytes]:
    """Twilio's side of the documented request: path, method, form encoding and basic auth."""
    expected_auth = "Basic " + base64.b64encode(f"{SID}:{AUTH_TOKEN}".encode()).decode()
    if seen.headers.get("authorization") != expected_auth:
        return twilio_error(401, 20003, "Authenticate")
    if seen.method != "POST" or seen.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
        return twilio_error(404, 20404, "The requested resource was not found")
    if seen.headers.get("content-type") != "application/x-www-form-urlencoded":
        return twilio_error(400, 21601, "Unsupported content type")
    form = parse_qs(seen.body.decode(), strict_parsing=True)
    if form != {"To": [MESSAGE.to], "From": [FROM], "Body": [MESSAGE.body]}:
        return twilio_error(400, 21604, "A required parameter is missing")
    return 201, json.dumps({"sid": "SM" + "0" * 32, "status": "queued", "to": MESSAGE.to}).encode()


def twilio(url: str, auth_token: str = AUTH_TOKEN, timeout_ms: int = 5000) -> TwilioGateway:
    return TwilioGateway(SID, auth_token, FROM, base_url=url, timeout_ms=timeout_ms)


def test_twilio_posts_the_documented_form_with_basic_auth(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(twilio_checks)
    send_and_close(twilio(provider.url + "/"))  # a trailing slash in base_url is tolerated
    assert len(provider.seen) == 1


def test_twilio_refusing_the_credentials_is_a_gateway_error(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(twilio_checks)
    with pytest.raises(GatewayError, match="HTTP 401, error code 20003"):
        send_and_close(twilio(provider.url, auth_token="wrong-token"))


def test_a_twilio_error_names_status_and_code_but_not_the_body_number_or_token(
        serve: Callable[..., LocalProvider]) -> None:
    provider = serve(lambda seen: twilio_error(400, 21211, f"The 'To' number {MESSAGE.to} is not a valid number."))
    with pytest.raises(GatewayError) as raised:
        send_and_close(twilio(provider.url))
    text = str(raised.value)
    assert "400" in text and "21211" in text
    for secret in (MESSAGE.code, MESSAGE.body, MESSAGE.to, AUTH_TOKEN):
        assert secret not in text


def test_a_twilio_answer_that_is_not_json_is_still_a_gateway_error(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(lambda seen: (502, b"<html>Bad gateway</html>"))
    with pytest.raises(GatewayError, match="HTTP 502, error code unknown"):
        send_and_close(twilio(provider.url))


def test_a_twilio_timeout_is_a_gateway_error(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(twilio_checks, delay_seconds=5)
    started = time.monotonic()
    with pytest.raises(GatewayError, match="no answer"):
        send_and_close(twilio(provider.url, timeout_ms=200))
    assert time.monotonic() - started < 3


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("make", [lambda url: twilio(url), lambda url: WebhookGateway(url + "/sms", WEBHOOK_SECRET)],
                         ids=["twilio", "webhook"])
def test_an_unreachable_provider_is_a_gateway_error(make: Callable[[str], SmsGateway]) -> None:
    with pytest.raises(GatewayError, match="no answer"):
        send_and_close(make(f"http://127.0.0.1:{unused_port()}"))


def webhook_checks(seen: Seen) -> tuple[int, bytes]:
    """What a receiver does: recompute the HMAC over the raw body and refuse stale timestamps."""
    timestamp = seen.headers.get("x-mfa-timestamp", "")
    expected = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + seen.body,
                                hashlib.sha256).hexdigest()
    if not hmac.compare_digest(seen.headers.get("x-mfa-signature", ""), expected):
        return 401, b'{"error":"bad signature"}'
    if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 300:
        return 401, b'{"error":"stale"}'
    if seen.headers.get("content-type") != "application/json" or seen.path != "/sms":
        return 400, b"{}"
    return 202, b'{"accepted":true}'


def test_the_webhook_sends_a_signed_json_message_the_receiver_verifies(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(webhook_checks)
    send_and_close(WebhookGateway(provider.url + "/sms", WEBHOOK_SECRET, timeout_ms=5000))
    assert json.loads(provider.seen[0].body) == {"to": MESSAGE.to, "body": MESSAGE.body, "code": MESSAGE.code,
                                                 "user_id": MESSAGE.user_id}


def test_the_webhook_timestamp_is_the_clocks_unix_seconds(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(lambda seen: (204, b""))
    clock = FrozenClock(datetime(2026, 11, 27, 10, 0, 0, 900_000, tzinfo=UTC))
    send_and_close(WebhookGateway(provider.url + "/sms", WEBHOOK_SECRET, clock=clock))
    seen = provider.seen[0]
    assert seen.headers["x-mfa-timestamp"] == str(int(clock.at.timestamp()))


def test_a_webhook_signed_with_another_secret_is_refused_and_reported(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(webhook_checks)
    with pytest.raises(GatewayError) as raised:
        send_and_close(WebhookGateway(provider.url + "/sms", "another-secret"))
    assert str(raised.value) == "webhook: HTTP 401"


def test_a_webhook_timeout_is_a_gateway_error(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(webhook_checks, delay_seconds=5)
    with pytest.raises(GatewayError, match="no answer"):
        send_and_close(WebhookGateway(provider.url + "/sms", WEBHOOK_SECRET, timeout_ms=200))


def test_gateways_close_only_the_clients_they_created(serve: Callable[..., LocalProvider]) -> None:
    provider = serve(twilio_checks)

    async def run() -> None:
        async with httpx.AsyncClient() as shared:
            for gateway in (TwilioGateway(SID, AUTH_TOKEN, FROM, provider.url, 5000, client=shared),
                            WebhookGateway(provider.url, WEBHOOK_SECRET, 5000, client=shared)):
                await gateway.close()
                assert not shared.is_closed
            await TwilioGateway(SID, AUTH_TOKEN, FROM, provider.url, 5000, client=shared).send(MESSAGE)

    asyncio.run(run())
    assert len(provider.seen) == 1


def test_the_recording_gateway_keeps_messages_and_fails_when_told() -> None:
    gateway = RecordingSmsGateway()
    other = SmsMessage(to="+442079460000", body="b", code="000111", user_id="u-2")

    async def run() -> None:
        await gateway.send(MESSAGE)
        gateway.fail_next(2)
        for _ in range(2):
            with pytest.raises(GatewayError):
                await gateway.send(other)
        await gateway.send(other)
        await gateway.close()

    asyncio.run(run())
    assert gateway.messages == [MESSAGE, other]
    assert gateway.last_code_for(MESSAGE.to) == MESSAGE.code
    assert gateway.last_code_for(other.to) == "000111"
    assert gateway.last_code_for("+15555550000") is None
    assert gateway.is_closed


def test_the_console_gateway_prints_the_body_to_a_masked_number(capsys: pytest.CaptureFixture[str]) -> None:
    send_and_close(ConsoleGateway())
    assert capsys.readouterr().out == f"SMS to +1******1234: {MESSAGE.body}\n"


def test_under_json_logging_the_console_gateway_prints_one_json_object_a_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = dataclasses.replace(make_settings(tmp_path), logging=LoggingSettings(format="json"))
    send_and_close(build_gateway(settings))  # what `serve` runs with logging.format: json
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])  # every line the service writes is one JSON object (issue 12)
    assert line["message"] == f"SMS to +1******1234: {MESSAGE.body}"
    assert (line["level"], line["logger"], line["event"]) == ("INFO", "engine.sms.console", "sms_console")
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_no_gateway_logs_the_code_or_its_secrets_at_any_level(serve: Callable[..., LocalProvider],
                                                              caplog: pytest.LogCaptureFixture,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    accepting = serve(twilio_checks)
    webhook = serve(webhook_checks)
    refusing = serve(lambda seen: twilio_error(400, 21211, f"'To' {MESSAGE.to} is not valid. {seen.body!r}"))
    recording = RecordingSmsGateway()
    recording.fail_next()
    gateways: list[SmsGateway] = [ConsoleGateway(), recording, recording, twilio(accepting.url),
                                  WebhookGateway(webhook.url + "/sms", WEBHOOK_SECRET), twilio(refusing.url),
                                  WebhookGateway(refusing.url, WEBHOOK_SECRET)]
    for gateway in gateways:
        try:
            send_and_close(gateway)
        except GatewayError:
            pass
    assert len(accepting.seen) == len(webhook.seen) == 1 and recording.messages == [MESSAGE]
    assert any(record.name.startswith("httpx") for record in caplog.records)  # the net was cast
    logged = "\n".join(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}" for record in caplog.records)
    for secret in (MESSAGE.code, AUTH_TOKEN, WEBHOOK_SECRET, base64.b64encode(f"{SID}:{AUTH_TOKEN}".encode()).decode()):
        assert secret not in logged
