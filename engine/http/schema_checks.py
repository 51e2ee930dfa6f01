"""The building blocks of request schemas, as data: objects, lists, text, numbers, choices.

Each is a frozen value holding its bounds (a text's length, pattern and kind; a count's maximum;
a list's item and size; an object's fields and required names), read by two writers: the
compiler (engine/http/schema_compile.py, through each block's `emit`) and, later, the OpenAPI
document. Calling a block checks one value against it: `check(value, path)` returns the checked
value or raises InvalidRequest naming the dotted field `path`.

An Obj, called, runs its compiled function; `Obj.reference` is the same check read one step
at a time, the definition the compiled function defers to for every refusal (and the oracle
its tests compare it with). The other blocks, called, are their own reference reading; inside
a compiled Obj they are written inline instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from engine import formats
from engine.errors import InvalidRequest
from engine.http.schema_compile import Check, Source, compile_check, literal


class TextKind(StrEnum):
    IDENTIFIER = "identifier"
    FREE = "free text"
    SECRET = "secret"


# The characters each kind may carry, and what a refusal says (engine/http/schema.py: the ledger).
ALLOWED: Mapping[TextKind, tuple[Callable[[str], bool], str]] = MappingProxyType({
    TextKind.IDENTIFIER: (formats.is_identifier, "must be printable, without spaces at either end, line breaks, "
                                                 "control or invisible characters"),
    TextKind.FREE: (formats.is_free_text, "must not contain line breaks, control characters or bidi overrides"),
    TextKind.SECRET: (formats.is_secret_text, "must not contain line breaks or control characters"),
})


@dataclass(frozen=True, slots=True)
class Text:
    """A string of 1 to `max_length` characters of its kind, matching `pattern` whole if given."""

    max_length: int
    pattern: re.Pattern[str] | None = None
    kind: TextKind = TextKind.IDENTIFIER
    _allowed: Callable[[str], bool] = field(init=False, repr=False, compare=False)
    _why: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allowed, why = ALLOWED[self.kind]  # found once: hashing an enum member is a Python call
        object.__setattr__(self, "_allowed", allowed)
        object.__setattr__(self, "_why", why)

    def __call__(self, value: Any, path: str) -> str:
        if type(value) is not str or not 0 < len(value) <= self.max_length:
            raise InvalidRequest(f"must be a string of 1 to {self.max_length} characters", field=path)
        if not self._allowed(value):
            raise InvalidRequest(self._why, field=path)
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            raise InvalidRequest("has the wrong format", field=path)
        return value

    def emit(self, source: Source, var: str, indent: int) -> str:
        test = (f"type({var}) is not str or not 0 < len({var}) <= {literal(self.max_length)}"
                f" or not {source.constant(self._allowed)}({var})")
        if self.pattern is not None:
            test += f" or {source.constant(self.pattern.fullmatch)}({var}) is None"
        source.write(indent, f"if {test}: raise Refused")
        return var


@dataclass(frozen=True, slots=True)
class Boolean:
    def __call__(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise InvalidRequest("must be true or false", field=path)
        return value

    def emit(self, source: Source, var: str, indent: int) -> str:
        source.write(indent, f"if type({var}) is not bool: raise Refused")
        return var


@dataclass(frozen=True, slots=True)
class Count:
    """An integer from 0 to `maximum` (true and false are not numbers here)."""

    maximum: int

    def __call__(self, value: Any, path: str) -> int:
        if type(value) is not int or not 0 <= value <= self.maximum:
            raise InvalidRequest("must be a non-negative integer", field=path)
        return value

    def emit(self, source: Source, var: str, indent: int) -> str:
        source.write(indent, f"if type({var}) is not int or not 0 <= {var} <= {literal(self.maximum)}: raise Refused")
        return var


@dataclass(frozen=True, slots=True)
class Degrees:
    """A latitude (limit 90) or longitude (180) in degrees: a finite number within +-limit, as a float."""

    limit: float

    def __call__(self, value: Any, path: str) -> float:
        if type(value) not in (int, float) or not -self.limit <= value <= self.limit:  # NaN fails the range too
            raise InvalidRequest(f"must be a number from -{self.limit:g} to {self.limit:g}", field=path)
        return float(value)

    def emit(self, source: Source, var: str, indent: int) -> str:
        low, high = source.constant(-self.limit), source.constant(self.limit)
        source.write(indent, f"if (type({var}) is not int and type({var}) is not float)"
                             f" or not {low} <= {var} <= {high}: raise Refused")
        return f"float({var})"


@dataclass(frozen=True, slots=True)
class Choice:
    """One of the keys of `values`, checked as the value it maps to (an alias as its name)."""

    values: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __call__(self, value: Any, path: str) -> str:
        if type(value) is not str or value not in self.values:
            raise InvalidRequest(f"must be one of {', '.join(self.values)}", field=path)
        return self.values[value]

    def emit(self, source: Source, var: str, indent: int) -> str:
        values = source.constant(dict(self.values))
        source.write(indent, f"if type({var}) is not str or {var} not in {values}: raise Refused")
        return var if all(key == name for key, name in self.values.items()) else f"{values}[{var}]"


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list of at most `max_items` items, each checked by `item`."""

    item: Check
    max_items: int

    def __call__(self, value: Any, path: str) -> list[Any]:
        if type(value) is not list or len(value) > self.max_items:
            raise InvalidRequest(f"must be a list of at most {self.max_items} items", field=path)
        item = reference_of(self.item)
        try:
            return [item(element, path) for element in value]
        except InvalidRequest:
            # Items are named (`groups[3]`) only when one is refused: checks are pure, so the
            # first refused item, checked again under its own name, fails the same way.
            for index, element in enumerate(value):
                item(element, f"{path}[{index}]")
            raise

    def emit(self, source: Source, var: str, indent: int) -> str:
        source.write(indent, f"if type({var}) is not list or len({var}) > {literal(self.max_items)}: raise Refused")
        checked, element = source.local(), source.local()
        before_loop = source.mark()
        source.write(indent, f"for {element} in {var}:")
        item = source.check(self.item, element, indent + 1)
        if item == element:
            source.write(indent, f"{checked} = {var}.copy()")  # a new list, as the reference builds
        else:
            source.write_at(before_loop, indent, f"{checked} = []")
            source.write(indent + 1, f"{checked}.append({item})")
        return checked


@dataclass(frozen=True, slots=True)
class Obj:
    """A JSON object: only the declared fields, the required ones present (null counts as absent).

    Refusals in this order: the first unknown field (in the body's order), the first missing
    required one (alphabetically), then the first field whose value is refused. The checked
    object keeps the body's order and leaves out null fields."""

    fields: Mapping[str, Check]
    required: frozenset[str] = frozenset()
    _required_in_order: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _references: Mapping[str, Check] = field(init=False, repr=False, compare=False)
    compiled: Check = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not all(type(key) is str for key in self.fields):
            raise TypeError("an object's field names are text")
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        object.__setattr__(self, "_required_in_order", tuple(sorted(self.required)))
        # Found once: every refused body is read by the reference, so it should not be slow either.
        object.__setattr__(self, "_references", {key: reference_of(check) for key, check in self.fields.items()})
        object.__setattr__(self, "compiled", compile_check(self, self.reference))

    def __call__(self, value: Any, path: str) -> dict[str, Any]:
        return self.compiled(value, path)  # type: ignore[no-any-return]

    def reference(self, value: Any, path: str) -> dict[str, Any]:
        prefix = f"{path}." if path else ""
        if type(value) is not dict:
            raise InvalidRequest("must be a JSON object", field=path or None)
        fields = self.fields
        if not fields.keys() >= value.keys():
            unknown = next(key for key in value if key not in fields)
            raise InvalidRequest("is not a known field", field=f"{prefix}{unknown}")
        for key in self._required_in_order:
            if value.get(key) is None:
                raise InvalidRequest("is required", field=f"{prefix}{key}")
        references = self._references
        return {key: references[key](element, prefix + key) for key, element in value.items() if element is not None}

    def emit(self, source: Source, var: str, indent: int) -> str:
        known = source.constant(frozenset(self.fields))
        source.write(indent, f"if type({var}) is not dict or not {known}.issuperset({var}): raise Refused")
        checked = source.local()
        source.write(indent, f"{checked} = {var}.copy()")  # the body's order; changed values replaced in place
        for key, check in self.fields.items():
            name, element = literal(key), source.local()
            source.write(indent, f"{element} = {var}.get({name})")
            if key in self.required:
                source.write(indent, f"if {element} is None: raise Refused")
                self._emit_field(source, check, checked, name, element, indent)
            else:
                source.write(indent, f"if {element} is not None:")
                self._emit_field(source, check, checked, name, element, indent + 1)
                source.write(indent, f"elif {name} in {var}:")
                source.write(indent + 1, f"del {checked}[{name}]")
        return checked

    @staticmethod
    def _emit_field(source: Source, check: Check, checked: str, name: str, element: str, indent: int) -> None:
        value = source.check(check, element, indent)
        if value != element:
            source.write(indent, f"{checked}[{name}] = {value}")


def reference_of(check: Check) -> Check:
    """The step-by-step reading of `check`: an Obj's reference, every other block itself."""
    return check.reference if isinstance(check, Obj) else check
