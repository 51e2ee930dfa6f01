"""Which concrete factors a challenge offers, in which order, and how they are shown.

policy.decide orders factor *types* (rule, user, config layers); this module turns them
into the user's enrolled factors: every phone for `sms`, the authenticator for `otp`, and
`recovery` while unused recovery codes remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.signals import mask_phone
from engine.stores.challenges import ChallengeFactor
from engine.stores.directory import FactorRecord, UserRecord

RECOVERY_FACTOR_ID = "recovery"


@dataclass(frozen=True, slots=True)
class Offer:
    factor: ChallengeFactor
    phone_masked: str | None = None

    def to_plain(self, is_default: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.factor.factor_id, "type": self.factor.type, "default": is_default}
        if self.phone_masked:
            body["phone"] = self.phone_masked
        return body


def enrolled_types(user: UserRecord, factors: Sequence[FactorRecord], recovery_codes_left: int) -> list[str]:
    """The user's factor types in their preferred order: the preferred (last used) one first."""
    types = [f.type for f in factors if f.status == "active"]
    if user.preferred_factor in types:
        types.insert(0, user.preferred_factor)
    if recovery_codes_left > 0:
        types.append(RECOVERY_FACTOR_ID)
    return list(dict.fromkeys(types))


def arrange(ordered_types: Sequence[str], factors: Sequence[FactorRecord]) -> list[Offer]:
    offers: list[Offer] = []
    for factor_type in ordered_types:
        if factor_type == RECOVERY_FACTOR_ID:
            offers.append(Offer(ChallengeFactor(RECOVERY_FACTOR_ID, RECOVERY_FACTOR_ID)))
            continue
        for record in factors:
            if record.type == factor_type and record.status == "active":
                offers.append(Offer(ChallengeFactor(record.factor_id, record.type), mask_phone(record.phone_number)))
    return offers
