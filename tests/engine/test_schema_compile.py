"""Compiled body checks answer exactly as the schema's reference reading: the same checked values
(in the same order, of the same types) and the same refusals (message and dotted field).

Bodies come from a small generator driven by each schema's own declarations (fixed seeds, so a
failure replays): valid ones, then each with one to three mutations at random places (wrong
types, unknown, missing and null fields, lengths at and past their bounds, hidden characters of
each text kind, deep and large metadata, long lists, true for 1, 1.0 for 1...). Beyond equal
answers, the compiled fast path itself is held to accepting exactly what the reference accepts:
compiled with a reference that only records, it must never fall back on a valid body and must
never accept a refused one.
"""

from __future__ import annotations

import copy
import random
import re
import string
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine import formats
from engine.errors import InvalidRequest
from engine.http import rules_admin, schema
from engine.http.schema_checks import Boolean, Choice, Count, Degrees, ListOf, Obj, Text, TextKind
from engine.http.schema_compile import compile_check, generate, literal
from tests.engine.test_schema import EDGE_ADDRESSES, EDGE_TIMESTAMPS

SCHEMAS: dict[str, Obj] = {
    **schema.BODIES, "user": schema.USER, "context": schema.CONTEXT,
    **{name: body for name, body in rules_admin.BODIES.items() if isinstance(body, Obj)},
}
BODIES_PER_SCHEMA = 1500

WRONG_TYPES: list[Any] = [None, True, False, 0, 1, -1, 1.0, 1.5, -0.0, float("nan"), float("inf"), 10**12 + 1, 2**70,
                          "", "x", "1", "true", [], ["x"], [None], {}, {"x": 1}]
HIDDEN = {
    TextKind.IDENTIFIER: ["\n", "\r", "\t", "\x00", "\x7f", "\x85", "\xa0", "\u200b", "\u200d", "\u200e", "\u2028",
                          "\u202e", "\u2066", "\ufeff", "\U000e0041", "\ud800", " "],
    TextKind.FREE: ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202a", "\u202e", "\u2066",
                    "\u2069", "\ud800", "\u200d", "\u200c", "\xa0", "\u200f"],
    TextKind.SECRET: ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\ud800", "\u202e",
                      "\u200b"],
}
KIND_ALPHABETS = {
    TextKind.IDENTIFIER: string.ascii_letters + string.digits + "._-@+:/ \u00e9\u00fc\u4e2d",
    TextKind.FREE: string.ascii_letters + " ().;/\u00a0\u200c\u200d\u200f\u00eb\U0001f469\U0001f4bb",
    TextKind.SECRET: string.printable[:94] + " \u00ef\u202e\u202c\u200b\U0001f468",
}
PATTERN_SAMPLES: dict[re.Pattern[str], Callable[[random.Random], str]] = {
    formats.PHONE_E164: lambda r: "+" + r.choice("123456789") + "".join(r.choices(string.digits, k=r.randint(6, 14))),
    formats.COUNTRY: lambda r: "".join(r.choices(string.ascii_uppercase, k=2)),
    formats.ACTION: lambda r: r.choice(string.ascii_lowercase)
    + "".join(r.choices(string.ascii_lowercase + string.digits + "_", k=r.randint(0, 20))),
    formats.OPAQUE_ID: lambda r: "".join(r.choices(string.ascii_letters + string.digits + "_-", k=r.randint(1, 40))),
    formats.HOSTNAME: lambda r: ".".join("".join(r.choices(string.ascii_lowercase, k=r.randint(1, 8)))
                                         for _ in range(r.randint(1, 4))) + r.choice(["", "."]),
    formats.USERNAME: lambda r: r.choice(string.ascii_letters)
    + "".join(r.choices(string.ascii_letters + string.digits + "._@+-", k=r.randint(0, 30))),
    formats.CLIENT_ID: lambda r: r.choice(string.ascii_letters)
    + "".join(r.choices(string.ascii_letters + string.digits + "._-", k=r.randint(0, 30))),
    formats.BASE32_SECRET: lambda r: "".join(r.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=r.randint(16, 40)))
    + "=" * r.randint(0, 3),
}
PATTERN_MISSES = {formats.PHONE_E164: ["+0123456", "14155550123", "+1415555012345678"], formats.COUNTRY: ["us", "USA"],
                  formats.ACTION: ["Login", "9x", "a-b"], formats.OPAQUE_ID: ["a.b", "a b"],
                  formats.HOSTNAME: ["a..b", "-a.b", "a/b", "a b"], formats.USERNAME: [".x", "a b", "a!"],
                  formats.CLIENT_ID: ["-app", "app one", "app/1"], formats.BASE32_SECRET: ["ABC", "abcdefghijklmnopq", "A1B2C3D4E5F6G7H8"]}


def metadata(r: random.Random, depth: int) -> Any:
    if depth <= 0 or r.random() < 0.3:
        return r.choice([1, 2.5, True, None, "x", "en-GB", -7, ""])
    if r.random() < 0.5:
        return [metadata(r, depth - 1) for _ in range(r.randint(0, 3))]
    return {f"k{i}": metadata(r, depth - 1) for i in range(r.randint(0, 3))}


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


# The named checks (called, not written inline): valid values, and values they refuse or change.
RULE = "def rule(user, context):\n    pass\n"
NAMED: dict[Any, tuple[Callable[[random.Random], Any], list[Any]]] = {
    schema.timestamp: (lambda r: r.choice(["2024-03-01T09:00:00+00:00", "2024-03-01T09:00:00Z",
                                           "2024-03-01T09:00:00.5+01:00", "2024-03-01T09:00:00.000001+00:00"]),
                       EDGE_TIMESTAMPS + ["x" * 65]),
    schema.ip_address: (lambda r: r.choice(["203.0.113.7", "::1", "2001:DB8::1", "10.0.0.1", "::ffff:1.2.3.4"]),
                        EDGE_ADDRESSES + ["fe80::1%eth0", "x" * 65]),
    schema.json_object: (lambda r: {"k": metadata(r, 4)}, [nested(8), nested(9), nested(12), [], "x"]),
    schema.stored_metadata: (lambda r: {"k": metadata(r, 4)},
                             [nested(8), nested(9), {"k": "\ud800"}, {"k": "x" * 16_380}, {"k": "x" * 16_370}]),
    rules_admin._source: (lambda r: RULE, ["", 1, "x" * (rules_admin.MAX_SOURCE_CHARS + 1)]),
    rules_admin._sources: (lambda r: {f"{r.randint(10, 99)}-rule": RULE for _ in range(r.randint(0, 3))},
                           [{"bad id": RULE}, {"10-a": 1}, {"10-a": RULE, "1-b": RULE}, ["10-a"]]),
    rules_admin._now: (lambda r: r.choice(["2026-11-27T10:00:00Z", "2026-11-27T10:00:00", "2026-11-27"]),
                       ["yesterday", "2026-11-27T10:00:00\n", "0001-01-01T00:00:00+01:00", 1]),
}


class BodyMaker:
    """Bodies shaped by a schema: valid ones, and mutations of them at random places."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def valid(self, check: Any) -> Any:
        r = self.random
        if isinstance(check, Obj):
            keys = list(check.fields)
            r.shuffle(keys)  # the body's order is the caller's
            body: dict[str, Any] = {}
            for key in keys:
                if key in check.required or r.random() < 0.6:
                    body[key] = self.valid(check.fields[key])
                elif r.random() < 0.15:
                    body[key] = None  # null counts as absent
            return body
        if isinstance(check, ListOf):
            size = check.max_items if check.max_items <= 8 and r.random() < 0.1 else r.randint(0, min(4, check.max_items))
            return [self.valid(check.item) for _ in range(size)]
        if isinstance(check, Text):
            return self.text(check)
        if isinstance(check, Boolean):
            return r.choice([True, False])
        if isinstance(check, Count):
            return r.choice([0, 1, 42, check.maximum])
        if isinstance(check, Degrees):
            return r.choice([0, 12.5, -check.limit, check.limit, int(check.limit), -check.limit / 3])
        if isinstance(check, Choice):
            return r.choice(list(check.values))
        return NAMED[check][0](r)

    def text(self, check: Text) -> str:
        r = self.random
        if check.pattern is not None:
            return PATTERN_SAMPLES[check.pattern](r)[:check.max_length]
        length = check.max_length if r.random() < 0.05 else r.randint(1, min(check.max_length, 30))
        value = "".join(r.choices(KIND_ALPHABETS[check.kind], k=length))
        if check.kind is TextKind.IDENTIFIER:
            value = "x" + value[1:-1] + "y" if length > 1 else "x"
        return value

    def mutate(self, check: Any, value: Any) -> Any:
        """`value` (checked by `check`) with one change somewhere inside it."""
        r = self.random
        inner = self.inner(check, value)
        if inner and r.random() < 0.8:
            holder, key, child_check = r.choice(inner)
            holder[key] = self.mutate(child_check, holder[key])
            return value
        return self.replace(check, value)

    def inner(self, check: Any, value: Any) -> list[tuple[Any, Any, Any]]:
        if isinstance(check, Obj) and type(value) is dict:
            return [(value, key, check.fields[key]) for key in value if key in check.fields and value[key] is not None]
        if isinstance(check, ListOf) and type(value) is list:
            return [(value, index, check.item) for index in range(len(value))]
        return []

    def replace(self, check: Any, value: Any) -> Any:
        r = self.random
        if r.random() < 0.25:
            return r.choice(WRONG_TYPES)
        if isinstance(check, Obj):
            return self.change_object(check, value)
        if isinstance(check, ListOf):
            item, items = self.valid(check.item), value if type(value) is list else []
            return r.choice([[item] * (check.max_items + 1), [item] * check.max_items, [*items, None], [*items, 1],
                             [*items, [item]], [items]])
        if isinstance(check, Text):
            return self.change_text(check, value)
        if isinstance(check, Count):
            return r.choice([-1, check.maximum + 1, True, False, 1.0, "1", 2**63])
        if isinstance(check, Degrees):
            return r.choice([check.limit + 1e-9, -check.limit - 1, float("nan"), float("-inf"), True, "1", 10**400])
        if isinstance(check, Boolean):
            return r.choice([0, 1, "true", 1.0])
        if isinstance(check, Choice):
            return r.choice([*check.values, "OTP", "", "recovery", "hotp", 1])
        return r.choice(NAMED[check][1])

    def change_object(self, check: Obj, value: Any) -> Any:
        r = self.random
        if type(value) is not dict:
            return self.valid(check)
        changed = dict(value)
        how = r.randrange(6)
        if how == 0:
            changed[r.choice(["zzz", "user", "ip", "password", "Name", "name ", ""])] = r.choice([1, None, "x"])
        elif how == 1 and check.required & changed.keys():
            del changed[r.choice(sorted(check.required & changed.keys()))]
        elif how == 2 and changed:
            changed[r.choice(list(changed))] = None
        elif how == 3:
            changed = dict(reversed(list(changed.items())))  # the same fields, in another order
        elif how == 4:
            for key in check.fields:  # every field present, each refused in turn later
                changed.setdefault(key, self.valid(check.fields[key]))
        else:
            changed[1] = "x"  # a key that is not text (only from Python callers)
        return changed

    def change_text(self, check: Text, value: Any) -> Any:
        r = self.random
        text = value if type(value) is str and value else "x"
        hidden = r.choice(HIDDEN[check.kind])
        return r.choice([
            "", "a" * check.max_length, "a" * (check.max_length + 1), text + hidden, hidden + text,
            text[:1] + hidden + text[1:], " " + text, text + " ", text[:1] + " " + text[1:],
            *(PATTERN_MISSES.get(check.pattern, []) if check.pattern is not None else []),
            text.upper(), text.lower(), b"x", 7,
        ])


class Outcome:
    """What a check answered, comparable: the checked value with its order, its types and which of
    its lists and dicts are the body's own (only free data is), or the refusal."""

    def __init__(self, check: Callable[[Any, str], Any], body: Any, path: str = "") -> None:
        try:
            self.answer: Any = ("accepted", typed(check(body, path), set(map(id, containers(body)))))
        except InvalidRequest as refused:
            self.answer = ("refused", type(refused).__name__, refused.field, refused.message)

    @property
    def accepted(self) -> bool:
        return bool(self.answer[0] == "accepted")


def typed(value: Any, body_ids: set[int]) -> Any:
    """`value` with every dict's order, every scalar's type (1 == 1.0) and whether each container
    is one of the body's (`body_ids`) made part of equality."""
    if type(value) is dict:
        return ("dict", id(value) in body_ids, [(key, typed(child, body_ids)) for key, child in value.items()])
    if type(value) is list:
        return ("list", id(value) in body_ids, [typed(child, body_ids) for child in value])
    return (type(value).__name__, repr(value) if type(value) is float else value)  # repr: nan == nan


def containers(value: Any) -> Iterator[Any]:
    if type(value) in (dict, list):
        yield value
        for child in value.values() if type(value) is dict else value:
            yield from containers(child)


class FellBack(Exception):
    pass


def refusing_reference(value: Any, path: str) -> Any:
    raise FellBack


def bodies(name: str, check: Obj) -> Iterator[Any]:
    maker = BodyMaker(sum(map(ord, name)))
    for index in range(BODIES_PER_SCHEMA):
        body = maker.valid(check)
        for _ in range(index % 4):  # a quarter left valid, the rest with one to three changes
            body = maker.mutate(check, body)
        yield body
    yield from (None, [], "body", [maker.valid(check)])


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_compiled_check_answers_as_the_reference_on_generated_bodies(name: str) -> None:
    check = SCHEMAS[name]
    fast_only = compile_check(check, refusing_reference)
    counts = {"accepted": 0, "refused": 0}
    for body in bodies(name, check):
        kept = copy.deepcopy(body)
        expected = Outcome(check.reference, body)
        assert Outcome(check, body).answer == expected.answer, body
        assert Outcome(check, body, "outer").answer == Outcome(check.reference, body, "outer").answer, body
        if expected.accepted:
            assert Outcome(fast_only, body).answer == expected.answer, body  # no fallback on a valid body
        else:
            with pytest.raises(FellBack):  # the fast path itself refuses
                fast_only(body, "")
        assert typed(body, set()) == typed(kept, set())  # neither reading changes the body it checks
        counts[expected.answer[0]] += 1
    # The generator must keep producing both, or the comparison proves little.
    assert counts["accepted"] > BODIES_PER_SCHEMA // 10, counts
    assert counts["refused"] > BODIES_PER_SCHEMA // 2, counts


def declared(check: Any) -> Iterator[Any]:
    yield check
    if isinstance(check, Obj):
        for child in check.fields.values():
            yield from declared(child)
    elif isinstance(check, ListOf):
        yield from declared(check.item)


def test_the_generator_knows_every_pattern_and_named_check_the_schemas_use() -> None:
    """A schema that gains a pattern or a named check makes the generator learn it first."""
    used = [check for body in SCHEMAS.values() for check in declared(body)]
    patterns = {check.pattern for check in used if isinstance(check, Text) and check.pattern is not None}
    assert patterns <= PATTERN_SAMPLES.keys()
    named = {check for check in used if not isinstance(check, (Obj, ListOf, Text, Boolean, Count, Degrees, Choice))}
    assert named <= NAMED.keys()


@pytest.mark.parametrize("key", ["a'b", 'a"b', "a\nb", "a\\", "'); raise SystemExit('injected') #",
                                 "__import__('os').system('false')", "{x}", "\u202e", ""])
def test_field_names_are_data_in_the_generated_source_never_code(key: str) -> None:
    check = Obj({key: schema.count, "other": schema.text(4)}, frozenset({key}))
    assert check({key: 3, "other": "ok"}, "") == {key: 3, "other": "ok"}
    assert check({"other": "ok", key: 3}, "") == {"other": "ok", key: 3}
    with pytest.raises(InvalidRequest) as missing:
        check({"other": "ok"}, "top")
    assert (missing.value.field, missing.value.message) == (f"top.{key}", "is required")
    source, _ = generate(check)
    assert repr(key) in source


def test_only_text_and_integers_are_ever_written_into_the_source() -> None:
    assert literal("a'b") == repr("a'b")
    assert literal(10**12) == "1000000000000"
    for value in (1.5, True, None, b"x", re.compile("x")):
        with pytest.raises(TypeError):
            literal(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Obj({1: schema.count})  # type: ignore[dict-item]


def test_a_refusal_is_the_references_own_error_without_the_fast_paths_context() -> None:
    with pytest.raises(InvalidRequest) as refused:
        schema.parse_evaluate({"user": {"user_id": "u", "logins_count": -1, "groups": ["a", "b\n"]}})
    assert (refused.value.field, refused.value.message) == ("user.logins_count", "must be a non-negative integer")
    assert refused.value.__context__ is None


def test_null_fields_are_left_out_and_the_body_order_is_kept() -> None:
    body = {"context": {"device_id": "d", "ip": None, "action": "login"}, "user": {"user_id": "u", "factors": ["totp"]}}
    checked = schema.parse(schema.BODIES["evaluate"], body)
    assert list(checked) == ["context", "user"]
    assert list(checked["context"].items()) == [("device_id", "d"), ("action", "login")]
    assert checked["user"]["factors"] == ["otp"]
    assert body["context"]["ip"] is None and body["user"]["factors"] == ["totp"]  # the body itself is untouched
