"""The development SMS gateway: prints each message, code included, to standard output."""

from __future__ import annotations

from engine.sms.gateway import SmsMessage


def mask_number(number: str) -> str:
    """'+15555551234' -> '+1******1234': enough to tell phones apart in a terminal."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 6) + number[-4:]


class ConsoleGateway:
    """Development only: the code is printed because reading it here is the whole workflow.

    It prints rather than logs, so the code never reaches log files or collectors; config
    refuses this gateway outside development unless forced.
    """

    name = "console"

    async def send(self, message: SmsMessage) -> None:
        print(f"SMS to {mask_number(message.to)}: {message.body}", flush=True)

    async def close(self) -> None:
        return None
