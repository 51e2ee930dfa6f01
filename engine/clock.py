"""Where the engine reads the time: passed in, never read from a global, so tests can freeze it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""


# The instants a caller may set as `now` (the dry run, rule fixtures, `mfa-engine evaluate --now`):
# as the HTTP schema bounds dates, so that rules can add a year or subtract a century.
EARLIEST_NOW = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_NOW = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)
NOW_FORMAT = "must be an ISO 8601 date-time (naive means UTC) between 1900 and 9000"


def parse_now(text: str) -> datetime:
    """`text` as the aware UTC datetime rules see as context.now; a naive time is UTC (as
    engine.rule_api.timestamp reads it), never the host's zone. ValueError(NOW_FORMAT) otherwise."""
    try:
        parsed = datetime.fromisoformat(text)
        instant = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(NOW_FORMAT) from None
    if not EARLIEST_NOW <= instant <= LATEST_NOW:
        raise ValueError(NOW_FORMAT)
    return instant


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
