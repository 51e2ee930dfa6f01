"""The UserDirectory contract: users, their factors and recovery codes, login history, audit events,
and the hosted pages' clients added through the admin API.

Durable state (SQL): SqliteDirectory (engine/stores/sqlite.py, embedded) or PostgresDirectory
(engine/stores/postgres.py, shared by several instances), one behaviour on both (their SQL and
logic are shared: engine/stores/directory_sql.py). TOTP secrets are encrypted at rest by the
implementation (it is given an engine.crypto.Keyring); recovery codes arrive already hashed.

DirectoryError
 ├── UserExists     the username is taken
 ├── UnknownUser    a write about a user who does not exist (or was just deleted)
 ├── TooManyFactors an added factor past the `max_active` its caller set
 └── SchemaTooNew   the database was migrated by a newer engine
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # login_events imports this module's DirectoryError
    from engine.stores.audit_events import AuditEvent, AuditPage, AuditQuery
    from engine.stores.login_events import LoginSummary


def username_key(username: str) -> str:
    """The one form usernames are compared in: NFKC then case-folded, so "Alice", "ALICE" and the
    full-width "Ａｌｉｃｅ" are one account, not three look-alikes. Everything keyed on a
    username (the directory's lookup, the password throttle) uses this function, so a spelling
    that reaches an account always reaches that account's limits too."""
    return unicodedata.normalize("NFKC", username).casefold()


class DirectoryError(Exception):
    """Base of the directory's refusals."""


class UserExists(DirectoryError):
    """The username is taken."""


class UnknownUser(DirectoryError):
    """A write about a user who does not exist."""


class TooManyFactors(DirectoryError):
    """The user has `max_active` active factors already."""


class SchemaTooNew(DirectoryError):
    """The database's schema is newer than this engine knows: it would misread it."""


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    password_hash: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    phone_number: str | None = None  # E.164
    app_metadata: Mapping[str, Any] = field(default_factory=dict)
    user_metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    username: str
    email: str | None
    email_verified: bool
    name: str | None
    phone_number: str | None
    app_metadata: Mapping[str, Any]
    user_metadata: Mapping[str, Any]
    created_at: datetime  # aware UTC
    last_login: datetime | None
    logins_count: int
    preferred_factor: str | None  # factor type last used or chosen ("otp", "sms")
    mfa_epoch: int = 0  # moved on by each MFA reset: tokens of an earlier epoch are refused


@dataclass(frozen=True, slots=True)
class FactorRecord:
    factor_id: str
    user_id: str
    type: str  # "otp" | "sms"
    status: str  # "pending" (enrolling) | "active"
    phone_number: str | None  # sms
    created_at: datetime
    confirmed_at: datetime | None
    last_used_at: datetime | None
    # otp: the last TOTP time step this factor was accepted with (durable replay protection);
    # None until its first accepted code, and for sms.
    last_totp_step: int | None = None


@dataclass(frozen=True, slots=True)
class FactorProof:
    """What passing a second factor uses up, so the same proof never passes twice.

    `totp_step`: the time step an otp code matched; accepted once per factor, and never at or
    below the last accepted one (the store remembers steps for minutes, and forgets them
    when it restarts without persistence: this is the durable line). `recovery_code_hash`:
    the keyed hash of a recovery code, consumed (single use). Spent only once the challenge
    step has let the login through, so a login that fails uses nothing up.
    """

    totp_step: int | None = None
    recovery_code_hash: str | None = None


@dataclass(frozen=True, slots=True)
class RememberedBrowser:
    """A browser whose logins may skip the second factor until `expires_at` (engine/remembered.py).
    The token is not here: it is derived from `browser_id` under secrets.key when issued."""

    browser_id: str
    user_id: str
    device_id: str
    user_agent: str | None  # a label for the admin listing, as the browser sent it
    client_id: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """An application of the hosted login pages added through the admin API (engine/clients.py
    reads these after config.yaml's own)."""

    client_id: str
    name: str
    redirect_uris: tuple[str, ...]  # matched exactly (engine.formats.is_redirect_uri)
    public: bool  # cannot keep a secret: PKCE (S256) is then required
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Resealed:
    """What UserDirectory.reseal_secrets did: secrets sealed again under secrets.key, and secrets
    no key opens (left as they are: their factors answer 503 factor_unavailable)."""

    resealed: int
    unreadable: int


class UserDirectory(Protocol):
    @property
    def backend(self) -> str:
        """"sqlite" or "postgresql": what /healthz shows."""

    async def schema_version(self) -> int:
        """The newest migration applied to the database (read from it: also a liveness check)."""

    async def create_user(self, user: NewUser, now: datetime) -> UserRecord:
        """Raises UserExists. Usernames are compared by username_key."""

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def find_login(self, username: str) -> tuple[UserRecord, str] | None:
        """The user and their password hash, by username (compared by username_key)."""

    async def list_users(self, limit: int, offset: int) -> list[UserRecord]: ...

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> UserRecord | None:
        """Changes may hold email, email_verified, name, phone_number, app_metadata,
        user_metadata, password_hash. Returns None for an unknown user. A new password_hash
        forgets the user's remembered browsers in the same transaction."""

    async def delete_user(self, user_id: str) -> bool: ...

    async def record_login(self, user_id: str, now: datetime, device_id: str | None, country: str | None,
                           factor_id: str | None = None, proof: FactorProof | None = None,
                           metadata_updates: Mapping[str, Mapping[str, Any]] | None = None, *,
                           client_id: str | None = None, geo: Mapping[str, Any] | None = None,
                           audit: Sequence[AuditEvent] = ()) -> bool:
        """logins_count + 1, last_login, the login event the triggers learn from (device, country,
        client, `geo`'s latitude, longitude and accuracy_radius: engine/stores/login_events.py),
        (with `factor_id`) mark the factor used as mark_factor_used does, (with `proof`) spend the proof as spend_proof
        does, (with `metadata_updates`, {"app_metadata": {key: value or None}, ...}) merge the
        rules' changes key by key into the metadata stored now (engine/metadata.py; None deletes;
        a kind the merge would take past metadata.MAX_BYTES is skipped with a warning), and
        (with `audit`) write the login's audit events, all in one write. False, with nothing
        written, when the proof was already spent: the login must not complete."""

    async def spend_proof(self, user_id: str, factor_id: str | None, proof: FactorProof, now: datetime) -> bool:
        """Spend a passed factor's proof outside a completed login (a factor passed before an
        enrollment, or confirming one): the TOTP step on `factor_id`, which must be the user's,
        and/or the recovery code. Atomic: of concurrent spends of one proof, one wins. False,
        with nothing written, when it was already spent."""

    async def login_summary(self, user_id: str, since: datetime) -> LoginSummary:
        """What the user's complete logins taught (devices and countries seen since `since`)."""

    async def add_factor(self, user_id: str, factor_type: str, now: datetime, *, status: str = "pending",
                         phone_number: str | None = None, secret: str | None = None,
                         max_active: int | None = None) -> FactorRecord:
        """Raises ValueError for an unknown type or status, or an otp factor without a secret;
        UnknownUser; TooManyFactors when `max_active` is given and the user has that many active
        factors (counted under the user's lock: of concurrent adds, no two pass the limit together)."""

    async def enroll_factor(self, user_id: str, factor_type: str, now: datetime, *, max_active: int,
                            phone_number: str | None = None, secret: str | None = None) -> FactorRecord | None:
        """A new pending factor in place of the user's pending ones (one enrollment at a time,
        and the dropped ones forget the remembered browsers as delete_factor does); None, with
        nothing changed, when the user has `max_active` active factors already. Atomic: of
        concurrent enrollments, no two pass the limit together. Raises as add_factor does."""

    async def get_factor(self, factor_id: str) -> FactorRecord | None: ...

    async def factor_secret(self, factor_id: str) -> str | None:
        """The decrypted TOTP secret (base32) of an otp factor."""

    async def factor_for_code(self, factor_id: str) -> tuple[FactorRecord, str | None] | None:
        """The factor and, when it is an active otp factor, its decrypted TOTP secret, in one read:
        what checking a code needs. Raises as factor_secret does."""

    async def list_factors(self, user_id: str, *, include_pending: bool = False) -> list[FactorRecord]: ...

    async def reseal_secrets(self) -> Resealed:
        """Every TOTP secret a previous key sealed, sealed again under secrets.key (key rotation:
        `mfa-engine keys reseal`); secrets no key opens are counted, logged and left as they are."""

    async def activate_factor(self, factor_id: str, now: datetime, *, max_active: int | None = None) -> bool:
        """Whether the pending factor became active: False, with nothing changed, when it is gone
        (an enrollment started since dropped it) or active already (its first confirmed_at stays).
        TooManyFactors, with nothing changed, when `max_active` is given and the owner has that many
        active factors already (counted under the owner's lock, as enroll_factor counts)."""

    async def delete_factor(self, user_id: str, factor_id: str) -> bool:
        """False unless the factor was the user's; a deleted factor forgets the user's remembered
        browsers in the same transaction."""

    async def mark_factor_used(self, factor_id: str, now: datetime) -> None:
        """last_used_at, and the user's preferred_factor becomes this factor's type."""

    async def replace_recovery_codes(self, user_id: str, code_hashes: Sequence[str], now: datetime) -> None:
        """The old codes stop working in the transaction that stores the new ones. Raises
        ValueError for repeated hashes; UnknownUser."""

    async def recovery_code_usable(self, user_id: str, code_hash: str) -> bool:
        """Whether the user has this code unused; reading uses nothing up."""

    async def recovery_codes_left(self, user_id: str) -> int: ...

    async def reset_mfa(self, user_id: str) -> None:
        """Delete every factor, recovery code and remembered browser of the user, and move the
        user's mfa_epoch on (in one transaction): every token issued before is refused from then on.
        Raises UnknownUser."""

    async def record_audit(self, events: Sequence[AuditEvent]) -> None:
        """Write audit events (engine/audit.py built them) in one transaction, durably."""

    async def audit_events(self, query: AuditQuery) -> AuditPage:
        """A page of audit events, newest first (engine/stores/audit_events.py)."""

    async def delete_audit_events(self, before: datetime, batch: int) -> int:
        """Delete at most `batch` of the events older than `before`, oldest first; how many."""

    async def remember_browser(self, browser: RememberedBrowser, max_per_user: int) -> bool:
        """Keep `browser`, in place of any earlier one of the same user and device (whose token
        stops working); the user's expired ones go, and the oldest past `max_per_user`. False,
        with nothing written, for an unknown user."""

    async def use_remembered_browser(self, browser_id: str, user_id: str, device_id: str, now: datetime) -> bool:
        """Whether `browser_id` is remembered for this user and device and unexpired at `now`; if so
        its last_used_at becomes `now`, in the same statement. Revoked, expired or foreign: False."""

    async def list_remembered_browsers(self, user_id: str, now: datetime) -> list[RememberedBrowser]:
        """The user's unexpired remembered browsers, newest first."""

    async def forget_remembered_browser(self, user_id: str, browser_id: str) -> bool:
        """False unless it existed and was the user's."""

    async def forget_remembered_browsers(self, user_id: str) -> int:
        """Forget all of them; how many there were."""

    async def put_client(self, client_id: str, name: str, redirect_uris: Sequence[str], public: bool,
                         now: datetime) -> tuple[ClientRecord, bool]:
        """Create the client, or replace its name, redirect URIs and public flag (keeping its
        created_at); the record as stored and whether it was created. Raises ValueError for a
        client_id that is not formats.CLIENT_ID or a redirect URI formats.is_redirect_uri refuses."""

    async def get_client(self, client_id: str) -> ClientRecord | None: ...

    async def list_clients(self) -> list[ClientRecord]:
        """By client_id (byte order)."""

    async def delete_client(self, client_id: str) -> bool:
        """False when there was none."""

    async def close(self) -> None: ...
