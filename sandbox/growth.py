"""Size checks for the operations that build one value from others without `*`: `+` and `+=`,
f-strings, `[*a, *b]` and other unpacking, `|` and `^`, `sum`, `extend` and slice assignment.

Concatenation repeats: `s = s + s` doubles each step, so each operand being within the limits
says nothing about the result. Strings, lists, tuples and call arguments are measured
(len(a) + len(b)) before they are built. Sets and dicts keep one copy of each key, so their
union is never larger than the operands the rule already holds: they are checked once
built, which keeps CPython's own semantics and error messages.

What a method reads is bounded as well as what it builds: `x.update(*[items] * 1000)` keeps
a small set while C inserts a hundred million items, and an iterator handed to C is read
there past the iteration guard. The arguments of one call (update, union, intersection,
issubset...) hold at most max_sequence_items in all; those of unknown size are read through
the iteration guard, within what is left, before C sees them. Items read and copied are
charged to the rule's budget (sandbox/pacing.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

from sandbox.errors import SizeExceeded
from sandbox.limits import Limits
from sandbox.pacing import Pacer

_CONCATENATED = frozenset({str, list, tuple})
# Types whose len() is the number of items iterating them gives, and which hold them already:
# nothing runs when they are unpacked or extended from, and the size is known first.
_SIZED = frozenset({str, list, tuple, dict, set, frozenset, range, MappingProxyType,
                    type({}.keys()), type({}.values()), type({}.items())})
# Results of `|` and `^` that are collections (ints are the common case and pass at once).
_MERGED = frozenset({set, frozenset, dict})
_MAPPINGS = frozenset({dict, MappingProxyType})


class Growth:
    """The checks, bound to one set of limits and the rule's iteration guard."""

    def __init__(self, limits: Limits, getiter: Callable[[Any], Iterator[Any]], pacer: Pacer) -> None:
        self._max_characters = limits.max_string_length
        self._max_items = limits.max_sequence_items
        self._getiter = getiter
        self._pacer = pacer

    def check(self, kind: type | str, size: int) -> None:
        """Raise SizeExceeded when a `kind` of `size` would pass its limit."""
        if kind is str:
            if size > self._max_characters:
                raise SizeExceeded(f"str of {size} characters; the limit is {self._max_characters}")
        elif size > self._max_items:
            name = kind if isinstance(kind, str) else kind.__name__
            raise SizeExceeded(f"{name} of {size} items; the limit is {self._max_items}")

    def _take(self, iterable: object, room: int) -> list[Any]:
        """At most `room` items of an iterable whose size is not known, through the iteration guard."""
        items = list(itertools.islice(self._getiter(iterable), max(room, 0) + 1))
        if len(items) > room:
            raise SizeExceeded(f"more than {self._max_items} items")
        self._pacer.items(len(items))
        return items

    # -- operators -----------------------------------------------------------------------

    def add(self, left: Any, right: Any) -> Any:
        """`left + right`. Runs on every `+` of numbers too: one set probe before the add."""
        kind = type(left)
        if kind in _CONCATENATED and isinstance(right, kind):
            self.check(kind, len(left) + len(right))
        return left + right

    def add_in_place(self, target: Any, value: Any) -> Any:
        """`target += value`: a list is extended in place (aliases see it), as in CPython."""
        if type(target) is list:
            self.extend(target, value)
            return target
        return self.add(target, value)

    def union(self, left: Any, right: Any) -> Any:
        return self._merged(left | right)

    def difference(self, left: Any, right: Any) -> Any:
        return self._merged(left ^ right)

    def union_in_place(self, target: Any, value: Any) -> Any:
        target |= value
        return self._merged(target)

    def difference_in_place(self, target: Any, value: Any) -> Any:
        target ^= value
        return self._merged(target)

    def _merged(self, result: Any) -> Any:
        if type(result) in _MERGED:
            self.check(type(result), len(result))
        return result

    # -- displays ------------------------------------------------------------------------

    def join_fields(self, *parts: str) -> str:
        """An f-string: every field already formatted (`_format_`), the total checked, then joined."""
        self.check(str, sum(map(len, parts)))
        return "".join(parts)

    def splat(self, kind: str, *parts: Any) -> Any:
        """`[a, *b]`, `(a, *b)`, `{a, *b}` and `f(a, *b)`: runs of plain items arrive as tuples."""
        if kind == "set":
            return self._splat_set(parts)
        self.check(kind, sum(len(part) for part in parts if type(part) in _SIZED))
        items: list[Any] = []
        for part in parts:
            if type(part) in _SIZED:
                items.extend(part)
            else:
                items.extend(self._take(part, self._max_items - len(items)))
        return items if kind == "list" else tuple(items)

    def _splat_set(self, parts: tuple[Any, ...]) -> set[Any]:
        items: set[Any] = set()
        for part in parts:
            items.update(part if type(part) in _SIZED else self._take(part, self._max_items))
            self.check(set, len(items))
        return items

    def merge(self, *parts: Any) -> dict[Any, Any]:
        """`{k: v, **a, **b}`: runs of plain pairs arrive as dicts."""
        merged: dict[Any, Any] = {}
        for part in parts:
            if type(part) not in _MAPPINGS:
                raise TypeError(f"'{type(part).__name__}' object is not a mapping")
            merged.update(part)
            self.check(dict, len(merged))
        return merged

    # -- methods and builtins ------------------------------------------------------------

    def extend(self, target: list[Any], iterable: Any) -> None:
        if type(iterable) in _SIZED:
            self.check(list, len(target) + len(iterable))
            self._pacer.items(len(iterable))
            target.extend(iterable)
        else:
            target.extend(self._take(iterable, self._max_items - len(target)))

    def assign_slice(self, target: list[Any], key: Any, value: Any) -> None:
        """`target[a:b] = value`: the list after the assignment, measured first."""
        if type(key) is slice:
            items = value if type(value) in (list, tuple) else self._take(value, self._max_items)
            removed = len(range(*key.indices(len(target))))
            self.check(list, len(target) - removed + len(items))
            target[key] = items
        else:
            target[key] = value

    def sum(self, items: list[Any], start: Any) -> Any:
        """sum(lists, []) concatenates: one list built once, not one copy per item (quadratic)."""
        kind = type(start)
        if kind is not list and kind is not tuple:
            return sum(items, start)
        for item in items:
            if type(item) is not kind:
                raise TypeError(f'can only concatenate {kind.__name__} (not "{type(item).__name__}") '
                                f"to {kind.__name__}")
        self.check(kind, len(start) + sum(map(len, items)))
        concatenated = list(start)
        for item in items:
            concatenated.extend(item)
        return concatenated if kind is list else tuple(concatenated)

    def read_all(self, iterables: tuple[Any, ...]) -> list[list[Any]]:
        """The items of zip's and map's iterables, at most max_sequence_items in all:
        `zip(*[items] * 1000)` would copy `items` a thousand times."""
        lists: list[list[Any]] = []
        room = self._max_items
        for iterable in iterables:
            lists.append(self._take(iterable, room))
            room -= len(lists[-1])
        return lists

    def read_arguments(self, args: tuple[Any, ...], keywords: int = 0) -> tuple[Any, ...]:
        """The arguments of a method that reads collections, at most max_sequence_items items
        in all: collections of known size as they are, any other iterable read into a list
        through the iteration guard, before C sees it."""
        self.check("arguments", keywords + sum(len(arg) for arg in args if type(arg) in _SIZED))
        room = self._max_items - keywords
        read: list[Any] = []
        for arg in args:
            if type(arg) in _SIZED:
                room -= len(arg)
                self._pacer.items(len(arg))
            else:
                arg = self._take(arg, room)
                room -= len(arg)
            read.append(arg)
        return tuple(read)

    def checked_method(self, name: str) -> Callable[..., Any]:
        """A set, frozenset, dict or dict view method that reads other collections
        (`read_arguments`); a set or dict it builds (or, for `update`, grows) is checked once built."""
        def call(target: Any, *args: Any, **kwargs: Any) -> Any:
            result = getattr(target, name)(*self.read_arguments(args, len(kwargs)), **kwargs)
            grown = target if result is None else result
            if type(grown) in _MERGED:
                self.check(type(grown), len(grown))
            return result

        return call
