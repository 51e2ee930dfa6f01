"""What rules see as the text of objects: plain data as Python prints it, everything else
neutral (no memory addresses), and never unbounded."""

from __future__ import annotations

import datetime
import ipaddress
import re
import types

import pytest

from sandbox.text import describe, display, exception_args, join_display, printable, valid_unicode
from tests.conftest import SyncRunner, rule_payload

PLAIN_VALUES = [
    None, True, 0, -7, 2**70, 1.5, float("inf"), "", "text with 'quotes' and \"more\"", "ünïcødé \n\t",
    [], [1, "a", None], (), (1,), (1, 2), set(), {3}, frozenset(), frozenset({"x"}), {}, {"k": [1, {"n": ()}]},
    types.MappingProxyType({"roles": ("staff",)}), {"a": 1}.keys(), {"a": 1}.values(), {"a": 1}.items(),
    range(3), datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.UTC), datetime.date(2026, 1, 1),
    datetime.timedelta(hours=1), ipaddress.ip_address("192.0.2.1"), ipaddress.ip_network("2001:db8::/32"),
    re.compile("a+"), [[[]]],
]


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_plain_data_reads_exactly_as_python_prints_it(value: object) -> None:
    assert describe(value, 10_000) == repr(value)
    assert display(value, 10_000) == str(value)


def test_a_self_containing_list_reads_as_python_prints_it() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert describe(loop, 100) == repr(loop) == "[1, [...]]"


def test_depth_and_length_are_bounded_and_the_text_says_it_was_cut() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    row = [0] * 100_000

    assert describe(deep, 1000) == "[" * 32 + "[...]" + "]" * 32
    assert describe([row] * 100_000, 50) == ("[[" + "0, " * 20)[:50] + "..."


def test_exception_text_loses_the_addresses_the_interpreter_wrote() -> None:
    def hidden() -> None: ...

    with pytest.raises(ValueError) as caught:
        [].index(hidden)

    assert " at 0x" in str(caught.value)
    assert exception_args(caught.value) == ("<function test_exception_text_loses_the_addresses_the_interpreter_wrote."
                                            "<locals>.hidden> is not in list",)
    assert "0x" not in display(caught.value, 1000)


def test_lone_surrogates_are_caught_and_escaped_for_the_sandbox_s_own_messages() -> None:
    assert valid_unicode("plain ascii") and valid_unicode("ünïcødé")
    assert not valid_unicode("bad \ud800")
    assert printable("bad \ud800") == "bad \\ud800"


NEUTRAL_RULE = '''
def helper():
    pass
def rule(data, out):
    generator = (item for item in [1])
    try:
        [].index(helper)
    except ValueError as problem:
        error_text = str(problem)
        error_args = problem.args
    print(helper, [helper], len, [].append)
    out["texts"] = [
        repr(helper), str(helper), f"{helper}", f"{helper!r}", f"{helper!s}", f"{helper!a}", f"{[helper]:>10}",
        str([helper, generator]), repr(generator), repr(len), repr(list), repr([].append), repr(re.compile),
        repr(str.lower), repr("".join), repr(datetime.datetime(2026, 1, 1).strftime), repr(lambda: 1),
        error_text, error_args[0], printed,
    ]
'''


def test_functions_generators_and_methods_show_no_address_anywhere_a_rule_can_turn_them_into_text(
        scratch_runner: SyncRunner) -> None:
    report = scratch_runner.run({"neutral": NEUTRAL_RULE}, {"input": {}})

    assert [(t.outcome, t.error) for t in report.trace] == [("ok", None)]
    assert report.result is not None
    texts = report.result["out"]["texts"]
    assert [text for text in texts if "0x" in text] == []
    assert texts[:8] == ["<function helper>", "<function helper>", "<function helper>", "<function helper>",
                         "<function helper>", "<function helper>", "[<function helper>]",
                         "[<function helper>, <generator object <genexpr>>]"]
    assert report.trace[0].logs == ("<function helper> [<function helper>] <built-in function len> "
                                    "<built-in method append of list object>",)


def test_f_strings_keep_their_format_specs_for_plain_values(scratch_runner: SyncRunner) -> None:
    source = '''
def rule(data, out):
    when = datetime.datetime(2026, 11, 27, 10, 5)
    out["texts"] = [f"{3.14159:.2f}", f"{42:>5}", f"{'x':*^5}", f"{when:%Y-%m-%d %H:%M}", f"{when}", f"{None}",
                    f"{ipaddress.ip_address('192.0.2.1')}", f"{7:08b}", f"{'q'!r}", f"{1.5!s:>6}"]
'''
    report = scratch_runner.run({"formats": source}, {"input": {}})

    assert report.result is not None
    assert report.result["out"]["texts"] == ["3.14", "   42", "**x**", "2026-11-27 10:05", "2026-11-27 10:05:00",
                                             "None", "192.0.2.1", "00000111", "'q'", "   1.5"]


def test_context_log_shows_rule_objects_neutrally_and_host_objects_by_their_short_names(
        rule_runner: SyncRunner) -> None:
    source = '''
def rule(user, context):
    context.log(rule, [rule], user, context.multifactor, context.claims, user.app_metadata)
'''
    report = rule_runner.run({"logger": source}, rule_payload())

    assert [(t.outcome, t.logs) for t in report.trace] == [
        ("ok", ("<function rule> [<function rule>] <user> <multifactor> <claims> "
                "{'roles': ('staff',), 'plan': 'pro'}",))]


def test_joined_text_is_built_no_longer_than_its_limit() -> None:
    big = "x" * 1_000_000
    assert join_display(tuple([big] * 200), " ", 100) == "x" * 100
    assert join_display(("a", 1, None), "-" * 10, 8) == "a-------"
    assert join_display((), big, 10) == ""


def test_context_log_and_print_of_many_huge_parts_keep_to_the_trace_s_size(rule_runner: SyncRunner) -> None:
    source = '''
def rule(user, context):
    big = "y" * 1000000
    context.log(*([big] * 200))
    print(*([big] * 200), sep=big)
'''
    report = rule_runner.run({"loud": source}, rule_payload())

    assert [t.outcome for t in report.trace] == ["ok"]
    assert sum(len(line) for line in report.trace[0].logs) <= 16_384
