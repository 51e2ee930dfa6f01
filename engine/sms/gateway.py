"""The SmsGateway contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class GatewayError(Exception):
    """The message was not accepted; the message says why without repeating its body."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str  # E.164
    body: str  # contains the code
    code: str  # for gateways that template their own text (webhook); never logged
    user_id: str


class SmsGateway(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> None:
        """Hand the message to the provider; raises GatewayError if it was not accepted."""

    async def close(self) -> None: ...
