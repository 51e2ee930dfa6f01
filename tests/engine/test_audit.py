"""The audit vocabulary and its redaction rules (engine/audit.py): what an event may carry, and how."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import audit
from engine.audit import Actor

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_an_event_takes_its_types_actor_by_default_and_keeps_plain_details() -> None:
    event = audit.event("login.failed", NOW, user_id="usr_a", ip="203.0.113.7", decision_id="d-1",
                        reason="wrong_password", client_id=None)

    assert (event.type, event.actor, event.user_id, event.ip, event.decision_id) == (
        "login.failed", "user", "usr_a", "203.0.113.7", "d-1")
    assert event.details == {"reason": "wrong_password"}  # None is left out
    assert audit.event("lockout", NOW, scope="factor", retry_after_seconds=900).actor == "system"


@pytest.mark.parametrize(("type_", "fields", "message"), [
    ("login.exploded", {}, "unknown audit event type"),
    ("login.failed", {"password": "hunter2"}, "takes no detail password"),
    ("factor.verified", {"code": "123456"}, "takes no detail code"),
    ("factor.added", {"secret": "JBSWY3DPEHPK3PXP"}, "takes no detail secret"),
    ("user.updated", {"phone_number": "+14155550123"}, "takes no detail phone_number"),
    ("login.succeeded", {"token": "eyJ..."}, "takes no detail token"),
    ("login.succeeded", {"amr": {"nested": "object"}}, "must be plain"),
    ("login.succeeded", {"client_id": 1.5}, "must be plain"),
])
def test_anything_outside_the_vocabulary_is_refused(type_: str, fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit.event(type_, NOW, **fields)


def test_an_actor_the_type_does_not_allow_is_refused() -> None:
    with pytest.raises(ValueError, match="is not caused by admin"):
        audit.event("login.succeeded", NOW, actor=Actor.ADMIN)
    assert audit.event("rules.changed", NOW, actor=Actor.SYSTEM, change="reload").actor == "system"


def test_no_type_lists_a_secret_detail() -> None:
    for name, kind in audit.VOCABULARY.items():
        assert not kind.details & audit._NEVER, name
        assert name == name.lower() and all(part for part in name.split("."))


def test_a_phone_is_masked_and_text_bounded_and_cleaned() -> None:
    event = audit.event("factor.added", NOW, factor_id="fac_1\n\x1b[31m", factor_type="x" * 500,
                        phone="+14155550123")

    assert event.details["phone"] == "+1 *** *** 0123"
    assert event.details["factor_id"] == "fac_1[31m"
    assert event.details["factor_type"] == "x" * audit.MAX_TEXT
    assert audit.event("factor.added", NOW, phone="not a phone").details == {"phone": None}


def test_lists_are_bounded() -> None:
    event = audit.event("rules.changed", NOW, rules=[f"{n:02d}-rule" for n in range(50)])
    assert event.details["rules"] == [f"{n:02d}-rule" for n in range(audit.MAX_ITEMS)]


def test_an_admins_event_comes_from_the_admin_request_it_was_caused_in() -> None:
    with audit.admin_request("198.51.100.7"):
        inside = audit.event("mfa.reset", NOW, user_id="usr_a")
        named = audit.event("mfa.reset", NOW, user_id="usr_a", ip="192.0.2.1")
        user = audit.event("login.succeeded", NOW, user_id="usr_a")
    outside = audit.event("mfa.reset", NOW, user_id="usr_a")

    assert (inside.ip, named.ip, user.ip, outside.ip) == ("198.51.100.7", "192.0.2.1", None, None)
