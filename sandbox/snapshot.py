"""Module snapshots: run a rule file's module body once, start every evaluation from a copy.

Running module code again on every evaluation is what guarantees that nothing survives
from one evaluation to the next, and it costs: `ipaddress.ip_network(...)` at module level
is 3 us each time. A snapshot keeps the guarantee without the cost when every value the
module body defines can be shared or cheaply rebuilt:
- immutable values (None, bool, int, float, str, bytes, compiled patterns, dates and times,
  IP addresses and networks, and tuples and frozensets of them) are shared: no rule can
  change them;
- lists, sets and dicts are copied for each evaluation, recursively;
- functions the module defined without closures are rebuilt around each evaluation's
  globals (so `_tick_` and `_print_` are that evaluation's), default arguments copied;
- facade members and builtins bound to new names (`match = re.match`) are shared.
Anything else (a closure, a generator, a module body that printed, failed or ran out of
budget) gets no snapshot: that file's module code runs on every evaluation, as before.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import FunctionType
from typing import Any

_IMMUTABLE = frozenset({
    type(None), bool, int, float, str, bytes, re.Pattern,
    datetime.date, datetime.time, datetime.datetime, datetime.timedelta, datetime.timezone,
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network,
    ipaddress.IPv4Interface, ipaddress.IPv6Interface,
})
_MAX_DEPTH = 16

Memo = dict[int, Any]
Rebuild = Callable[[dict[str, object], Memo], Any]


class _Shared:
    """Marks a value that every evaluation may use as it is."""


SHARED = _Shared()


class Snapshot:
    """The values one module body defined, and how to hand each evaluation its own."""

    __slots__ = ("_shared", "_functions", "_rebuilt")

    def __init__(self, shared: dict[str, object], functions: tuple[tuple[str, FunctionType], ...],
                 rebuilt: tuple[tuple[str, Rebuild], ...]) -> None:
        self._shared = shared
        # The common case, kept cheap: a function bound to one name, with shared defaults; what
        # FunctionType needs is read here once, not on every evaluation.
        self._functions = tuple((name, function.__code__, function.__name__, function.__defaults__)
                                for name, function in functions)
        self._rebuilt = rebuilt

    def instantiate(self, namespace: dict[str, object]) -> dict[str, object]:
        """Fill `namespace` (fresh globals) as running the module body would have."""
        namespace.update(self._shared)
        for name, code, function_name, defaults in self._functions:
            namespace[name] = FunctionType(code, namespace, function_name, defaults)
        if self._rebuilt:
            memo: Memo = {}
            for name, rebuild in self._rebuilt:
                namespace[name] = rebuild(namespace, memo)
        return namespace


def take_snapshot(template: Mapping[str, object], base: Mapping[str, object],
                  shareable: frozenset[int]) -> Snapshot | None:
    """A Snapshot of `template` (globals after one run of the module body), or None.

    `base` is the globals the body started from; `shareable` the ids of host objects
    (builtins, facade members) that may be bound to new names and shared.
    """
    shared: dict[str, object] = {}
    functions: list[tuple[str, FunctionType]] = []
    rebuilt: list[tuple[str, Rebuild]] = []
    defined = {name: value for name, value in template.items() if not (name in base and base[name] is value)}
    references = _reference_counts(defined.values())
    for name, value in defined.items():
        plan = _plan(value, template, shareable, 0)
        if plan is None:
            return None
        if plan is SHARED:
            shared[name] = value
        elif _is_simple_function(value, references, template, shareable):
            functions.append((name, value))  # type: ignore[arg-type]
        else:
            rebuilt.append((name, plan))  # type: ignore[arg-type]
    return Snapshot(shared, tuple(functions), tuple(rebuilt))


def _reference_counts(values: Iterable[object]) -> Counter[int]:
    """How often each object occurs among the module's values, containers and defaults included."""
    counts: Counter[int] = Counter()
    pending = list(values)
    while pending:
        value = pending.pop()
        counts[id(value)] += 1
        if counts[id(value)] > 1:
            continue
        if isinstance(value, (tuple, frozenset, list, set)) and type(value) in (tuple, frozenset, list, set):
            pending.extend(value)
        elif isinstance(value, dict) and type(value) is dict:
            pending.extend(value.values())
        elif isinstance(value, FunctionType):
            pending.extend(value.__defaults__ or ())
    return counts


def _is_simple_function(value: object, references: Counter[int], template: Mapping[str, object],
                        shareable: frozenset[int]) -> bool:
    return (type(value) is FunctionType and references[id(value)] == 1 and not value.__kwdefaults__
            and all(_plan(item, template, shareable, 1) is SHARED for item in value.__defaults__ or ()))


def _plan(value: object, template: Mapping[str, object], shareable: frozenset[int],
          depth: int) -> _Shared | Rebuild | None:
    plan = _plan_once(value, template, shareable, depth)
    if plan is None or plan is SHARED:
        return plan
    return _memoized(id(value), plan)  # type: ignore[arg-type]


def _memoized(key: int, build: Rebuild) -> Rebuild:
    # Two names for one list, or a function and its alias, stay one object in each
    # evaluation, as they were after the module body ran.
    def rebuild(namespace: dict[str, object], memo: Memo) -> Any:
        if key not in memo:
            memo[key] = build(namespace, memo)
        return memo[key]
    return rebuild


def _plan_once(value: object, template: Mapping[str, object], shareable: frozenset[int],
               depth: int) -> _Shared | Rebuild | None:
    kind = type(value)
    if kind in _IMMUTABLE or id(value) in shareable:
        return SHARED
    if depth > _MAX_DEPTH:
        return None
    if kind is FunctionType:
        return _function_plan(value, template, shareable, depth)  # type: ignore[arg-type]
    if kind in (tuple, frozenset, list, set):
        items = [_plan(item, template, shareable, depth + 1) for item in value]  # type: ignore[attr-defined]
        if any(item is None for item in items):
            return None
        if kind in (tuple, frozenset) and all(item is SHARED for item in items):
            return SHARED
        return _sequence_plan(kind, list(value), items)  # type: ignore[call-overload]
    if kind is dict:
        keys = [_plan(key, template, shareable, depth + 1) for key in value]  # type: ignore[attr-defined]
        values = [_plan(item, template, shareable, depth + 1) for item in value.values()]  # type: ignore[attr-defined]
        if any(plan is not SHARED for plan in keys) or any(plan is None for plan in values):
            return None
        return _dict_plan(list(value.items()), values)  # type: ignore[attr-defined]
    return None


def _resolve(item: object, plan: object, namespace: dict[str, object], memo: Memo) -> Any:
    return item if plan is SHARED else plan(namespace, memo)  # type: ignore[operator]


def _sequence_plan(kind: type, items: list[object], plans: list[Any]) -> Rebuild:
    def rebuild(namespace: dict[str, object], memo: Memo) -> Any:
        return kind(_resolve(item, plan, namespace, memo) for item, plan in zip(items, plans))
    return rebuild


def _dict_plan(items: list[tuple[object, object]], plans: list[Any]) -> Rebuild:
    def rebuild(namespace: dict[str, object], memo: Memo) -> Any:
        return {key: _resolve(item, plan, namespace, memo) for (key, item), plan in zip(items, plans)}
    return rebuild


def _function_plan(function: FunctionType, template: Mapping[str, object], shareable: frozenset[int],
                   depth: int) -> Rebuild | None:
    if function.__globals__ is not template or function.__closure__ is not None:
        return None  # a closure's cells are state we cannot copy
    defaults = function.__defaults__ or ()
    default_plans = [_plan(item, template, shareable, depth + 1) for item in defaults]
    kwdefaults = function.__kwdefaults__ or {}
    kwdefault_plans = {key: _plan(item, template, shareable, depth + 1) for key, item in kwdefaults.items()}
    if any(plan is None for plan in default_plans) or any(plan is None for plan in kwdefault_plans.values()):
        return None

    def rebuild(namespace: dict[str, object], memo: Memo) -> Any:
        fresh = FunctionType(function.__code__, namespace, function.__name__,
                             tuple(_resolve(item, plan, namespace, memo) for item, plan in zip(defaults, default_plans))
                             or None)
        if kwdefaults:
            fresh.__kwdefaults__ = {key: _resolve(kwdefaults[key], plan, namespace, memo)
                                    for key, plan in kwdefault_plans.items()}
        return fresh

    return rebuild
