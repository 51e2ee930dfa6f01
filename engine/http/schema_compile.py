"""Compiles a declared body schema into one Python function, written and exec'd once, at import.

The declarations (engine/http/schema_checks.py: Obj, ListOf, Text, Count...) stay the single
source of a body's shape; each writes the lines that check it (`emit`), and this module puts
them together into one function, as dataclasses and attrs write `__init__`. The function checks a
body in one straight pass: inline type, length and range tests, direct calls to the character
checks and to the named checks (timestamps, addresses, free data), and the checked object built
by copying each object of the body and replacing only what a check changes (factor aliases, a
timestamp in its normal form, a null left out).

It is exact on the accepted path only. At the first refusal, or any error, it hands the whole
body to the schema's reference reading (Obj.reference), which names the field and picks the
first refusal in the documented order (unknown field, missing field, refused value). Checks
are pure, so the second reading refuses the same body; the error contract has one definition,
and the generated code says nothing about messages, field names or order.

Safety: the source holds only names made up here (`v0`, `c0`, `value`, `path`, `Refused`,
`reference`), Python keywords and builtins, integers, and our own schema's field names written
with repr(). Every other value a check needs (patterns, functions, sets, float bounds) is put in
the function's namespace under a made-up name, never written as text. The source is written
from the schema before any request arrives, and request data is only ever a value it checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

Check = Callable[[Any, str], Any]


class Refused(Exception):
    """Raised by generated code at a refusal; caught by the same function, never seen outside."""


@runtime_checkable
class Compilable(Protocol):
    def emit(self, source: Source, var: str, indent: int) -> str:
        """Write lines (at `indent`) that raise Refused unless the value in the local `var`
        passes; return an expression for the checked value (`var` itself when unchanged)."""


class Source:
    """The lines of one compiled check, its made-up local names and the values it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"Refused": Refused}
        self._locals = itertools.count()
        self._constants: dict[int, str] = {}  # by id(): one name for one value, however often used

    def local(self) -> str:
        return f"v{next(self._locals)}"

    def constant(self, value: object) -> str:
        """A made-up name for `value` in the namespace: values are never written as text."""
        name = self._constants.get(id(value))
        if name is None:
            name = self._constants[id(value)] = f"c{len(self._constants)}"
            self.namespace[name] = value  # which also keeps it alive, so its id stays its own
        return name

    def write(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def mark(self) -> int:
        return len(self.lines)

    def write_at(self, mark: int, indent: int, line: str) -> None:
        """A line at `mark`, once what follows it is known (a list is built item by item only
        when a check changes its items; otherwise it is copied after they all pass)."""
        self.lines.insert(mark, "    " * indent + line)

    def check(self, check: Check, var: str, indent: int) -> str:
        if isinstance(check, Compilable):
            return check.emit(self, var, indent)
        # A named check (a timestamp, an address, free data, the admin API's own): called as it
        # is. It may raise anything: the reference reading decides what the caller sees.
        return f"{self.constant(check)}({var}, '')"


def literal(value: str | int) -> str:
    """A field name or an integer bound, written as Python source; nothing else is written as text."""
    if type(value) is not str and type(value) is not int:
        raise TypeError(f"only str and int are written into compiled checks, not {type(value).__name__}")
    return repr(value)


def generate(root: Compilable) -> tuple[str, dict[str, Any]]:
    """The source of `check(value, path)` for `root`, and the namespace it runs in (without
    `reference`, which compile_check adds)."""
    source = Source()
    source.write(0, "def check(value, path):")
    source.write(1, "try:")
    checked = root.emit(source, "value", 2)
    source.write(2, f"return {checked}")
    source.write(1, "except Exception:")
    source.write(2, "pass")
    # Outside the except block, so the InvalidRequest raised carries no Refused as its context.
    source.write(1, "return reference(value, path)")
    return "\n".join(source.lines) + "\n", source.namespace


def compile_check(root: Compilable, reference: Check) -> Check:
    """One function checking a value as `root` declares, answering as `reference(value, path)`
    whenever it does not accept the value itself."""
    text, namespace = generate(root)
    namespace["reference"] = reference
    exec(compile(text, f"<compiled {type(root).__name__}>", "exec"), namespace)
    compiled: Check = namespace["check"]
    return compiled
