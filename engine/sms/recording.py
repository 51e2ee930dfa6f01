"""A gateway for tests that keeps every accepted message and can be told to fail."""

from __future__ import annotations

from engine.sms.gateway import GatewayError, SmsMessage


class RecordingSmsGateway:
    name = "recording"

    def __init__(self) -> None:
        self.messages: list[SmsMessage] = []
        self.is_closed = False
        self._failures_left = 0

    def fail_next(self, n: int = 1) -> None:
        """The next `n` sends raise GatewayError and record nothing, as a provider outage would."""
        self._failures_left += n

    def last_code_for(self, phone: str) -> str | None:
        """The code of the last message accepted for `phone` (E.164), or None."""
        for message in reversed(self.messages):
            if message.to == phone:
                return message.code
        return None

    async def send(self, message: SmsMessage) -> None:
        if self._failures_left > 0:
            self._failures_left -= 1
            raise GatewayError("recording gateway: told to fail")
        self.messages.append(message)

    async def close(self) -> None:
        self.is_closed = True
