"""The clients table (migration 7): the hosted pages' applications added through the admin API, as
operations (engine/stores/sql_ops.py) both directory backends run. config.yaml's clients are not
here; engine/clients.py reads them first.

redirect_uris is a JSON list of text; public is 0/1; times are sql_ops.time_text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from engine import formats
from engine.errors import Conflict
from engine.stores.directory import ClientRecord
from engine.stores.sql_ops import Operation, Row, parse_time, statement

# Update-or-insert rounds a PUT tries while concurrent PUTs and DELETEs of its id keep winning.
PUT_ROUNDS = 5
_RACED = "the client was changed by another request at the same time; try again"
_COLUMNS = "client_id, name, redirect_uris, public, created_at, updated_at"
SELECT = f"SELECT {_COLUMNS} FROM clients WHERE client_id = ?"
LIST = f"SELECT {_COLUMNS} FROM clients ORDER BY client_id"
# Parameters: name, redirect_uris, public, updated_at, client_id. Row count 1: it existed.
_UPDATE = "UPDATE clients SET name = ?, redirect_uris = ?, public = ?, updated_at = ? WHERE client_id = ?"
# Parameters: client_id, name, redirect_uris, public, created_at, updated_at. Row count 0: another
# transaction created it meanwhile (PostgreSQL waits for that one to commit, then does nothing).
_INSERT = (f"INSERT INTO clients ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
           " ON CONFLICT (client_id) DO NOTHING")


def check(client_id: str, redirect_uris: Sequence[str]) -> None:
    """ValueError for what no caller (admin API, script) may store: the pages and /v1/token trust these."""
    if formats.CLIENT_ID.fullmatch(client_id) is None:
        raise ValueError("client_id must match engine.formats.CLIENT_ID")
    if not redirect_uris or not all(formats.is_redirect_uri(uri) for uri in redirect_uris):
        raise ValueError(f"redirect_uris: at least one; {formats.REDIRECT_URI_RULE}")


def record(row: Row) -> ClientRecord:
    created, updated = parse_time(row["created_at"]), parse_time(row["updated_at"])
    assert created is not None and updated is not None  # NOT NULL columns
    return ClientRecord(client_id=row["client_id"], name=row["name"],
                        redirect_uris=tuple(json.loads(row["redirect_uris"])), public=bool(row["public"]),
                        created_at=created, updated_at=updated)


def put(client_id: str, name: str, redirect_uris: Sequence[str], public: bool,
        at: str) -> Operation[tuple[ClientRecord, bool]]:
    """Update first, else insert; an insert that lost a race to create the same id updates instead,
    so concurrent PUTs of one id end as one row (the last one's values) and no unique-key error.
    Each round that writes nothing met a row another PUT created and a DELETE removed between our
    two statements (PostgreSQL, read committed); past PUT_ROUNDS of those, a 409 asks to try again."""
    values = (name, json.dumps(list(redirect_uris)), int(public), at, client_id)
    created = False
    for _ in range(PUT_ROUNDS):
        if (yield statement(_UPDATE, *values)).rowcount == 1:
            break
        if (yield statement(_INSERT, client_id, name, values[1], int(public), at, at)).rowcount == 1:
            created = True
            break
    else:
        raise Conflict(_RACED, field="client_id")
    stored = (yield statement(SELECT, client_id)).first()
    if stored is None:  # written (and, on PostgreSQL, locked) by this transaction: never, but never a 500
        raise Conflict(_RACED, field="client_id")
    return record(stored), created


def delete(client_id: str) -> Operation[bool]:
    return (yield statement("DELETE FROM clients WHERE client_id = ?", client_id)).rowcount == 1
