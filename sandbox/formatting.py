"""printf-style `%` and `str.format` for rules: CPython's text, sized before it is built.

Both forms take widths and precisions from the format string or from the arguments
(`'%*s' % (10**9, '')`, `'{:>{w}}'.format('', w=10**9)`), so a tiny expression asks for
a gigabyte; and `str.format` resolves `{0.attr}` and `{0[key]}` with plain getattr and
getitem (CVE-2023-41039). Here each format string is parsed by the sandbox itself:
- widths and precisions are at most MAX_WIDTH (the f-string cap), checked before any
  padding is made, nested `str.format` specs after substitution;
- field traversal (`.` or `[` in a field name) is refused;
- each field is rendered by the guards' f-string field (`Guards.format_field`: neutral text
  for objects, bounded date formats) or, for numbers, by the real `%` on that one safe
  value, and the pieces' total length is checked against the string limit before they are
  joined;
- a format string has at most max_sequence_items fields (a `%%` or `{{` is one), and every
  field is a round of the rule's budget (sandbox/pacing.py): `'%%' * 499999 % ()` was half a
  million rounds of this module's loop, 2.6 s in-process with no step between.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import SizeExceeded
from sandbox.pacing import Pacer

MAX_WIDTH_DIGITS = 3
MAX_WIDTH = 10**MAX_WIDTH_DIGITS - 1
# CPython refuses a spec nested inside a nested spec ("Max string recursion exceeded").
_MAX_NESTING = 1
_CONVERSIONS = {None: -1, "s": ord("s"), "r": ord("r"), "a": ord("a")}
_NUMBERS = frozenset({int, bool, float})
_PERCENT_FLAGS = frozenset("-+ #0")
_PERCENT_NUMERIC = frozenset("diouxXeEfFgG")
_PERCENT_INTEGER = frozenset("oxX")
_DIGITS = frozenset("0123456789")
# A number past MAX_WIDTH in a spec: more than MAX_WIDTH_DIGITS digits once leading zeros are
# dropped ("0009" is 9). A regular expression: a spec can be a million characters long.
_TOO_WIDE = re.compile(f"[1-9][0-9]{{{MAX_WIDTH_DIGITS}}}")

FieldRenderer = Callable[[object, int, str], str]
ItemReader = Callable[[Any, object], object]


def _too_wide() -> ValueError:
    return ValueError(f"format widths and precisions are at most {MAX_WIDTH} in rules")


@dataclass(slots=True)
class _Pieces:
    """The parts of one result, counted against the string limit as they are added, and its
    fields, counted against the field limit and charged to the budget."""

    max_chars: int
    max_fields: int
    pacer: Pacer
    parts: list[str] = field(default_factory=list)
    size: int = 0
    fields: int = 0

    def count_field(self) -> None:
        self.fields += 1
        if self.fields > self.max_fields:
            raise SizeExceeded(f"more than {self.max_fields} format fields")
        self.pacer.round()

    def add(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.max_chars:
            raise SizeExceeded(f"formatted text over {self.max_chars} characters")
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True, slots=True)
class TextFormatter:
    """`%` and `str.format` bound to one sandbox's field renderer, item guard, limits and budget."""

    render: FieldRenderer
    getitem: ItemReader
    max_chars: int
    max_fields: int
    pacer: Pacer

    # -- printf-style ------------------------------------------------------------------

    def percent(self, template: str, values: object) -> str:
        """`template % values`, as CPython formats it (argument rules included)."""
        mapping = values if _is_mapping(values) else None
        items = values if type(values) is tuple else (values,)
        position = 0

        def take() -> object:
            nonlocal position
            if position >= len(items):
                raise TypeError("not enough arguments for format string")
            position += 1
            return items[position - 1]

        out = self._pieces()
        for literal, spec in _percent_specs(template):
            out.count_field()
            out.add(literal)
            if spec is None:
                continue
            if spec.conversion == "%":
                out.add("%")
                continue
            if spec.key is not None:
                # As CPython: the key's value becomes the only argument of this conversion.
                if mapping is None:
                    raise TypeError("format requires a mapping")
                items, position = (self.getitem(mapping, spec.key),), 0
            width = _resolved(spec.width, take)
            precision = _resolved(spec.precision, take)
            out.add(self._percent_field(take(), spec.flags, width, precision, spec.conversion))
        if position < len(items) and mapping is None:
            raise TypeError("not all arguments converted during string formatting")
        return out.text()

    def _percent_field(self, value: object, flags: str, width: int | None, precision: int | None,
                       conversion: str) -> str:
        if width is not None and width < 0:
            flags, width = flags + "-", -width
        if precision is not None and precision < 0:  # as CPython: a negative star precision is 0
            precision = 0
        if (width or 0) > MAX_WIDTH or (precision or 0) > MAX_WIDTH:
            raise _too_wide()
        layout = "%" + flags + ("" if width is None else str(width)) + ("" if precision is None else f".{precision}")
        if conversion in _PERCENT_NUMERIC:
            if type(value) not in _NUMBERS:
                raise TypeError(_not_a_number(conversion, value))
            return (layout + conversion) % value
        if conversion == "c":
            if type(value) is not int and not (type(value) is str and len(value) == 1):
                raise TypeError("%c requires int or char")
            return (layout + "c") % value
        return (layout + "s") % self.render(value, ord(conversion), "")

    # -- str.format --------------------------------------------------------------------

    def format(self, template: str, args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
        """`template.format(*args, **kwargs)`, as CPython formats it, without field traversal."""
        return self._brace(template, _Arguments(args, kwargs, self.getitem))

    def format_map(self, template: str, mapping: object) -> str:
        """`template.format_map(mapping)`: keyword fields only, read through the item guard."""
        return self._brace(template, _Arguments((), mapping, self.getitem, positional=False))

    def _pieces(self) -> _Pieces:
        return _Pieces(self.max_chars, self.max_fields, self.pacer)

    def _brace(self, template: str, arguments: _Arguments) -> str:
        out = self._pieces()
        self._brace_into(out, template, arguments, 0)
        return out.text()

    def _brace_into(self, out: _Pieces, template: str, arguments: _Arguments, depth: int) -> None:
        for literal, name, spec, conversion in string.Formatter().parse(template):
            out.count_field()
            out.add(literal)
            if name is None:
                continue
            value = arguments.lookup(name)
            if conversion not in _CONVERSIONS:
                raise ValueError(f"Unknown conversion specifier {conversion}")
            if spec and "{" in spec:
                if depth >= _MAX_NESTING:
                    raise ValueError("Max string recursion exceeded")
                nested = self._pieces()
                self._brace_into(nested, spec, arguments, depth + 1)
                spec = nested.text()
            check_spec(spec or "")
            out.add(self.render(value, _CONVERSIONS[conversion], spec or ""))


def check_spec(spec: str) -> None:
    """Refuse a format spec holding a number past MAX_WIDTH (a width, a precision, a date's text)."""
    if _TOO_WIDE.search(spec):
        raise _too_wide()


@dataclass(slots=True)
class _Arguments:
    """The arguments of one `str.format` call, and CPython's rules for numbering fields."""

    args: tuple[object, ...]
    kwargs: object
    getitem: ItemReader
    positional: bool = True
    automatic: int = 0
    numbering: str = ""  # "automatic" or "manual" once a field was numbered: CPython refuses a mix

    def lookup(self, name: str) -> object:
        if "." in name or "[" in name:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise ValueError(f"field traversal is not available in rules: {{{shown}}}")
        if name == "":
            self._number("automatic")
            self.automatic += 1
            return self._positional(self.automatic - 1)
        if name.isascii() and name.isdigit():
            self._number("manual")
            if len(name) > 9:
                raise ValueError("Too many decimal digits in format string")
            return self._positional(int(name))
        return self.getitem(self.kwargs, name)

    def _number(self, kind: str) -> None:
        if self.numbering and self.numbering != kind:
            if kind == "automatic":
                raise ValueError("cannot switch from manual field specification to automatic field numbering")
            raise ValueError("cannot switch from automatic field numbering to manual field specification")
        self.numbering = kind

    def _positional(self, index: int) -> object:
        if not self.positional:
            raise ValueError("Format string contains positional fields")
        if index >= len(self.args):
            raise IndexError(f"Replacement index {index} out of range for positional args tuple")
        return self.args[index]


def _is_mapping(values: object) -> bool:
    # CPython reads `%(key)s` from anything subscriptable but a tuple or a str; the item
    # guard then decides what a rule may subscript.
    return type(values) not in (tuple, str) and hasattr(type(values), "__getitem__")


def _not_a_number(conversion: str, value: object) -> str:
    name = type(value).__name__
    if conversion in _PERCENT_INTEGER:
        return f"%{conversion} format: an integer is required, not {name}"
    if conversion in "diu":
        return f"%{conversion} format: a real number is required, not {name}"
    return f"must be real number, not {name}"


def _resolved(number: int | str | None, take: Callable[[], object]) -> int | None:
    """A width or precision; "*" takes it from the arguments."""
    if isinstance(number, str):
        value = take()
        if type(value) is not int:
            raise TypeError("* wants int")
        return value
    return number


@dataclass(frozen=True, slots=True)
class _PercentSpec:
    key: str | None
    flags: str
    width: int | str | None  # "*": taken from the arguments
    precision: int | str | None
    conversion: str


def _percent_specs(template: str) -> Iterator[tuple[str, _PercentSpec | None]]:
    """(literal text, the conversion after it) pairs; the last pair has no conversion."""
    start = 0
    while True:
        index = template.find("%", start)
        if index < 0:
            yield template[start:], None
            return
        literal = template[start:index]
        spec, start = _parse_percent(template, index + 1)
        yield literal, spec


def _parse_percent(template: str, at: int) -> tuple[_PercentSpec, int]:
    """The conversion starting after a `%` at `at - 1`, and the index after it."""
    end = len(template)
    key = None
    if at < end and template[at] == "(":
        depth, index = 1, at + 1
        while index < end and depth:
            depth += {"(": 1, ")": -1}.get(template[index], 0)
            index += 1
        if depth:
            raise ValueError("incomplete format key")
        key, at = template[at + 1:index - 1], index
    flags_start = at
    while at < end and template[at] in _PERCENT_FLAGS:
        at += 1
    flags = template[flags_start:at]
    width, at = _percent_number(template, at)
    precision: int | str | None = None
    if at < end and template[at] == ".":
        precision, at = _percent_number(template, at + 1)
        precision = 0 if precision is None else precision
    while at < end and template[at] in "hlL":
        at += 1
    if at >= end:
        raise ValueError("incomplete format")
    conversion = template[at]
    if conversion not in _PERCENT_KNOWN:
        raise ValueError(f"unsupported format character '{conversion}' ({ord(conversion):#x}) at index {at}")
    return _PercentSpec(key, flags, width, precision, conversion), at + 1


def _percent_number(template: str, at: int) -> tuple[int | str | None, int]:
    """A width or precision: "*", digits (refused past MAX_WIDTH before they are parsed) or None."""
    if at < len(template) and template[at] == "*":
        return "*", at + 1
    start = at
    while at < len(template) and template[at] in _DIGITS:
        at += 1
    if at == start:
        return None, at
    digits = template[start:at].lstrip("0")
    if len(digits) > MAX_WIDTH_DIGITS:
        raise _too_wide()
    return int(digits or "0"), at


_PERCENT_KNOWN = _PERCENT_NUMERIC | frozenset("srac%")
