"""A versioned set of program sources, and compiling it all-or-nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.compiler import CompileErrors, compile_program
from sandbox.errors import CompileFailed
from sandbox.limits import Limits
from sandbox.runner import Program


@dataclass(frozen=True, slots=True)
class ProgramSource:
    name: str
    source: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "meta": dict(self.meta)}


@dataclass(frozen=True, slots=True)
class ProgramSet:
    version: str
    sources: tuple[ProgramSource, ...]


def compile_set(program_set: ProgramSet, limits: Limits) -> tuple[Program, ...]:
    """Compile every source; raise CompileFailed listing the errors of all of them."""
    if len(program_set.sources) > limits.max_rules:
        raise CompileFailed([f"{len(program_set.sources)} rules; the limit is {limits.max_rules}"])
    programs: list[Program] = []
    errors: list[str] = []
    for source in program_set.sources:
        compiled = compile_program(source.source, source.name, max_source_bytes=limits.max_source_bytes)
        if isinstance(compiled, CompileErrors):
            errors.extend(f"{source.name}: {message}" for message in compiled.errors)
        else:
            programs.append(Program(compiled, source.meta))
    if errors:
        raise CompileFailed(errors)
    return tuple(programs)
