"""The module stand-ins: the stdlib's answers for documented arguments, refusals for
look-alikes, and no trace left in any process-wide cache."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from sandbox import facades

VALID_NETWORKS: list[Any] = [
    "192.0.2.0/24", "192.0.2.0/255.255.255.0", "192.0.2.0/0.0.0.255", "192.0.2.0/024", "192.0.2.7",
    ("192.0.2.0", 24), ("192.0.2.0", "24"), ("192.0.2.0",), 3221225984, "2001:db8::/32", ("2001:db8::", 48),
    "0.0.0.0/0", "::/0", ipaddress.ip_address("192.0.2.1"),
]


@pytest.mark.parametrize("value", VALID_NETWORKS, ids=repr)
def test_documented_network_arguments_give_the_stdlib_s_answer(value: Any) -> None:
    assert facades.ip_network(value) == ipaddress.ip_network(value)
    assert facades.ip_network(value, False) == ipaddress.ip_network(value, False)


@pytest.mark.parametrize("value", ["192.0.2.1/24", ("2001:db8::1", 64), "10.1.2.3"], ids=repr)
def test_documented_interface_arguments_give_the_stdlib_s_answer(value: Any) -> None:
    assert facades.ip_interface(value) == ipaddress.ip_interface(value)


@pytest.mark.parametrize(("value", "error"), [
    (("0.0.0.0", 8.0), TypeError), (("0.0.0.0", True), TypeError), (("0.0.0.0", None), TypeError),
    ("0.0.0.0/" + "0" * 4 + "8", ValueError), (("0.0.0.0", "0008"), ValueError), ("0.0.0.0/" + "9" * 5000, ValueError),
    ("0.0.0.0/٨", ValueError), ("0.0.0.0/ 8", ValueError), ("0.0.0.0/+8", ValueError), ("0.0.0.0/33", ValueError),
    ("2001:db8::/255.255.0.0", ValueError), ("192.0.2.0/24/1", ValueError), (8.0, TypeError), (b"\x00" * 4, TypeError),
    ("192.0.2.1/24", ValueError),  # host bits set under strict, as the stdlib
], ids=repr)
def test_look_alike_network_arguments_are_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        facades.ip_network(value)


def test_no_rule_argument_changes_the_netmask_caches() -> None:
    caches = (ipaddress.IPv4Network._netmask_cache, ipaddress.IPv6Network._netmask_cache)  # type: ignore[attr-defined]
    before = [dict(cache) for cache in caches]
    for value in [*VALID_NETWORKS, "10.0.0.0/255.0.0.0", ("10.0.0.0", "008"), "10.0.0.0/000"]:
        facades.ip_network(value, False)
    for value in ["10.0.0.1/255.255.0.0", ("2001:db8::1", "64")]:
        facades.ip_interface(value)

    assert [dict(cache) for cache in caches] == before
    assert set(range(33)) <= set(before[0]) and set(range(129)) <= set(before[1])


def test_the_classes_stand_ins_build_the_classes() -> None:
    assert facades.IPv4Network("192.0.2.0/24") == ipaddress.IPv4Network("192.0.2.0/24")
    assert facades.IPv6Address("2001:db8::1") == ipaddress.IPv6Address("2001:db8::1")
    assert facades.IPv4Address(3221225985) == ipaddress.IPv4Address("192.0.2.1")
    with pytest.raises(ValueError):
        facades.IPv4Network("2001:db8::/32")
    with pytest.raises(TypeError):
        facades.IPv4Address(1.5)


@pytest.mark.parametrize("flags", [0, re.I, re.I | re.M, re.S | re.X | re.A, int(re.I), re.NOFLAG, re.U])
def test_the_facade_s_own_flags_compile_as_the_stdlib_does(flags: int) -> None:
    compiled = facades.compile(r"a.b", flags)
    assert (compiled.pattern, compiled.flags) == (r"a.b", re.compile(r"a.b", flags).flags)


@pytest.mark.parametrize("flags", [0.0, 2.0, True, False, None, "i", re.DEBUG, 1, re.LOCALE, -1, 1 << 40],
                         ids=repr)
def test_flags_that_are_not_the_facade_s_own_constants_are_refused(flags: Any) -> None:
    with pytest.raises(ValueError, match="flags must be 0 or a combination of"):
        facades.compile("a", flags)
    with pytest.raises(ValueError, match="flags must be 0 or a combination of"):
        facades.search("a", "a", flags)


def test_compiling_never_reads_or_writes_re_s_module_cache() -> None:
    pattern = "facade-only-4c1d[0-9]+"
    cache = re._cache  # type: ignore[attr-defined]
    before = dict(cache)

    compiled = facades.compile(pattern)
    assert facades.compile(pattern) is compiled
    assert facades.fullmatch(pattern, "facade-only-4c1d42") is not None

    assert dict(cache) == before


def test_a_compiled_pattern_passes_through_and_other_types_are_refused() -> None:
    compiled = facades.compile("x+")
    assert facades.compile(compiled) is compiled
    assert facades.findall(compiled, "xx x") == ["xx", "x"]
    with pytest.raises(ValueError):
        facades.compile(compiled, re.I)
    for wrong in (b"x", 1, None, ["x"]):
        with pytest.raises(TypeError):
            facades.compile(wrong)
    with pytest.raises(TypeError):
        facades.match("x", b"x")
    with pytest.raises(ValueError):
        facades.compile("x" * (facades.MAX_PATTERN_LENGTH + 1))


def test_patterns_are_cached_within_an_evaluation_and_forgotten_when_the_next_one_starts() -> None:
    facades.forget_patterns()
    pattern = "".join(["per-evaluation-", "9d2e"])
    first = facades.compile(pattern)
    assert facades.compile(pattern) is first and first.pattern is pattern

    facades.forget_patterns()
    again = "".join(["per-evaluation-", "9d2e"])
    assert facades.compile(again) is not first
    assert facades.compile(again).pattern is again


def test_the_flag_constants_are_plain_ints_so_combining_them_makes_no_enum_member() -> None:
    flags = facades.RE_MEMBERS
    assert {type(flags[name]) for name in ("I", "IGNORECASE", "M", "S", "X", "A", "NOFLAG")} == {int}
    members = len(re.RegexFlag._value2member_map_)
    assert facades.compile("a", flags["I"] | flags["M"]).flags & re.I
    for extra in range(1000):
        _ = flags["I"] | (extra << 20)
    assert len(re.RegexFlag._value2member_map_) == members


def test_findall_and_split_are_counted_as_they_are_produced() -> None:
    with pytest.raises(ValueError, match="more than 100000"):
        facades.findall("", "a" * 200_000)
    with pytest.raises(ValueError, match="more than 100000"):
        facades.split("(,)", "," * 60_000)
    with pytest.raises(ValueError, match="at most 100 groups"):
        facades.compile("()" * 101)
    assert facades.findall(r"(\w)(\d)?", "a1 b") == re.findall(r"(\w)(\d)?", "a1 b")
    assert facades.findall(r"\w(\d)", "a1 b2") == ["1", "2"]
    assert facades.split(r"(,)", "a,b,c", 1) == ["a", ",", "b,c"]
    assert facades.bounded_split(re.compile(","), "a,b", 0) == ["a", "b"]


def test_time_zone_names_are_short() -> None:
    import datetime

    assert facades.timezone(datetime.timedelta(hours=1), "CET").tzname(None) == "CET"
    assert facades.timezone(datetime.timedelta(0)) is datetime.UTC
    with pytest.raises(ValueError):
        facades.timezone(datetime.timedelta(0), "a" * 65)


# -- re.sub / re.subn ----------------------------------------------------------------------------

SUBSTITUTIONS: list[tuple[str, Any, str, int]] = [
    (r"\d", "#", "a1b22c", 0), (r"(\w+)@(\w+)", r"\2 at \1", "alice@example bob@test", 0),
    (r"(?P<user>\w+)@", r"\g<user>#", "alice@x", 0), (r"(\w)(\w)", r"\g<2>\g<1>", "abcd", 0),
    ("a", "b", "aaaa", 2), ("x*", "-", "abxd", 0), ("", "-", "abc", 0), (r"(a)|b", r"[\1]", "ab", 0),
    ("a", r"\n\t\\\a\b\f\v\r", "a", 0), ("a", r"\101\0\07\1234", "a", 0), ("a", "\\-\\.", "aa", 0), ("(.)", r"\1\1", "ab", 0),
    ("a", "é", "bab", 0), (r"(?P<x>a)", r"\g<0>!", "a", 0), ("a", "b", "aaa", -1), ("a", "", "banana", 0),
    ("[aeiou]", lambda found: found.group(0).upper(), "education", 0), ("q", "z", "abc", 0),
]


@pytest.mark.parametrize(("pattern", "repl", "string", "count"), SUBSTITUTIONS, ids=repr)
def test_substitutions_give_the_stdlib_s_answer(pattern: str, repl: Any, string: str, count: int) -> None:
    assert facades.sub(pattern, repl, string, count) == re.sub(pattern, repl, string, count=count)
    assert facades.subn(pattern, repl, string, count) == re.subn(pattern, repl, string, count=count)
    compiled = facades.compile(pattern)
    assert facades.bounded_sub(compiled, repl, string, count, 10**6) == (re.sub(pattern, repl, string, count=count),
                                                                         re.subn(pattern, repl, string, count=count)[1])


@pytest.mark.parametrize(("pattern", "repl"), [
    ("(a)", r"\2"), ("a", r"\q"), ("(?P<x>a)", r"\g<y>"), ("a", r"\g<x"), ("a", "\\"), ("a", r"\g<>"),
    ("a", r"\g<1a>"), ("a", r"\400"), ("a", r"\g<-1>"), ("a", r"\gx"), ("(a)", r"\g<2>"),
    ("(a)", r"\10"),
], ids=repr)
def test_bad_templates_fail_as_the_stdlib_s(pattern: str, repl: str) -> None:
    with pytest.raises(Exception) as expected:
        re.sub(pattern, repl, "a")
    with pytest.raises(type(expected.value)) as raised:
        facades.sub(pattern, repl, "a")
    assert str(raised.value) == str(expected.value)


def test_substitution_results_are_checked_as_they_grow() -> None:
    from sandbox.errors import SizeExceeded

    assert facades.bounded_sub(facades.compile("a"), "bb", "a" * 50, 0, 100) == ("b" * 100, 50)
    calls = []

    def long_replacement(found: re.Match[str]) -> str:
        calls.append(found)
        return "x" * 40

    with pytest.raises(SizeExceeded, match="substitution result over 100 characters"):
        facades.bounded_sub(facades.compile(""), long_replacement, "a" * 1000, 0, 100)
    assert len(calls) == 3
    with pytest.raises(SizeExceeded):
        facades.bounded_sub(facades.compile("(a+)"), r"\1" * 1000, "a" * 1000, 0, 10**5)


def test_substitution_arguments_are_taken_as_documented() -> None:
    with pytest.raises(TypeError, match="expected str instance, int found"):
        facades.sub("a", lambda found: 1, "a")
    with pytest.raises(TypeError, match="count must be an int"):
        facades.sub("a", "b", "a", 1.0)
    with pytest.raises(TypeError):
        facades.sub("a", b"b", "a")
    with pytest.raises(TypeError):
        facades.sub("a", "b", b"a")


def test_templates_never_reach_the_stdlib_s_template_cache() -> None:
    re._compile_repl.cache_clear()  # type: ignore[attr-defined]
    facades.sub("(a)", r"[\1]", "aa")
    assert re._compile_repl.cache_info().currsize == 0  # type: ignore[attr-defined]
