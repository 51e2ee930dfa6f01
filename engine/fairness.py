"""Fair shares of the rule sandbox: at most N evaluations queued or running per user, client and address.

The sandbox has a few workers and a short queue. Without a bound, one user whose rules run
slow (or who is sent many logins at once) holds every worker and queue slot, and everyone
else waits into 503s. An evaluation beyond its user's or client's share is refused at once,
before it queues: 429 `too_many_evaluations` with Retry-After. The counts live in this
process; each instance bounds its own share of the work.

User and client ids are the caller's to choose: a flood with a new user_id per request passes
the per-user bound. The per-address bound (the end user's IP as the application reports it,
IPv6 per /64) holds against one person with many accounts; it is off by default because many
people can share one address (NAT). Requests without a client id share one client bucket.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from engine.errors import TooManyEvaluations
from engine.throttle import ip_key

NO_CLIENT = "<no client id>"


class FairShares:
    """`hold(user_id, client_id)` around one evaluation; a bound of 0 means no bound."""

    def __init__(self, per_user: int, per_client: int, per_address: int = 0) -> None:
        self._bounds = {"user": per_user, "client": per_client, "address": per_address}
        self._held: dict[tuple[str, str], int] = {}

    @contextlib.contextmanager
    def hold(self, user_id: str | None, client_id: str | None, ip: str | None = None) -> Iterator[None]:
        # The address is normalised only when it is bounded: parsing it costs about 5 us.
        address = ip_key(ip) if ip and self._bounds["address"] else None
        named = (("user", user_id), ("client", client_id or NO_CLIENT), ("address", address))
        keys = [(kind, key) for kind, key in named if key and self._bounds[kind]]
        # Check and take in one synchronous step: evaluations start on one event loop.
        for kind, key in keys:
            if self._held.get((kind, key), 0) >= self._bounds[kind]:
                raise TooManyEvaluations(f"this {kind} already has {self._bounds[kind]} evaluations in progress")
        for held in keys:
            self._held[held] = self._held.get(held, 0) + 1
        try:
            yield
        finally:
            for held in keys:
                left = self._held[held] - 1
                if left:
                    self._held[held] = left
                else:
                    del self._held[held]

    def in_progress(self) -> int:
        """Distinct users, clients and addresses holding a share now: every share is given back."""
        return len(self._held)
