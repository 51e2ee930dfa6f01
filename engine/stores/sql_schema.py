"""SQLite's directory schema as versioned migrations (applied by engine/stores/migrations.py), each
with an optional seed: Python that fills what the SQL cannot compute portably. PostgreSQL's list,
engine/stores/postgres_schema.py, starts at version 5, this list's schema created whole; a later
version is added to both lists under the same number."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from engine.factors import totp

Seed = Callable[[sqlite3.Connection], None]


def seed_last_totp_steps(db: sqlite3.Connection) -> None:
    """Each otp factor's last TOTP step as it can be known from before the column existed: the
    latest step a code could have matched when the factor was last used or confirmed. Left
    NULL, a code accepted just before the upgrade (which the memory store forgets on restart,
    and Redis without persistence) was accepted again within its drift window. Epoch seconds
    from the stored ISO times differ between SQLite and PostgreSQL, hence Python."""
    rows = db.execute("SELECT factor_id, last_used_at, confirmed_at FROM factors WHERE type = 'otp'").fetchall()
    steps = []
    for factor_id, *times in rows:
        used = [datetime.fromisoformat(at).timestamp() for at in times if at is not None]
        if used:
            steps.append((totp.last_matchable_step(max(used)), factor_id))
    db.executemany("UPDATE factors SET last_totp_step = ? WHERE factor_id = ?", steps)


# Applied in order, each (its SQL, then its seed) in one transaction; a released version is
# never edited, only followed.
MIGRATIONS: tuple[tuple[int, str, Seed | None], ...] = (
    (1, """
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,          -- the lookup key: NFKC, case-folded
    username_display TEXT NOT NULL,         -- as the user typed it
    password_hash TEXT NOT NULL,
    email TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name TEXT,
    phone_number TEXT,
    app_metadata TEXT NOT NULL DEFAULT '{}',
    user_metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    last_login TEXT,
    logins_count INTEGER NOT NULL DEFAULT 0,
    preferred_factor TEXT
);
CREATE TABLE factors (
    factor_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    phone_number TEXT,
    secret_encrypted TEXT,                  -- Keyring.encrypt(secret, context="totp:{factor_id}")
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    last_used_at TEXT
);
CREATE INDEX factors_by_user ON factors (user_id);
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,                -- Keyring.mac of the code, never the code
    created_at TEXT NOT NULL,
    used_at TEXT,
    UNIQUE (user_id, code_hash)
);
CREATE TABLE known_devices (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
CREATE TABLE known_countries (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    country TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (user_id, country)
);
""", None),
    (2, """
-- The last TOTP time step each otp factor was accepted with: replay protection that outlives
-- the challenge store (a Redis restart without persistence, a restart on the memory store).
ALTER TABLE factors ADD COLUMN last_totp_step INTEGER;
""", seed_last_totp_steps),
    (3, """
-- What the built-in triggers (engine/triggers.py) read from a user's complete logins, written by
-- engine/stores/login_events.py: the last one (coordinates in integer microdegrees: exact, and
-- TEXT and INTEGER columns only) and when each client was last logged in to.
CREATE TABLE last_logins (
    user_id TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    device_id TEXT,
    country TEXT,
    latitude_micro INTEGER,
    longitude_micro INTEGER,
    accuracy_radius_km INTEGER,
    client_id TEXT
);
CREATE TABLE known_clients (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
""", None),
    (4, """
-- Moved on by every MFA reset; a token carries the epoch it was issued in (claim mfa_epoch), and
-- one from an earlier epoch is refused (engine/sessions.py: Sessions.resume).
ALTER TABLE users ADD COLUMN mfa_epoch INTEGER NOT NULL DEFAULT 0;
""", None),
    (5, """
-- Remembered browsers (engine/remembered.py): a login from one of these devices may skip the
-- second factor until expires_at. The token itself is never stored: it is this id and a MAC of
-- (id, user, device) under secrets.key, so a row alone cannot be turned into a token. Deleting
-- the row revokes the token at once on every instance.
CREATE TABLE remembered_browsers (
    browser_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    user_agent TEXT,
    client_id TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX remembered_browsers_by_user ON remembered_browsers (user_id, device_id);
""", None),
    (6, """
-- The audit trail (engine/audit.py: the vocabulary; engine/stores/audit_events.py: paging and
-- expiry). seq is the insertion order, the tie-break of events written at one instant; no
-- foreign key to users: an event outlives its user. details is a JSON object, never a secret.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    user_id TEXT,
    ip TEXT,
    decision_id TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_by_time ON audit_events (at, seq);
CREATE INDEX audit_events_by_user ON audit_events (user_id, at, seq);
CREATE INDEX audit_events_by_type ON audit_events (type, at, seq);
""", None),
    (7, """
-- Applications of the hosted login pages added through the admin API (engine/clients.py); those of
-- config.yaml are not here (config is their source of truth, and wins over a row of the same id).
-- redirect_uris is a JSON list of exact URLs; public is 0/1 (PKCE required when 1).
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
""", None),
)
