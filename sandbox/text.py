"""Text of objects as rules may see it: neutral, bounded, valid Unicode.

Python's own `repr` and `str` are unsafe in three ways for untrusted code:
- default reprs carry memory addresses (`<function f at 0x7f...>`), which the ledger denies
  rules through `id()` (they defeat ASLR and fingerprint the process across evaluations);
- they recurse without bound: a 50,000-deep list raises RecursionError from inside
  whatever was describing it, and `[[0] * 10**5] * 10**5` is ten billion characters of
  output from one C call;
- a lone surrogate is a valid `str` but not valid UTF-8, so text crossing the sandbox
  boundary must be checked where the rule produces it, not where the encoder fails.

`describe` and `display` are what the guarded `repr()`, `str()`, f-strings, `print()` and
failure descriptions use. For plain data they return exactly what Python would; other
objects get a neutral `<function name>`-style text; past `max_chars` the text is cut. Each
piece of text they add is a round of the rule's budget (`pacer`, sandbox/pacing.py): the
repr of a structure of a million items is a million rounds of this module's loops.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import re
import types
from collections.abc import Callable
from typing import Any

from sandbox.pacing import UNMETERED, Pacer

MAX_DEPTH = 32
# Addresses in text the interpreter wrote itself (exception messages such as list.index's
# "<function f at 0x7f...> is not in list"): diagnostics, so rewriting them is harmless.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# Types whose builtin repr is plain text with no address and bounded recursion (none).
_SCALARS: frozenset[type] = frozenset({type(None), bool, int, float, str})
_DICT_VIEWS = {type({}.keys()): "dict_keys", type({}.values()): "dict_values", type({}.items()): "dict_items"}


class TextBudget:
    """Characters left for one description; `spend` says whether there is room."""

    __slots__ = ("left", "_pacer")

    def __init__(self, max_chars: int, pacer: Pacer = UNMETERED) -> None:
        self.left = max_chars
        self._pacer = pacer

    def spend(self, count: int) -> bool:
        self._pacer.round()
        self.left -= count
        return self.left >= 0


class Truncated(Exception):
    """The description ran out of budget; the caller cuts it there."""


def describe(obj: object, max_chars: int, safe_repr: frozenset[type] = frozenset(),
             pacer: Pacer = UNMETERED) -> str:
    """`repr(obj)` for rules: `safe_repr` are extra types whose own repr is neutral and flat."""
    parts: list[str] = []
    try:
        _repr_into(obj, parts, TextBudget(max_chars, pacer), safe_repr, set(), 0)
    except Truncated:
        return "".join(parts)[:max_chars] + "..."
    return "".join(parts)


def display(obj: object, max_chars: int, safe_repr: frozenset[type] = frozenset(),
            pacer: Pacer = UNMETERED) -> str:
    """`str(obj)` for rules."""
    kind = type(obj)
    if kind is str:
        return obj[:max_chars]  # type: ignore[index, no-any-return]
    if kind in _SCALARS:
        return str(obj)[:max_chars]
    if isinstance(obj, BaseException):
        args = exception_args(obj)
        if not args:
            return ""
        if len(args) == 1:
            only = args[0]
            if isinstance(obj, KeyError):
                return describe(only, max_chars, safe_repr, pacer)
            return display(only, max_chars, safe_repr, pacer)
        return describe(args, max_chars, safe_repr, pacer)
    if kind in _PLAIN or kind in safe_repr:
        return str(obj)[:max_chars]
    if kind is types.MappingProxyType:
        obj = dict(obj)  # type: ignore[call-overload]  # str() of a mapping proxy is its mapping's
    return describe(obj, max_chars, safe_repr, pacer)


def join_display(items: tuple[object, ...], separator: object, max_chars: int,
                 safe_repr: frozenset[type] = frozenset(), pacer: Pacer = UNMETERED) -> str:
    """`separator.join(str(item) for item in items)` for rules, built no longer than `max_chars`:
    `context.log(*[s] * 200)` of a million-character `s` was 200 million characters first."""
    between = display(separator, max_chars, safe_repr, pacer)
    parts: list[str] = []
    left = max_chars
    for index, item in enumerate(items):
        if index:
            parts.append(between[:left])
            left -= len(between)
        if left <= 0:
            break
        pacer.round()
        shown = display(item, left, safe_repr, pacer)
        parts.append(shown)
        left -= len(shown)
        if left <= 0:
            break
    return "".join(parts)[:max_chars]


def exception_args(exc: BaseException) -> tuple[Any, ...]:
    """`exc.args` with interpreter-written addresses taken out of its strings."""
    return tuple(_ADDRESS.sub("", arg) if type(arg) is str else arg for arg in exc.args)


def valid_unicode(text: str) -> bool:
    """Whether `text` can cross the sandbox boundary (UTF-8 has no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """`text` with lone surrogates escaped: for the sandbox's own messages about a rule."""
    return text if valid_unicode(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


# -- the repr walk ---------------------------------------------------------------------------

# Values whose builtin repr and str are flat text without addresses.
_PLAIN: frozenset[type] = _SCALARS | {
    range, re.Pattern, re.Match, datetime.date, datetime.time, datetime.datetime, datetime.timedelta,
    datetime.timezone, type(datetime.date(2000, 1, 1).isocalendar()),
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network,
    ipaddress.IPv4Interface, ipaddress.IPv6Interface,
}


def _emit(text: str, parts: list[str], budget: TextBudget) -> None:
    parts.append(text)
    if not budget.spend(len(text)):
        raise Truncated


def _repr_into(obj: object, parts: list[str], budget: TextBudget, safe_repr: frozenset[type],
               active: set[int], depth: int) -> None:
    kind = type(obj)
    if kind in _PLAIN or kind in safe_repr:
        _emit(repr(obj), parts, budget)
        return
    container = _CONTAINERS.get(kind)
    if container is None:
        if isinstance(obj, BaseException):
            _exception_repr(obj, parts, budget, safe_repr, active, depth)
        else:
            _emit(_opaque(obj), parts, budget)
        return
    if id(obj) in active or depth >= MAX_DEPTH:
        _emit("[...]" if kind is list else "{...}" if kind is dict else "...", parts, budget)
        return
    active.add(id(obj))
    try:
        container(obj, parts, budget, safe_repr, active, depth + 1)
    finally:
        active.discard(id(obj))


def _items(items: Any, parts: list[str], budget: TextBudget, safe_repr: frozenset[type], active: set[int],
           depth: int) -> None:
    for index, item in enumerate(items):
        if index:
            _emit(", ", parts, budget)
        _repr_into(item, parts, budget, safe_repr, active, depth)


def _list(obj: Any, parts: list[str], budget: TextBudget, safe: frozenset[type], active: set[int], depth: int) -> None:
    _emit("[", parts, budget)
    _items(obj, parts, budget, safe, active, depth)
    _emit("]", parts, budget)


def _tuple(obj: Any, parts: list[str], budget: TextBudget, safe: frozenset[type], active: set[int], depth: int) -> None:
    _emit("(", parts, budget)
    _items(obj, parts, budget, safe, active, depth)
    _emit(",)" if len(obj) == 1 else ")", parts, budget)


def _set(obj: Any, parts: list[str], budget: TextBudget, safe: frozenset[type], active: set[int], depth: int) -> None:
    name = "set" if type(obj) is set else "frozenset"
    if not obj:
        _emit(f"{name}()", parts, budget)
        return
    _emit("{" if name == "set" else "frozenset({", parts, budget)
    _items(obj, parts, budget, safe, active, depth)
    _emit("}" if name == "set" else "})", parts, budget)


def _dict(obj: Any, parts: list[str], budget: TextBudget, safe: frozenset[type], active: set[int], depth: int) -> None:
    proxy = type(obj) is types.MappingProxyType
    _emit("mappingproxy({" if proxy else "{", parts, budget)
    for index, (key, value) in enumerate(obj.items()):
        if index:
            _emit(", ", parts, budget)
        _repr_into(key, parts, budget, safe, active, depth)
        _emit(": ", parts, budget)
        _repr_into(value, parts, budget, safe, active, depth)
    _emit("})" if proxy else "}", parts, budget)


def _view(obj: Any, parts: list[str], budget: TextBudget, safe: frozenset[type], active: set[int], depth: int) -> None:
    _emit(f"{_DICT_VIEWS[type(obj)]}([", parts, budget)
    _items(obj, parts, budget, safe, active, depth)
    _emit("])", parts, budget)


Walk = Callable[[Any, list[str], TextBudget, frozenset[type], set[int], int], None]
_CONTAINERS: dict[type, Walk] = {
    list: _list, tuple: _tuple, set: _set, frozenset: _set, dict: _dict, types.MappingProxyType: _dict,
    **{view: _view for view in _DICT_VIEWS},
}


def _exception_repr(exc: BaseException, parts: list[str], budget: TextBudget, safe: frozenset[type],
                    active: set[int], depth: int) -> None:
    _emit(f"{type(exc).__name__}(", parts, budget)
    _items(exception_args(exc), parts, budget, safe, active, depth + 1)
    _emit(")", parts, budget)


def _opaque(obj: object) -> str:
    """Functions, methods, generators and anything else: the kind and a name, no address."""
    kind = type(obj)
    if kind is types.FunctionType or kind is types.LambdaType:
        return f"<function {getattr(obj, '__name__', '?')}>"
    if kind is types.BuiltinFunctionType:
        owner = getattr(obj, "__self__", None)
        if owner is None or isinstance(owner, types.ModuleType):
            return f"<built-in function {getattr(obj, '__name__', '?')}>"
        return f"<built-in method {getattr(obj, '__name__', '?')} of {type(owner).__name__} object>"
    if kind is types.MethodType:
        return f"<bound method {getattr(obj, '__name__', '?')}>"
    if kind is types.GeneratorType:
        return f"<generator object {getattr(obj, '__name__', '?')}>"
    if kind is type:
        return f"<class '{getattr(obj, '__name__', '?')}'>"
    if kind is functools.partial:  # the guards' size-bounded methods (str.join, strftime...)
        return f"<built-in method {getattr(getattr(obj, 'func', None), '__name__', '?').lstrip('_')}>"
    return f"<{kind.__name__} object>"
