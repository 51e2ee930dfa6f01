"""JSON Schema (2020-12, as OpenAPI 3.1 uses it) written from the declared schemas themselves.

The request blocks (engine/http/schema_checks.py: Obj, ListOf, Text, Count, Degrees, Choice,
Boolean) are read field by field, so the document says what the validators accept and nothing
is kept twice. A named check (a plain function: timestamps, addresses, free data, rule sources)
is code, not data: it says what JSON it accepts with `described`, beside its code, and a check
that says nothing stops the document (UndescribedCheck) rather than being left out of it.
Response shapes (engine/http/responses.py) write themselves through `Shape.json_schema`.

An Obj reads a null field as absent (schema_checks.Obj), so its optional fields are written
nullable: a document that said otherwise would be stricter than the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, runtime_checkable

from engine.http.schema_checks import ALLOWED, Boolean, Choice, Count, Degrees, ListOf, Obj, Text, TextKind

JsonSchema = dict[str, Any]
Write = Callable[[object], JsonSchema]
_Check = TypeVar("_Check", bound=Callable[..., Any])

_DESCRIBED = "__json_schema__"
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")

# What each kind of text may carry, for readers of the document (the checks are in engine/formats.py).
KIND_NOTES: Mapping[TextKind, str] = MappingProxyType({
    kind: f"{kind.value}: {why}" for kind, (_, why) in ALLOWED.items()})


class UndescribedCheck(TypeError):
    """A check the document cannot describe: a named check without `described`, or an unknown block."""


@runtime_checkable
class Shape(Protocol):
    """A block that writes its own JSON Schema, calling `write` for the blocks inside it."""

    def json_schema(self, write: Write) -> JsonSchema: ...


def described(schema: Mapping[str, Any]) -> Callable[[_Check], _Check]:
    """Declares, beside a named check's code, the JSON Schema of what it accepts."""
    frozen = MappingProxyType(dict(schema))

    def attach(check: _Check) -> _Check:
        setattr(check, _DESCRIBED, frozen)
        return check
    return attach


def description_of(check: object) -> Mapping[str, Any] | None:
    found = getattr(check, _DESCRIBED, None)
    return found if isinstance(found, MappingProxyType) else None


def ecma_pattern(pattern: re.Pattern[str]) -> str:
    """A Python pattern matched whole (fullmatch) as a JSON Schema pattern (ECMA 262, searched):
    anchored, named groups unnamed (Python writes them `(?P<name>`)."""
    return f"^(?:{_NAMED_GROUP.sub('(?:', pattern.pattern)})$"


def nullable(schema: JsonSchema) -> JsonSchema:
    """`schema` or null."""
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema:
        widened = {**schema, "type": [kind, "null"]}
        if "enum" in schema:
            widened["enum"] = [*schema["enum"], None]
        return widened
    return {"anyOf": [schema, {"type": "null"}]}


class SchemaWriter:
    """Writes checks as JSON Schema; the checks in `named` (by identity) as references to
    `#/components/schemas/<name>`, which `components()` then defines."""

    def __init__(self, named: Mapping[str, object] = MappingProxyType({})) -> None:
        self._names = {id(check): name for name, check in named.items()}
        self._named = dict(named)

    def components(self) -> dict[str, JsonSchema]:
        return {name: self.define(check) for name, check in self._named.items()}

    def write(self, check: object) -> JsonSchema:
        name = self._names.get(id(check))
        if name is not None:
            return {"$ref": f"#/components/schemas/{name}"}
        return self.define(check)

    def define(self, check: object) -> JsonSchema:
        """`check` written out in full (its own fields may still be references)."""
        if isinstance(check, Obj):
            return self._object(check)
        if isinstance(check, Text):
            return _text(check)
        if isinstance(check, ListOf):
            return {"type": "array", "items": self.write(check.item), "maxItems": check.max_items}
        if isinstance(check, Count):
            return {"type": "integer", "minimum": 0, "maximum": check.maximum}
        if isinstance(check, Degrees):
            return {"type": "number", "minimum": -check.limit, "maximum": check.limit}
        if isinstance(check, Choice):
            return {"type": "string", "enum": list(check.values)}
        if isinstance(check, Boolean):
            return {"type": "boolean"}
        if isinstance(check, Shape):
            return check.json_schema(self.write)
        found = description_of(check)
        if found is None:
            raise UndescribedCheck(f"{getattr(check, '__qualname__', type(check).__name__)} says nothing of the "
                                   "JSON it accepts: declare it with engine.http.json_schema.described")
        return dict(found)

    def _object(self, check: Obj) -> JsonSchema:
        properties = {key: self.write(child) if key in check.required else nullable(self.write(child))
                      for key, child in check.fields.items()}
        schema: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": False}
        if check.required:
            schema["required"] = sorted(check.required)
        return schema


def _text(check: Text) -> JsonSchema:
    schema: JsonSchema = {"type": "string", "minLength": 1, "maxLength": check.max_length}
    if check.pattern is not None:
        schema["pattern"] = ecma_pattern(check.pattern)
    schema["description"] = KIND_NOTES[check.kind]
    return schema
