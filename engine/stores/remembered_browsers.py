"""The remembered_browsers table (migration 5 in sql_schema.py): its SQL, run by SqliteDirectory
(writes on its writer thread), so a password change, an MFA reset or a factor removal forgets
the browsers in the same atomic write that makes the change.

Times are ISO 8601 UTC text with microseconds (sqlite._time), which sorts as time: `expires_at > ?`
compares instants. Portable SQL, as the rest of the directory.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from engine.stores.directory import RememberedBrowser

_COLUMNS = "browser_id, user_id, device_id, user_agent, client_id, created_at, expires_at, last_used_at"

# Parameters: last_used_at, browser_id, user_id, device_id, now. Row count 1: remembered for
# this user and device and not expired; one statement checks and marks, so a revocation
# committed on another instance is seen by the next login there.
USE = ("UPDATE remembered_browsers SET last_used_at = ?"
       " WHERE browser_id = ? AND user_id = ? AND device_id = ? AND expires_at > ?")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _browser(row: sqlite3.Row) -> RememberedBrowser:
    last_used = row["last_used_at"]
    return RememberedBrowser(
        browser_id=row["browser_id"], user_id=row["user_id"], device_id=row["device_id"],
        user_agent=row["user_agent"], client_id=row["client_id"],
        created_at=datetime.fromisoformat(row["created_at"]), expires_at=datetime.fromisoformat(row["expires_at"]),
        last_used_at=None if last_used is None else datetime.fromisoformat(last_used))


def insert(db: sqlite3.Connection, browser: RememberedBrowser, max_per_user: int) -> bool:
    """In the caller's transaction. False for an unknown user (nothing written)."""
    if db.execute("SELECT 1 FROM users WHERE user_id = ?", (browser.user_id,)).fetchone() is None:
        return False
    db.execute("DELETE FROM remembered_browsers WHERE user_id = ? AND (device_id = ? OR expires_at <= ?)",
               (browser.user_id, browser.device_id, _time(browser.created_at)))
    db.execute(f"INSERT INTO remembered_browsers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
               (browser.browser_id, browser.user_id, browser.device_id, browser.user_agent, browser.client_id,
                _time(browser.created_at), _time(browser.expires_at)))
    db.execute("DELETE FROM remembered_browsers WHERE user_id = ? AND browser_id NOT IN"
               " (SELECT browser_id FROM remembered_browsers WHERE user_id = ?"
               " ORDER BY created_at DESC, browser_id DESC LIMIT ?)",
               (browser.user_id, browser.user_id, max_per_user))
    return True


def use(db: sqlite3.Connection, browser_id: str, user_id: str, device_id: str, now: datetime) -> bool:
    at = _time(now)
    return db.execute(USE, (at, browser_id, user_id, device_id, at)).rowcount == 1


def list_for(db: sqlite3.Connection, user_id: str, now: datetime) -> list[RememberedBrowser]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM remembered_browsers WHERE user_id = ? AND expires_at > ?"
                      " ORDER BY created_at DESC, browser_id DESC", (user_id, _time(now))).fetchall()
    return [_browser(row) for row in rows]


def forget(db: sqlite3.Connection, user_id: str, browser_id: str) -> bool:
    return db.execute("DELETE FROM remembered_browsers WHERE browser_id = ? AND user_id = ?",
                      (browser_id, user_id)).rowcount == 1


def forget_all(db: sqlite3.Connection, user_id: str) -> int:
    return db.execute("DELETE FROM remembered_browsers WHERE user_id = ?", (user_id,)).rowcount
