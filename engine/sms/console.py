"""The development SMS gateway: prints each message, code included, to standard output."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from engine.sms.gateway import SmsMessage

LOGGER_NAME = "engine.sms.console"


def mask_number(number: str) -> str:
    """'+15555551234' -> '+1******1234': enough to tell phones apart in a terminal."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 6) + number[-4:]


class ConsoleGateway:
    """Development only: the code is printed because reading it here is the whole workflow.

    It prints rather than logs, so the code never reaches log files or collectors; config
    refuses this gateway outside development unless forced. With `logging.format: json`
    (`json_lines`) the printed line is a JSON object shaped like the log lines, its `message`
    the text line: every line the service writes stays one JSON object (issue 12).
    """

    name = "console"

    def __init__(self, *, json_lines: bool = False) -> None:
        self.json_lines = json_lines

    async def send(self, message: SmsMessage) -> None:
        text = f"SMS to {mask_number(message.to)}: {message.body}"
        if self.json_lines:
            text = orjson.dumps({"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "INFO",
                                 "logger": LOGGER_NAME, "message": text, "event": "sms_console"}).decode()
        print(text, flush=True)

    async def close(self) -> None:
        return None
