"""The webhook gateway: a signed JSON POST to the operator's own SMS service.

The receiver checks `X-MFA-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw_body}")>`
over the exact bytes received, and refuses an `X-MFA-Timestamp` (unix seconds) far from its
own clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from engine.clock import Clock, SystemClock
from engine.sms.gateway import GatewayError, SmsMessage

TIMESTAMP_HEADER = "X-MFA-Timestamp"
SIGNATURE_HEADER = "X-MFA-Signature"


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The X-MFA-Signature header value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + raw_body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


class WebhookGateway:
    """Sends {"to", "body", "code", "user_id"}; success on 2xx, GatewayError otherwise.

    Errors name the HTTP status only: the receiver's answer may echo what it was sent.
    """

    name = "webhook"

    def __init__(self, url: str, secret: str, timeout_ms: int = 5000, client: httpx.AsyncClient | None = None,
                 clock: Clock | None = None) -> None:
        self._url = url
        self._secret = secret
        self._timeout = httpx.Timeout(timeout_ms / 1000)
        self._clock = clock if clock is not None else SystemClock()
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()

    async def send(self, message: SmsMessage) -> None:
        raw_body = json.dumps({"to": message.to, "body": message.body, "code": message.code,
                               "user_id": message.user_id}, separators=(",", ":")).encode("utf-8")
        timestamp = int(self._clock.now().timestamp())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
                   SIGNATURE_HEADER: sign(self._secret, timestamp, raw_body)}
        try:
            response = await self._client.post(self._url, content=raw_body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise GatewayError(f"webhook: no answer ({type(exc).__name__})") from exc
        if not response.is_success:
            raise GatewayError(f"webhook: HTTP {response.status_code}")

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
