"""The remembered_browsers table (migration 5 in sql_schema.py): its SQL as operations (engine/stores/sql_ops.py)
that both directory backends run, so a password change, an MFA reset or a factor removal forgets the
browsers in the same transaction that makes the change.

Times are ISO 8601 UTC text with microseconds (sql_ops.time_text), which sorts as time: `expires_at > ?`
compares instants.
"""

from __future__ import annotations

from datetime import datetime

from engine.stores.directory import RememberedBrowser
from engine.stores.sql_ops import Operation, Row, lock_user, statement, time_text

_COLUMNS = "browser_id, user_id, device_id, user_agent, client_id, created_at, expires_at, last_used_at"

# Parameters: last_used_at, browser_id, user_id, device_id, now. Row count 1: remembered for
# this user and device and not expired; one statement checks and marks, so a revocation
# committed on another instance is seen by the next login there.
USE = ("UPDATE remembered_browsers SET last_used_at = ?"
       " WHERE browser_id = ? AND user_id = ? AND device_id = ? AND expires_at > ?")
LIST_FOR = (f"SELECT {_COLUMNS} FROM remembered_browsers WHERE user_id = ? AND expires_at > ?"
            " ORDER BY created_at DESC, browser_id DESC")


def browser(row: Row) -> RememberedBrowser:
    last_used = row["last_used_at"]
    return RememberedBrowser(
        browser_id=row["browser_id"], user_id=row["user_id"], device_id=row["device_id"],
        user_agent=row["user_agent"], client_id=row["client_id"],
        created_at=datetime.fromisoformat(row["created_at"]), expires_at=datetime.fromisoformat(row["expires_at"]),
        last_used_at=None if last_used is None else datetime.fromisoformat(last_used))


def insert(kept: RememberedBrowser, max_per_user: int) -> Operation[bool]:
    """False for an unknown user (nothing written)."""
    if not (yield from lock_user(kept.user_id)):  # also: two at once cannot both pass the bound
        return False
    yield statement("DELETE FROM remembered_browsers WHERE user_id = ? AND (device_id = ? OR expires_at <= ?)",
                    kept.user_id, kept.device_id, time_text(kept.created_at))
    yield statement(f"INSERT INTO remembered_browsers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    kept.browser_id, kept.user_id, kept.device_id, kept.user_agent, kept.client_id,
                    time_text(kept.created_at), time_text(kept.expires_at))
    yield statement("DELETE FROM remembered_browsers WHERE user_id = ? AND browser_id NOT IN"
                    " (SELECT browser_id FROM remembered_browsers WHERE user_id = ?"
                    " ORDER BY created_at DESC, browser_id DESC LIMIT ?)", kept.user_id, kept.user_id, max_per_user)
    return True


def use(browser_id: str, user_id: str, device_id: str, now: datetime) -> Operation[bool]:
    at = time_text(now)
    return (yield statement(USE, at, browser_id, user_id, device_id, at)).rowcount == 1


def forget(user_id: str, browser_id: str) -> Operation[bool]:
    return (yield statement("DELETE FROM remembered_browsers WHERE browser_id = ? AND user_id = ?",
                            browser_id, user_id)).rowcount == 1


def forget_all(user_id: str) -> Operation[int]:
    return (yield statement("DELETE FROM remembered_browsers WHERE user_id = ?", user_id)).rowcount
