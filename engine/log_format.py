"""How the service's log lines are written: `logging.format: text` for people, `json` for collectors.

With json every line is one JSON object: timestamp (UTC, ISO 8601), level, logger, message,
then fields. The engine writes its events as `event key=%s key=%s` (`login decision=%s
user_id=%s`); the formatter pairs each `key=` of that template with its argument, so the
fields are the values the text line shows, never more: nothing reaches a JSON line that the
text line would not have carried. A line written while a request is served also carries
its `request_id`. Exceptions (uvicorn's, a worker that cannot start) are an `exception`
field of the same line, never lines of their own.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.config import Settings
from engine.request_context import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
BASE_KEYS = frozenset({"timestamp", "level", "logger", "message", "event", "exception", "stack"})

# A %-placeholder of the logging module's templates; `%%` is a literal percent sign.
_PLACEHOLDER = re.compile(r"%%|(?:(\w+)=)?%[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa]")
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?= |$)")


def template_fields(template: str) -> tuple[str | None, ...] | None:
    """The key of each argument of `template` (None for one without `key=`), or None when the
    template cannot be read that way (`*` widths, which consume arguments of their own)."""
    keys: list[str | None] = []
    for match in _PLACEHOLDER.finditer(template):
        if match[0] == "%%":
            continue
        if "*" in match[0]:
            return None
        keys.append(match[1])
    return tuple(keys)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in values are escaped)."""

    def __init__(self) -> None:
        super().__init__()
        # Templates are few and fixed (the code's): each is read once.
        self._templates: dict[str, tuple[str | None, ...] | None] = {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if isinstance(record.msg, str):
            entry.update(self._fields(record.msg, record.args))
        if "request_id" not in entry:
            request_id = current_request_id()
            if request_id is not None:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()

    def _fields(self, template: str, args: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        event = _EVENT.match(template)
        if event is not None:
            fields["event"] = event[0]
        if not isinstance(args, tuple) or not args:
            return fields
        keys = self._templates.get(template, ())
        if keys == ():
            keys = self._templates[template] = template_fields(template)
        if keys is None or len(keys) != len(args):
            return fields
        for key, value in zip(keys, args):
            if key is not None and key not in BASE_KEYS:
                fields[key] = value
        return fields


def logging_config(settings: Settings) -> dict[str, Any]:
    """A logging.config.dictConfig for the service (and, as uvicorn's `log_config`, for each
    server process): one stderr handler on the root logger, uvicorn's loggers passing to it."""
    json_lines = settings.logging.format == "json"
    formatter: dict[str, Any] = {"()": "engine.log_format.JsonFormatter"} if json_lines else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,  # the engine's module-level loggers exist already
        "formatters": {"engine": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "engine",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": settings.logging.level},
        "loggers": {name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
    }
