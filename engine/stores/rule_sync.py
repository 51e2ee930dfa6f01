"""The RuleSync contract: the rule set every instance runs, kept in a shared store and announced on change.

An entry is a history entry of engine/rule_ops.py: {"version", "activated_at", "by",
"rules": [{"id", "enabled", "source"}]}, the whole set, so a follower needs nothing else.

Key schema (Redis):
    mfa:rules:active     hash  version: the active version; set: the entry as orjson
    mfa:rules:changed    pub/sub channel; each message is a newly active version

`LocalRuleSync` is the single-instance store (no `store.redis_url`): nothing is shared, every
change is accepted, nothing is ever announced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

ACTIVE_KEY = "mfa:rules:active"
CHANGED_CHANNEL = "mfa:rules:changed"


class RuleSync(Protocol):
    kind: str  # "redis", "local": shown by /healthz and GET /admin/rules
    is_shared: bool

    async def version(self) -> str | None:
        """The shared active version, None when the store holds none. Raises StoreUnavailable."""

    async def read(self) -> dict[str, Any] | None:
        """The shared active entry, None when the store holds none. Raises StoreUnavailable."""

    async def publish(self, entry: Mapping[str, Any], expected: str | None) -> bool:
        """Store `entry` as the active set and announce it, atomically, if the shared version is
        still `expected` (the version the change was built on) or the store is empty; with
        `expected` None only into an empty store (seeding). False: another instance changed it
        first, nothing was written. Raises StoreUnavailable."""

    def changes(self) -> AsyncIterator[str]:
        """Announced versions as they come. Ends or raises StoreUnavailable when the connection
        drops: announcements missed meanwhile are lost (the caller also polls `version`)."""

    async def close(self) -> None: ...


class LocalRuleSync:
    kind = "local"
    is_shared = False

    async def version(self) -> str | None:
        return None

    async def read(self) -> dict[str, Any] | None:
        return None

    async def publish(self, entry: Mapping[str, Any], expected: str | None) -> bool:
        return True

    async def changes(self) -> AsyncIterator[str]:
        await asyncio.Event().wait()  # nothing is ever announced
        yield ""  # pragma: no cover - unreachable, makes this an async generator

    async def close(self) -> None:
        pass
