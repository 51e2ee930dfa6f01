"""The Twilio gateway: one POST to the Programmable Messaging API per message."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from engine.sms.gateway import GatewayError, SmsMessage


class TwilioGateway:
    """POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json, form-encoded To/From/Body, basic auth.

    Twilio answers 201 with the message resource; anything but 2xx, a timeout or a network
    error raises GatewayError. Errors name the HTTP status and Twilio's numeric error code,
    never the message body (it holds the code), the number or the auth token.
    """

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, base_url: str = "https://api.twilio.com",
                 timeout_ms: int = 5000, client: httpx.AsyncClient | None = None) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._from_number = from_number
        self._timeout = httpx.Timeout(timeout_ms / 1000)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()

    async def send(self, message: SmsMessage) -> None:
        form = {"To": message.to, "From": self._from_number, "Body": message.body}
        try:
            response = await self._client.post(self._url, data=form, auth=self._auth, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise GatewayError(f"twilio: no answer ({type(exc).__name__})") from exc
        if not response.is_success:
            raise GatewayError(f"twilio: HTTP {response.status_code}, error code {_error_code(response)}")

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _error_code(response: httpx.Response) -> str:
    # Only the numeric code: Twilio's "message" can quote the number it refused.
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return "unknown"
    return str(code) if isinstance(code, int) and not isinstance(code, bool) else "unknown"
