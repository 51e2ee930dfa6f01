"""%-formatting and str.format in rules: CPython's text for benign input, on both runners;
CPython's errors for mistakes; the sandbox's neutral text for objects (attacks.py has the refusals)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import math
import re
from typing import Any

import pytest

from tests.conftest import SyncRunner

# Each expression is run inside a rule and by CPython; the results must be equal.
PERCENT = [
    '"%s %d %r %f %x" % ("a", 42, "b", 1.5, 255)',
    '"%i %o %e %g %%" % (7, 8, 12345.678, 0.0001)',
    '"%(name)s is %(age)d" % {"name": "alice", "age": 30}',
    '"%(a)s %(a)r %(b)05.1f" % {"a": "x", "b": 2.25}',
    '"%s" % "single"',
    '"%s" % 5',
    '"%s" % (("nested", "tuple"),)',
    '"%5.2f|%-10s|%*d|%-*d|%.*f" % (3.14159, "left", 6, 42, 4, 7, 2, 2.71828)',
    '"%+d % d %05d %#x %#o %X %E %G" % (5, 5, 42, 255, 8, 255, 1e20, 1e-20)',
    '"%c%c" % (65, "b")',
    '"%r" % ("it\'s",)',
    '"%a %a" % ("café", "x")',
    '"%s and %s" % (None, True)',
    '"%.3s|%10.4s|%-6r|" % ("abcdef", "abcdef", "ab")',
    '"%s %s" % ([1, "x"], {"k": (1, 2.5)})',
    '"%s" % {"k": 1}',
    '"no fields" % {"k": 1}',
    '"100%% sure" % ()',
    '"%d %d %x" % (3.99, True, -255)',
    '"%.0f %.10f %s %g" % (2.5, 1 / 3, 1e100, 1e100)',
    '"%s" % datetime.date(2026, 11, 27)',
    '"%s|%r" % (ipaddress.ip_address("192.0.2.1"), ipaddress.ip_network("192.0.2.0/24"))',
    '"%3d%%" % 42',
    '"%.*f|%*s|" % (-1, 1.5, -3, "a")',
]
BRACES = [
    '"{} {}".format("a", "b")',
    '"{0} {1} {0}".format("a", "b")',
    '"{name}!".format(name="x")',
    '"{:>10}|{:<10}|{:^10}|".format("r", "l", "c")',
    '"{:*^9}".format("mid")',
    '"{:.2f} {:+.3e} {:,} {:_} {:08.3f} {:%}".format(3.14159, 12345.678, 1234567, 1234567, -3.14159, 0.25)',
    '"{:x} {:X} {:o} {:b} {:#x} {:#b} {:d}".format(255, 255, 8, 5, 255, 5, True)',
    '"{!r} {!s} {!a}".format("q", "s", "é")',
    '"{:>{w}}|".format("x", w=5)',
    '"{:{}}|".format("x", "^7")',
    '"{:{}.{}f}|".format(3.14159, 10, 2)',
    '"{0:{1}}".format(3, "03d")',
    '"{{literal}} {}".format(1)',
    '"{} {} {}".format(None, [1, "a"], (2,))',
    '"{:%Y-%m-%d %H:%M}".format(datetime.datetime(2026, 11, 27, 10, 30))',
    '"{:%d/%m}".format(datetime.date(2026, 1, 2))',
    '"{} {}".format(datetime.timedelta(hours=1), ipaddress.ip_address("192.0.2.1"))',
    '"{0}-{0!r}".format("x")',
    '"{a} {b}".format_map({"a": 1, "b": 2})',
    '"{:,.2f} {:e} {:>5}".format(1234567.891, 0.000123, 12)',
    '"{:>6.2%}".format(0.5)',
    '"{}".format(3.0)',
]
SUBSTITUTIONS = [
    're.sub(r"\\d", "#", "a1b22c")',
    're.sub(r"(\\w+)@(\\w+)", r"\\2 at \\1", "alice@example bob@test")',
    're.sub(r"(?P<user>\\w+)@", r"\\g<user>#", "alice@x")',
    're.sub(r"(\\w)(\\w)", r"\\g<2>\\g<1>", "abcd")',
    're.sub("a", "b", "aaaa", count=2)',
    're.sub("a", "b", "aaaa", 2)',
    're.subn("a", "b", "aaaa")',
    're.sub("x*", "-", "abxd")',
    're.sub("", "-", "abc")',
    're.sub(r"\\s+", " ", "  lots   of   space ")',
    're.sub("A", "b", "aAa", flags=re.IGNORECASE)',
    're.compile(r"\\d+").sub("N", "a12b345")',
    're.compile(r"\\d+").subn("N", "a12b345", 1)',
    're.compile(r"\\d+").sub("N", "a12b345", count=1)',
    're.sub(r"(a)|b", r"[\\1]", "ab")',
    're.sub("a", r"\\n\\t\\\\", "a")',
    're.sub("a", r"\\101\\0", "a")',
    're.sub("a", "\\\\-", "a")',
    're.sub("(.)", r"\\1\\1", "ab")',
    're.sub("a", "é", "bab")',
    're.sub(r"(?P<x>a)", r"\\g<0>!", "a")',
    're.sub(r"[aeiou]", lambda found: found.group(0).upper(), "education")',
    're.subn(r"\\d", lambda found: str(int(found.group(0)) * 2), "a1b9", 1)',
    're.sub("a", "b", "aaa", 0)',
]
MODULES: dict[str, Any] = {"re": re, "math": math, "datetime": datetime, "ipaddress": ipaddress}


def run_expression(runner: SyncRunner, expression: str) -> Any:
    report = runner.run({"expression": f'def rule(data, out):\n    out["result"] = {expression}\n'}, {"input": {}})
    assert [(t.outcome, t.error) for t in report.trace] == [("ok", None)]
    assert report.result is not None
    return report.result["out"]["result"]


def cpython(expression: str) -> Any:
    """CPython's value, as it crosses the sandbox boundary (tuples arrive as lists)."""
    return json.loads(json.dumps(eval(expression, dict(MODULES))))


@pytest.mark.parametrize("expression", PERCENT + BRACES + SUBSTITUTIONS)
def test_everyday_formatting_gives_cpython_s_text(scratch_runner: SyncRunner, expression: str) -> None:
    assert run_expression(scratch_runner, expression) == cpython(expression)


# Mistakes fail as CPython fails them: same exception type and message.
MISTAKES = [
    '"%s %s" % ("one",)',
    '"%s" % ("one", "two")',
    '"%d" % "text"',
    '"%x" % 1.5',
    '"%(a)s" % ("tuple",)',
    '"%(missing)s" % {"a": 1}',
    '"%q" % 1',
    '"%" % ()',
    '"%c" % "ab"',
    '"{} {}".format("one")',
    '"{0} {}".format("a", "b")',
    '"{missing}".format(a=1)',
    '"{!x}".format(1)',
    '"{".format(1)',
    '"{:d}".format("text")',
    '"{}".format_map({"a": 1})',
    're.sub("(a)", r"\\2", "a")',
    're.sub("a", r"\\q", "a")',
    're.sub("(?P<x>a)", r"\\g<y>", "a")',
    're.sub("a", r"\\g<x", "a")',
]


def cpython_error(expression: str) -> str:
    with pytest.raises(Exception) as raised:
        eval(expression, dict(MODULES))
    return f"{type(raised.value).__name__}: {raised.value} (line 2)"


@pytest.mark.parametrize("expression", MISTAKES)
def test_formatting_mistakes_fail_with_cpython_s_error(scratch_runner: SyncRunner, expression: str) -> None:
    report = scratch_runner.run({"mistake": f'def rule(data, out):\n    out["result"] = {expression}\n'},
                                {"input": {}})

    assert [(t.outcome, t.error) for t in report.trace] == [("error", cpython_error(expression))]


NEUTRAL = '''
def helper():
    pass

def rule(data, out):
    out["percent"] = "%s %r %a" % (helper, helper, helper)
    out["braces"] = "{} {!r} {!a} {:>18}".format(helper, helper, helper, helper)
    out["mapping"] = "%(f)s" % {"f": helper}
    out["sub"] = re.sub("x", "%s" % (helper,), "x")
'''


def test_objects_that_are_not_plain_text_format_as_neutral_text(scratch_runner: SyncRunner) -> None:
    report = scratch_runner.run({"neutral": NEUTRAL}, {"input": {}})

    assert report.result == {"out": {
        "percent": "<function helper> <function helper> <function helper>",
        "braces": "<function helper> <function helper> <function helper>  <function helper>",
        "mapping": "<function helper>", "sub": "<function helper>",
    }, "failures": []}


def test_formatting_reads_host_mappings_and_results_up_to_the_string_limit(scratch_runner: SyncRunner) -> None:
    source = ('def rule(data, out):\n'
              '    out["who"] = "%(who)s/{who}" % data\n'
              '    out["braces"] = "{who}".format_map(data) + "{0}".format(data["who"])\n'
              '    out["size"] = len(("%s" * 1000) % tuple(["x" * 1000] * 1000))\n'
              '    out["width"] = len("{:>999}".format("") + "%-999s" % "")\n')
    report = scratch_runner.run({"host": source}, {"input": {"who": "alice"}})

    assert report.result == {"out": {"who": "%(who)s/{who}" % {"who": "alice"}, "braces": "alicealice",
                                     "size": 1_000_000, "width": 1998}, "failures": []}
