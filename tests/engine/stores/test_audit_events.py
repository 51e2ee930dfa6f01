"""Audit events in the directory (engine/stores/audit_events.py), on both backends: written in order,
read newest first, filtered, paged with a cursor that neither skips nor repeats an event while
others are written, written atomically with a login, kept after their user, expired a batch at a time."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest

from engine import audit
from engine.stores.audit_events import AuditCursor, AuditEvent, AuditQuery
from engine.stores.directory import FactorProof
from engine.stores.sql_directory import SqlDirectory
from tests.engine.stores.directories import DirectoryBackend, Run, directory, directory_backend, run_sync
from tests.engine.stores.directories import postgres_database  # noqa: F401 - the fixture
from tests.engine.stores.test_directory import NOW, SECRET, new_user

__all__ = ["directory", "directory_backend", "run_sync"]  # fixtures

STEP = 59_000_000


def failed(user_id: str | None, minutes: float = 0, reason: str = "wrong_password") -> AuditEvent:
    return audit.event("login.failed", NOW + timedelta(minutes=minutes), user_id=user_id, ip="203.0.113.7",
                       reason=reason)


def types_and_users(directory: SqlDirectory, run_sync: Run, query: AuditQuery) -> list[tuple[str, str | None]]:
    return [(stored.event.type, stored.event.user_id) for stored in run_sync(directory.audit_events(query)).events]


def test_events_read_back_newest_first_and_those_of_one_instant_in_reverse_writing_order(
        directory: SqlDirectory, run_sync: Run) -> None:
    run_sync(directory.record_audit([failed("usr_a", minutes=1)]))
    run_sync(directory.record_audit([audit.event("factor.verified", NOW, user_id="usr_b", factor_id="fac_1",
                                                 factor_type="otp"),
                                     audit.event("login.succeeded", NOW, user_id="usr_b", amr=["pwd", "otp"])]))

    page = run_sync(directory.audit_events(AuditQuery()))

    assert [stored.event.type for stored in page.events] == ["login.failed", "login.succeeded", "factor.verified"]
    newest = page.events[0].event
    assert newest == failed("usr_a", minutes=1)
    assert page.events[1].event.details == {"amr": ["pwd", "otp"]}
    assert page.next_cursor is None
    assert page.events[0].seq < page.events[1].seq  # time first: written first, but a minute later
    assert page.events[1].seq > page.events[2].seq


def test_filters_by_user_type_and_a_half_open_time_range(directory: SqlDirectory, run_sync: Run) -> None:
    run_sync(directory.record_audit([failed("usr_a", 0), failed("usr_b", 1), failed(None, 2, "unknown_user"),
                                     audit.event("mfa.reset", NOW + timedelta(minutes=3), user_id="usr_a")]))

    assert types_and_users(directory, run_sync, AuditQuery(user_id="usr_a")) == [
        ("mfa.reset", "usr_a"), ("login.failed", "usr_a")]
    assert types_and_users(directory, run_sync, AuditQuery(type="login.failed")) == [
        ("login.failed", None), ("login.failed", "usr_b"), ("login.failed", "usr_a")]
    assert types_and_users(directory, run_sync, AuditQuery(since=NOW + timedelta(minutes=1),
                                                           until=NOW + timedelta(minutes=3))) == [
        ("login.failed", None), ("login.failed", "usr_b")]
    assert types_and_users(directory, run_sync, AuditQuery(user_id="usr_a", type="login.failed",
                                                           since=NOW)) == [("login.failed", "usr_a")]


def test_pages_end_with_a_cursor_and_the_last_page_with_none(directory: SqlDirectory, run_sync: Run) -> None:
    run_sync(directory.record_audit([failed("usr_a", minutes) for minutes in range(5)]))

    first = run_sync(directory.audit_events(AuditQuery(limit=2)))
    assert first.next_cursor is not None
    second = run_sync(directory.audit_events(AuditQuery(limit=2, after=first.next_cursor)))
    third = run_sync(directory.audit_events(AuditQuery(limit=2, after=second.next_cursor)))
    exact = run_sync(directory.audit_events(AuditQuery(limit=5)))

    times = [stored.event.at for page in (first, second, third) for stored in page.events]
    assert times == [NOW + timedelta(minutes=m) for m in (4, 3, 2, 1, 0)]
    assert third.next_cursor is None
    assert exact.next_cursor is None and len(exact.events) == 5  # a full last page says so too


def test_paging_under_concurrent_writes_returns_every_earlier_event_exactly_once(
        directory_backend: DirectoryBackend) -> None:
    reader = directory_backend.directory
    writer = directory_backend.open()  # another connection (pool), as another request or instance
    run = directory_backend.run
    # Many events at one instant (the tie-break is seq), some earlier and some later.
    run(reader.record_audit([failed("usr_a", minutes=(index % 7) - 3) for index in range(120)]))
    before = {stored.seq for stored in run(reader.audit_events(AuditQuery(limit=1000))).events}
    assert len(before) == 120
    stop = threading.Event()

    def write_meanwhile() -> None:
        index = 0
        while not stop.is_set():  # newer, older and same-instant events, written between the pages
            run(writer.record_audit([failed("usr_b", minutes=(index % 11) - 5)]))
            index += 1

    thread = threading.Thread(target=write_meanwhile)
    thread.start()
    seen: list[int] = []
    try:
        cursor = None
        while True:
            page = run(reader.audit_events(AuditQuery(limit=7, after=cursor)))
            seen += [stored.seq for stored in page.events]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    finally:
        stop.set()
        thread.join()

    # Events written meanwhile may or may not be seen (the newer ones are above the first page),
    # but none twice, and none of those before is skipped.
    assert len(seen) == len(set(seen)), "an event was returned twice"
    assert before <= set(seen), "an event that existed before the first page was skipped"


def test_a_login_writes_its_events_in_its_own_transaction_and_a_spent_proof_writes_none(
        directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user("alice"), NOW))
    factor = run_sync(directory.add_factor(user.user_id, "otp", NOW, status="active", secret=SECRET))
    events = [audit.event("factor.verified", NOW, user_id=user.user_id, factor_id=factor.factor_id, factor_type="otp"),
              audit.event("login.succeeded", NOW, user_id=user.user_id, amr=["pwd", "otp"])]

    assert run_sync(directory.record_login(user.user_id, NOW, "dev-1", "US", factor.factor_id,
                                           FactorProof(totp_step=STEP), audit=events))
    replayed = run_sync(directory.record_login(user.user_id, NOW, "dev-1", "US", factor.factor_id,
                                               FactorProof(totp_step=STEP), audit=events))

    assert replayed is False
    stored = run_sync(directory.audit_events(AuditQuery(user_id=user.user_id))).events
    assert [event.event.type for event in stored] == ["login.succeeded", "factor.verified"]
    assert run_sync(directory.get_user(user.user_id)).logins_count == 1  # type: ignore[union-attr]


def test_events_outlive_their_user(directory: SqlDirectory, run_sync: Run) -> None:
    user = run_sync(directory.create_user(new_user("alice"), NOW))
    run_sync(directory.record_audit([audit.event("user.created", NOW, user_id=user.user_id, username="alice")]))

    assert run_sync(directory.delete_user(user.user_id))

    assert types_and_users(directory, run_sync, AuditQuery(user_id=user.user_id)) == [("user.created", user.user_id)]


def test_expiry_deletes_at_most_one_batch_of_the_oldest_events(directory_backend: DirectoryBackend) -> None:
    directory, run = directory_backend.directory, directory_backend.run
    run(directory.record_audit([failed("usr_a", minutes=-minutes) for minutes in range(10)]))  # NOW, NOW-1...
    run(directory.record_audit([failed("usr_b", minutes=1)]))

    assert run(directory.delete_audit_events(NOW - timedelta(minutes=4, seconds=30), 3)) == 3
    assert run(directory.delete_audit_events(NOW - timedelta(minutes=4, seconds=30), 3)) == 2
    assert run(directory.delete_audit_events(NOW - timedelta(minutes=4, seconds=30), 3)) == 0

    left = sorted(at for (at,) in directory_backend.rows("SELECT at FROM audit_events"))
    assert len(left) == 6 and left[0] == (NOW - timedelta(minutes=4)).isoformat(timespec="microseconds")


def encoded(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("text", [
    "", "x", "not a cursor", "A" * 97, "é",
    AuditCursor("2026-03-02T10:00:00.000000+00:00", 1).encode() + "==",  # padding is never written
    encoded("123 2026-03-02T10:00:00+00:00"),  # a time in another form than the stored one
    encoded("123 2026-03-02T11:00:00.000000+01:00"),  # the same instant, not as stored
    encoded("-1 2026-03-02T10:00:00.000000+00:00"), encoded("1e3 2026-03-02T10:00:00.000000+00:00"),
    encoded("123 2026-13-02T10:00:00.000000+00:00"), encoded("123  2026-03-02T10:00:00.000000+00:00"),
])
def test_a_cursor_this_module_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        AuditCursor.decode(text)


def test_a_cursor_reads_back_as_written() -> None:
    cursor = AuditCursor("2026-03-02T10:00:00.000001+00:00", 12345678901)
    assert AuditCursor.decode(cursor.encode()) == cursor
