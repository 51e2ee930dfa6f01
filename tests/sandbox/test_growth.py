"""Operations that build a larger value from smaller ones (`+`, `+=`, f-strings, unpacking,
`|`, `sum`, `extend`, slice assignment): CPython's values and errors for benign use, on both
runners, up to the limits exactly (attacks.py has the refusals past them)."""

from __future__ import annotations

import datetime
import json
import re
import textwrap
from typing import Any

import pytest

from tests.conftest import SyncRunner

# Each expression is run inside a rule and by CPython; the results must be equal.
EXPRESSIONS = [
    '"a" + "b"',
    '"" + ""',
    '[1, 2] + [3]',
    '(1,) + (2, 3)',
    '[] + []',
    '1 + 2',
    '1.5 + 2',
    'True + True',
    '-3 + 2.25',
    '(2 ** 40) + 1',
    '(datetime.datetime(2026, 1, 31, 12, 0) + datetime.timedelta(days=1, hours=13)).isoformat()',
    '(datetime.date(2026, 2, 28) + datetime.timedelta(days=1)).isoformat()',
    '(datetime.timedelta(hours=1) + datetime.timedelta(minutes=1)).total_seconds()',
    '"x" * 500000 + "y" * 500000 == "x" * 500000 + "y" * 500000',
    'len("x" * 999999 + "y")',
    'len([0] * 50000 + [1] * 50000)',
    'len((0,) * 99999 + (1,))',
    'f"{1}-{2.5:.1f}-{\'x\'!r}-{\'y\':>3}|{None}"',
    'f"{1 + 1=}"',
    'f"plain"',
    'f""',
    'f"{{braces}} {0}"',
    'f"{\'a\'}" f"{\'b\'}" "c"',
    'f"{f\'{1}\'}{2:>3}"',
    'len(f"{\'x\' * 500000}{\'y\' * 499998}<>")',
    '[*[1, 2], 3, *(4,), *"ab", *{"k": 1}, *range(2)]',
    '(*[1], 2, *"xy")',
    '[*[]]',
    'len([*range(50000), *range(50000)])',
    'sorted({*[1, 2], 3, *"a"}, key=str)',
    '{**{"a": 1}, "b": 2, **{"a": 3}}',
    'max(*[1, 5], 3, *(2,))',
    '"-".join([*"abc"])',
    'sum([[1], [2, 3]], [])',
    'sum([(1,), (2,)], ())',
    'sum([[1], [2]], [0])',
    'sum([], [])',
    'sum([1, 2.5])',
    'sum([datetime.timedelta(days=1)], datetime.timedelta(0)).days',
    '{"a": 1} | {"b": 2}',
    'sorted({1} | {2})',
    'sorted({1, 2} ^ {2, 3})',
    'sorted({1, 2}.union([3], (4,)))',
    'sorted(frozenset({1}) | {2})',
    '5 | 3',
    '5 ^ 3',
    'True | False',
    'dict({"a": 1}, b=2)',
    'list(zip([1, 2], "ab"))',
    'list(map(max, [1, 5], [4, 2]))',
    # Methods that read other collections: a few small arguments, any kind, as CPython.
    'sorted({1}.union([2], (3,), {4}, "ab", range(2), (n for n in [9])), key=str)',
    'sorted({1, 2, 3}.intersection([2, 3], (3, 4)))',
    'sorted({1, 2, 3}.difference([1], (n for n in [2])))',
    '[{1}.issubset([1, 2]), {1, 2}.issuperset((1,)), {1}.isdisjoint(n for n in [2])]',
    '[frozenset({1}).issubset(range(3)), {"k": 1}.keys().isdisjoint(["b"])]',
    'sorted(frozenset({1, 2}).symmetric_difference([2, 3]))',
    '["a" in (c for c in "abc"), "z" in (c for c in "abc")]',
    '["an" in re.finditer("a", "banana"), [m.span() for m in re.finditer("a", "banana")]]',
    '[m.group(0) for m in re.compile("[a-z]+").finditer("ab cd", 1)]',
    'sorted({m.group(0) for m in re.finditer("a.", "banana")})',
    'len(list(re.finditer("", "a" * 999)))',
    '["{} {:>5} {name}".format(1, "x", name="n"), "{0}{0}".format("ab"), "%s-%05.1f %%" % ("a", 2.5)]',
    '"{{}} %(k)s" % {"k": 1}',
    '[re.sub("a+", "b", "banana aa"), re.sub("(a)", "[\\\\1]", "banana"), re.subn("", "-", "abc")]',
    'len(re.sub("", "-", "a" * 2000))',
    're.findall("a", "banana")',
    '["-".join(str(i) for i in range(5)), ",".join(["a", "b"]), "".join(c for c in "")]',
    'len(repr(list(range(10000))))',
]

STATEMENTS = '''
items = [1]
alias = items
items += [2]
items *= 2
items.extend((3,))
items.extend(item for item in [4])
items.extend("ab")
items[len(items):] = [5]
items[:1] = "xy"
items[1:3] = []
numbers = [0, 1, 2, 3, 4, 5]
numbers[::2] = [7, 8, 9]
text = "a"
text += "b"
text += f"{text}!"
pair = (1,)
kept = pair
pair += (2,)
seen = {1}
same = seen
seen |= {2}
seen ^= {3, 1}
seen.update([4], (5,))
table = {"a": 1}
table_alias = table
table |= {"b": 2}
table.update({"c": 3}, d=4)
table.update([("e", 5)])
total = 0
for number in range(10):
    total += number
out["result"] = [items, alias is items, numbers, text, pair, kept, sorted(same), same is seen,
                 table, table_alias is table, total]
'''


def run_rule(runner: SyncRunner, body: str) -> Any:
    report = runner.run({"growth": "def rule(data, out):\n" + textwrap.indent(body, "    ")}, {"input": {}})
    assert [(t.outcome, t.error) for t in report.trace] == [("ok", None)]
    assert report.result is not None
    return report.result["out"]["result"]


def cpython(body: str) -> Any:
    """CPython's value, as it crosses the sandbox boundary (tuples arrive as lists)."""
    out: dict[str, Any] = {}
    exec(body, {"datetime": datetime, "re": re, "out": out})
    return json.loads(json.dumps(out["result"]))


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_building_values_gives_cpython_s_value(scratch_runner: SyncRunner, expression: str) -> None:
    body = f'out["result"] = {expression}\n'
    assert run_rule(scratch_runner, body) == cpython(body)


def test_in_place_operators_and_growing_methods_keep_cpython_s_aliasing(scratch_runner: SyncRunner) -> None:
    assert run_rule(scratch_runner, STATEMENTS) == cpython(STATEMENTS)


# Mistakes fail as CPython fails them: same exception type and message.
MISTAKES = [
    '"a" + 1',
    '"a" + None',
    '[1] + (2,)',
    '(1,) + [2]',
    '1 + "a"',
    '{"a": 1} | [1]',
    '{1} | [1]',
    '{**[1]}',
    'sum([[1], (2,)], [])',
    'sum([(1,), [2]], ())',
    'sum([[1], 2], [])',
    'sum(["a"], "")',
]


def cpython_error(expression: str) -> str:
    with pytest.raises(Exception) as raised:
        eval(expression, {"datetime": datetime})
    return f"{type(raised.value).__name__}: {raised.value} (line 2)"


@pytest.mark.parametrize("expression", MISTAKES)
def test_building_mistakes_fail_with_cpython_s_error(scratch_runner: SyncRunner, expression: str) -> None:
    report = scratch_runner.run({"mistake": f'def rule(data, out):\n    out["result"] = {expression}\n'},
                                {"input": {}})

    assert [(t.outcome, t.error) for t in report.trace] == [("error", cpython_error(expression))]


def test_unpacking_iterates_through_the_iteration_guard(scratch_runner: SyncRunner) -> None:
    report = scratch_runner.run({"splat": 'def rule(data, out):\n    out["result"] = [*1]\n'}, {"input": {}})

    assert [(t.outcome, t.error) for t in report.trace] == [
        ("error", "TypeError: 'int' object is not iterable by rules (line 2)")]


def test_host_data_unpacks_and_concatenates_like_plain_data(scratch_runner: SyncRunner) -> None:
    body = ('out["result"] = [[*data["items"], *data["pair"]], {**data["table"], "z": 0}, '
            'data["items"] + ("c",), data["who"] + "!", f"{data[\'who\']}:{data[\'items\']}", '
            'sorted(data["table"].keys() | {"q"})]\n')
    report = scratch_runner.run({"host": "def rule(data, out):\n    " + body},
                                {"input": {"items": ["a", "b"], "pair": [1, 2], "table": {"k": 1}, "who": "bob"}})

    assert [(t.outcome, t.error) for t in report.trace] == [("ok", None)]
    assert report.result is not None
    assert report.result["out"]["result"] == [["a", "b", 1, 2], {"k": 1, "z": 0}, ["a", "b", "c"], "bob!",
                                              "bob:('a', 'b')", ["k", "q"]]
