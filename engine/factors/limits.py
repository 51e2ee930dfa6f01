"""How many second factors a user may have, and the one refusal past that, the same wherever a
factor is added (self-enrollment, engine/enrollment.py; the admin API, engine/user_admin.py).

The directory keeps the limit atomically (UserDirectory.enroll_factor and add_factor count the
active factors under the user's lock): each factor is a row, a phone an SMS target, and a user
with endless factors is endless work for every login that lists them."""

from __future__ import annotations

from engine.errors import Conflict

# Enough for several phones and apps; bounded so that a token holder cannot grow the table.
MAX_FACTORS_PER_USER = 10


def too_many_factors() -> Conflict:
    """409 `conflict`, field `factor`: the user has MAX_FACTORS_PER_USER active factors already."""
    return Conflict(f"at most {MAX_FACTORS_PER_USER} factors per user; remove one first", field="factor")
