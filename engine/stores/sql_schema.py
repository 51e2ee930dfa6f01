"""The directory's schema as versioned migrations, in SQL that SQLite and PostgreSQL both accept."""

from __future__ import annotations

# Applied in order, each in its own transaction; a released version is never edited, only followed.
MIGRATIONS: tuple[tuple[int, str], ...] = (
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
"""),
    (2, """
-- The last TOTP time step each otp factor was accepted with: replay protection that outlives
-- the challenge store (a Redis restart without persistence, a restart on the memory store).
ALTER TABLE factors ADD COLUMN last_totp_step INTEGER;
"""),
)
