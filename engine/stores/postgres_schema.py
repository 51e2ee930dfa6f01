"""PostgreSQL's directory schema as versioned migrations (applied by engine/stores/migrations.py).

PostgreSQL support arrived at schema version 5, so its first migration is version 5: the tables
SQLite's migrations 1 to 5 (engine/stores/sql_schema.py) build, created whole. A version number
means the same tables on both backends, and a later version is added to both lists.

The column types keep the values the shared SQL writes and reads (engine/stores/sql_ops.py):
TEXT for ids, times and JSON, integers 0/1 for booleans. Where the dialects differ, on purpose:
- BIGINT where SQLite's INTEGER is 64-bit (counters, TOTP steps, coordinates);
- COLLATE "C" on the ids and times that queries order or compare by range, so that text order is
  byte order as in SQLite, whatever the database's default collation (a locale's collation may
  order ISO times and ids differently).
"""

from __future__ import annotations

from psycopg import Connection

from engine.stores.migrations import Seed

# Applied in order, each (its SQL, then its seed) in one transaction; a released version is
# never edited, only followed.
MIGRATIONS: tuple[tuple[int, str, Seed[Connection[tuple[object, ...]]] | None], ...] = (
    (5, """
CREATE TABLE users (
    user_id TEXT COLLATE "C" PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,          -- the lookup key: NFKC, case-folded
    username_display TEXT NOT NULL,         -- as the user typed it
    password_hash TEXT NOT NULL,
    email TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name TEXT,
    phone_number TEXT,
    app_metadata TEXT NOT NULL DEFAULT '{}',
    user_metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT COLLATE "C" NOT NULL,
    last_login TEXT COLLATE "C",
    logins_count BIGINT NOT NULL DEFAULT 0,
    preferred_factor TEXT,
    -- Moved on by every MFA reset; a token from an earlier epoch is refused (engine/sessions.py).
    mfa_epoch BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE factors (
    factor_id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    phone_number TEXT,
    secret_encrypted TEXT,                  -- Keyring.encrypt(secret, context="totp:{factor_id}")
    created_at TEXT COLLATE "C" NOT NULL,
    confirmed_at TEXT COLLATE "C",
    last_used_at TEXT COLLATE "C",
    -- The last TOTP time step this otp factor was accepted with: durable replay protection.
    last_totp_step BIGINT
);
CREATE INDEX factors_by_user ON factors (user_id);
CREATE TABLE recovery_codes (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,                -- Keyring.mac of the code, never the code
    created_at TEXT COLLATE "C" NOT NULL,
    used_at TEXT COLLATE "C",
    UNIQUE (user_id, code_hash)
);
CREATE TABLE known_devices (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    first_seen TEXT COLLATE "C" NOT NULL,
    last_seen TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
CREATE TABLE known_countries (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    country TEXT NOT NULL,
    first_seen TEXT COLLATE "C" NOT NULL,
    last_seen TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, country)
);
-- What the built-in triggers (engine/triggers.py) read from a user's complete logins, written by
-- engine/stores/login_events.py: the last one (coordinates in integer microdegrees) and when
-- each client was last logged in to.
CREATE TABLE last_logins (
    user_id TEXT COLLATE "C" PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    at TEXT COLLATE "C" NOT NULL,
    device_id TEXT,
    country TEXT,
    latitude_micro BIGINT,
    longitude_micro BIGINT,
    accuracy_radius_km BIGINT,
    client_id TEXT
);
CREATE TABLE known_clients (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    first_seen TEXT COLLATE "C" NOT NULL,
    last_seen TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
-- Remembered browsers (engine/remembered.py); the token itself is never stored.
CREATE TABLE remembered_browsers (
    browser_id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    user_agent TEXT,
    client_id TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    last_used_at TEXT COLLATE "C"
);
CREATE INDEX remembered_browsers_by_user ON remembered_browsers (user_id, device_id);
""", None),
    (6, """
-- The audit trail (engine/audit.py: the vocabulary; engine/stores/audit_events.py: paging and
-- expiry). seq is the insertion order, the tie-break of events written at one instant; no
-- foreign key to users: an event outlives its user. details is a JSON object, never a secret.
CREATE TABLE audit_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    actor TEXT NOT NULL,
    user_id TEXT COLLATE "C",
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
    client_id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
""", None),
)
