"""The request schema's fast paths answer as the slow ones: the same values, the same refusals."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.errors import InvalidRequest
from engine.http import schema


def refusal(check: schema.Check, value: Any, path: str = "") -> tuple[str | None, str]:
    with pytest.raises(InvalidRequest) as refused:
        check(value, path)
    return refused.value.field, refused.value.message


def slow_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


EDGE_ADDRESSES = ["0.0.0.0", "255.255.255.255", "203.0.113.7", "1.2.3.4", "10.0.0.1", "256.1.1.1", "01.2.3.4",
                  "1.2.3.04", "1.2.3.00", "00.0.0.0", "1.2.3", "1.2.3.4.5", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\n",
                  "1..3.4", "1.2.3.", "\u0661.2.3.4", "1.2.3.\uff14", "+1.2.3.4", "1.2.3.4/32", "0x7f.0.0.1",
                  "2130706433", "::1", "::ffff:1.2.3.4", "2001:DB8::1", "2001:db8:0:0:0:0:0:1", "fe80::1"]


@pytest.mark.parametrize("text", EDGE_ADDRESSES)
def test_an_address_is_normalised_or_refused_as_ipaddress_does(text: str) -> None:
    expected = slow_ip(text)
    if expected is None:
        assert refusal(schema.ip_address, text, "context.ip") == ("context.ip", "must be an IPv4 or IPv6 address")
    else:
        assert schema.ip_address(text, "context.ip") == expected


def test_random_dotted_quads_are_normalised_or_refused_as_ipaddress_does() -> None:
    generator = random.Random(11)
    octets = ["0", "00", "01", "1", "9", "10", "09", "99", "100", "199", "200", "249", "250", "255", "256", "299", "300",
              "999", "0255", ""]
    for _ in range(20_000):
        text = ".".join(generator.choice(octets) for _ in range(4))
        expected = slow_ip(text)
        if expected is None:
            assert refusal(schema.ip_address, text)[1] == "must be an IPv4 or IPv6 address", text
        else:
            assert schema.ip_address(text, "") == expected, text


def slow_timestamp(text: str) -> str | None:
    """What the schema wrote for every accepted time before its canonical-form shortcut."""
    try:
        parsed = datetime.fromisoformat(text)
        instant = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    if instant is None or not schema.EARLIEST_TIMESTAMP <= instant <= schema.LATEST_TIMESTAMP:
        return None
    return instant.isoformat()


EDGE_TIMESTAMPS = ["2024-03-01T09:00:00+00:00", "2024-03-01T09:00:00.000000+00:00", "2024-03-01T09:00:00.000001+00:00",
                   "2024-03-01T09:00:00.100000+00:00", "2024-03-01T09:00:00.5+00:00", "2024-03-01T09:00:00.123+00:00",
                   "2024-03-01T09:00:00Z", "2024-03-01 09:00:00+00:00", "2024-03-01T09:00+00:00",
                   "2024-03-01T09:00:00-00:00", "2024-03-01T09:00:00+01:00", "2024-03-01T09:00:00+00:00:00",
                   "2024-03-01T09:00:00+00:00:00.000001", "20240301T090000+0000", "2024-03-01T24:00:00+00:00",
                   "2024-02-30T09:00:00+00:00", "2024-03-01T09:00:60+00:00", "1900-01-01T00:00:00+00:00",
                   "1899-12-31T23:59:59.999999+00:00", "9000-12-31T23:59:59+00:00", "9000-12-31T23:59:59.000001+00:00",
                   "2024-03-01T09:00:00", "2024-03-01T09:00:00+00:00\n", "\u0662024-03-01T09:00:00+00:00"]


@pytest.mark.parametrize("text", EDGE_TIMESTAMPS)
def test_a_timestamp_is_normalised_or_refused_as_isoformat_writes_it(text: str) -> None:
    expected = slow_timestamp(text)
    if expected is None:
        assert refusal(schema.timestamp, text, "user.last_login")[0] == "user.last_login"
    else:
        assert schema.timestamp(text, "user.last_login") == expected


def test_random_timestamps_are_normalised_as_isoformat_writes_them() -> None:
    generator = random.Random(12)
    fractions = ["", ".000000", ".000001", ".100000", ".999999", ".5", ".123", ".1234567"]
    offsets = ["+00:00", "Z", "-00:00", "+01:00", "-13:30", "+23:59", "+00:00:01", ""]
    for _ in range(20_000):
        text = (f"{generator.randint(1890, 9010):04}-{generator.randint(1, 12):02}-{generator.randint(1, 31):02}"
                f"{generator.choice('T ')}{generator.randint(0, 24):02}:{generator.randint(0, 59):02}"
                f":{generator.randint(0, 60):02}{generator.choice(fractions)}{generator.choice(offsets)}")
        expected = slow_timestamp(text)
        if expected is None:
            assert refusal(schema.timestamp, text)[0] == "", text
        else:
            assert schema.timestamp(text, "") == expected, text


def test_the_first_refused_list_item_is_named_by_its_index() -> None:
    groups = schema.list_of(schema.text(8), 10)
    assert groups(["a", "b"], "user.groups") == ["a", "b"]
    assert refusal(groups, ["a", "b", "", "c\n"], "user.groups") == (
        "user.groups[2]", "must be a string of 1 to 8 characters")


def test_a_refused_field_of_an_object_in_a_list_is_named_by_its_index_and_name() -> None:
    body = {"user": {"user_id": "u"}, "context": {"authentication_methods": [
        {"name": "pwd", "timestamp": "2026-01-01T00:00:00Z"}, {"name": "otp", "timestamp": "yesterday"}]}}
    with pytest.raises(InvalidRequest) as refused:
        schema.parse_evaluate(body)
    assert refused.value.field == "context.authentication_methods[1].timestamp"


def test_an_unknown_field_is_named_before_a_missing_one_and_a_refused_value() -> None:
    check = schema.obj({"a": schema.count, "b": schema.count, "c": schema.count}, frozenset({"b", "c"}))
    assert refusal(check, {"a": -1, "y": 1, "x": 1}, "top") == ("top.y", "is not a known field")
    assert refusal(check, {"a": -1}, "top") == ("top.b", "is required")
    assert refusal(check, {"a": -1, "b": None, "c": 1}) == ("b", "is required")
    assert refusal(check, {"c": -1, "b": 1, "a": -2}) == ("c", "must be a non-negative integer")
    assert refusal(check, [], "top") == ("top", "must be a JSON object")
    assert refusal(check, [], "") == (None, "must be a JSON object")


def test_null_fields_are_left_out_of_the_checked_object() -> None:
    check = schema.obj({"a": schema.count, "b": schema.count}, frozenset({"b"}))
    assert check({"a": None, "b": 2}, "") == {"b": 2}


def nests_deeper_than(value: Any, depth: int) -> bool:
    """The depth rule as first written, a call per value: anything at depth < 0 is too deep."""
    if depth < 0:
        return True
    children = value.values() if type(value) is dict else value if type(value) is list else ()
    return any(nests_deeper_than(child, depth - 1) for child in children)


def random_json(generator: random.Random, depth: int) -> Any:
    if depth == 0 or generator.random() < 0.25:
        return generator.choice([1, "x", None, True, 2.5])
    children = [random_json(generator, depth - 1) for _ in range(generator.randint(0, 3))]
    return children if generator.random() < 0.5 else {f"k{index}": child for index, child in enumerate(children)}


def test_metadata_is_refused_past_eight_levels_exactly_as_the_recursive_rule_says() -> None:
    generator = random.Random(13)
    seen = set()
    for _ in range(5_000):
        value = {"k": random_json(generator, generator.randint(0, 12))}
        too_deep = nests_deeper_than(value, schema.MAX_METADATA_DEPTH)
        seen.add(too_deep)
        if too_deep:
            assert refusal(schema.json_object, value, "user.app_metadata") == (
                "user.app_metadata", "nests more than 8 levels")
        else:
            assert schema.json_object(value, "user.app_metadata") is value
    assert seen == {True, False}


@pytest.mark.parametrize(("depth", "allowed"), [(7, True), (8, True), (9, False), (20, False)])
def test_metadata_may_hold_eight_levels_of_lists_and_objects(depth: int, allowed: bool) -> None:
    value: Any = 1
    for level in range(depth - 1):
        value = {"n": value} if level % 2 else [value]
    body = {"n": value}  # `depth` lists and objects, the metadata object included, around the 1
    assert nests_deeper_than(body, schema.MAX_METADATA_DEPTH) is not allowed
    if allowed:
        assert schema.json_object(body, "m") is body
    else:
        assert refusal(schema.json_object, body, "m") == ("m", "nests more than 8 levels")
