"""The in-process runner: rules run on the caller's thread, guarded but not isolated.

For trusted rule sets and fast tests. Step and deadline budgets, the attribute and write
guards and the size guards all apply; memory is not capped and C code that never returns
(a catastrophic regular expression) cannot be stopped. Use the worker pool for anything
an attacker may have written.
"""

from __future__ import annotations

from typing import Any

from sandbox.guards import Guards
from sandbox.limits import Limits
from sandbox.programs import ProgramSet, compile_set
from sandbox.runner import Host, Payload, Program, RunReport, prepare_programs, run_programs


class InProcessRunner:
    isolation = "inprocess"

    def __init__(self, host: Host, limits: Limits) -> None:
        self._host = host
        self._guards = Guards(host.access, limits)
        self._limits = limits
        self._compiled: tuple[str, tuple[Program, ...]] | None = None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def run(self, program_set: ProgramSet, payload: Payload) -> RunReport:
        return self.run_sync(program_set, payload)

    def run_sync(self, program_set: ProgramSet, payload: Payload) -> RunReport:
        return run_programs(self._programs(program_set), self._host, self._guards, payload)

    def _programs(self, program_set: ProgramSet) -> tuple[Program, ...]:
        if self._compiled is None or self._compiled[0] != program_set.version:
            programs = prepare_programs(compile_set(program_set, self._limits), self._guards)
            self._compiled = (program_set.version, programs)
        return self._compiled[1]

    def state(self) -> dict[str, Any]:
        return {"isolation": self.isolation, "healthy": True}
