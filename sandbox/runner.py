"""Run an ordered list of compiled programs against one host binding, with budgets and a trace.

Both runners use `run_programs`: the in-process one directly, the worker process inside
its loop. Each program's module code runs in fresh globals on every evaluation, so
module-level values, default arguments and closures never carry one evaluation's data
into the next; the globals are emptied when the program ends, so what it built is freed
then, not by a garbage collection during someone else's evaluation.
"""

from __future__ import annotations

import dataclasses
import dis
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import Any, NamedTuple, Protocol

from sandbox import facades
from sandbox.compiler import CompiledProgram
from sandbox.errors import DeadlineExceeded, LimitExceeded, StepsExceeded
from sandbox.facades import Facade
from sandbox.guards import AccessPolicy, Guards
from sandbox.limits import Limits
from sandbox.redaction import NO_REDACTION, Redactor
from sandbox.snapshot import Snapshot, take_snapshot
from sandbox.text import display, printable, valid_unicode

Payload = Mapping[str, Any]

# Progress codes, one per program; the worker writes them to memory the parent can read
# after killing it, so the trace of a killed evaluation still says which rule was running.
NOT_RUN, RUNNING, OK, ERROR, TIMEOUT = 0, 1, 2, 3, 4
OUTCOME_NAMES = {OK: "ok", ERROR: "error", TIMEOUT: "timeout", RUNNING: "killed", NOT_RUN: "not_run"}
# The trace's names for an evaluation whose input the host could not turn into rule arguments,
# and for one that failed in the sandbox itself (the host's bookkeeping, an unencodable reply).
UNBOUND_INPUT = "<input>"
SANDBOX_FAILURE = "<sandbox>"


class Binding(Protocol):
    """One evaluation's host objects. Everything it returns is plain data."""

    @property
    def args(self) -> tuple[object, ...]: ...

    @property
    def redactor(self) -> Redactor:
        """The secrets this evaluation's programs were handed: the runner takes them out of log lines
        and error messages before it cuts them (sandbox/redaction.py)."""

    def checkpoint(self, meta: Mapping[str, Any]) -> object:
        """Called before each program runs (`meta` is its opaque metadata): the state to
        return to if it fails."""

    def restore(self, checkpoint: object) -> None: ...

    def fail(self, meta: Mapping[str, Any]) -> None:
        """Apply the failure policy of a rule that raised or ran out of budget."""

    def is_finished(self) -> bool: ...

    def result(self) -> dict[str, Any]: ...


class Host(Protocol):
    access: AccessPolicy

    def bind(self, payload: Payload, log: Callable[[str], None]) -> Binding: ...


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled program, opaque host metadata (plain data) handed back on failure, and,
    once prepared, the snapshot of its module body (sandbox/snapshot.py)."""

    compiled: CompiledProgram
    meta: Mapping[str, Any]
    snapshot: Snapshot | None = None

    @property
    def name(self) -> str:
        return self.compiled.name


class ProgramTrace(NamedTuple):
    # A NamedTuple rather than a frozen dataclass: built once per rule per evaluation, and
    # the dataclass's object.__setattr__ calls cost more than the rest of the bookkeeping.
    name: str
    outcome: str
    duration_us: int
    error: str | None
    logs: tuple[str, ...]

    def to_plain(self) -> dict[str, Any]:
        return {"rule": self.name, "outcome": self.outcome, "duration_us": self.duration_us,
                "error": self.error, "logs": list(self.logs)}


# ProgramTrace((name, ...)) without the generated __new__'s Python frame: one per rule per evaluation.
_new_trace: Callable[[tuple[str, str, int, str | None, tuple[str, ...]]], ProgramTrace] = functools.partial(
    tuple.__new__, ProgramTrace)


@dataclass(frozen=True, slots=True)
class RunReport:
    """`result` is the binding's plain result; None when the evaluation itself died."""

    result: dict[str, Any] | None
    trace: tuple[ProgramTrace, ...]
    logs_dropped: int = 0


class Budget:
    """Steps and deadline of the running program; `tick` is the compiled `_tick_()`."""

    __slots__ = ("steps", "next_check", "max_steps", "deadline", "clock")

    def __init__(self, max_steps: int, clock: Callable[[], float]) -> None:
        self.max_steps = max_steps
        self.clock = clock
        self.steps = 0
        self.next_check = 0
        self.deadline = 0.0

    def start(self, deadline: float) -> None:
        self.steps = 0
        self.next_check = 256
        self.deadline = deadline

    def tick(self) -> bool:
        self.steps += 1
        if self.steps >= self.next_check:
            self._check()
        return True

    def _check(self) -> None:
        # Once exceeded, next_check stays 0 so every later tick raises again: a rule's
        # `finally:` block cannot keep running after its budget is gone.
        if self.steps > self.max_steps:
            self.next_check = 0
            raise StepsExceeded(f"more than {self.max_steps} steps")
        if self.clock() > self.deadline:
            self.next_check = 0
            raise DeadlineExceeded("deadline exceeded")
        self.next_check = self.steps + 256


class LogSink:
    """Log lines of one evaluation, attributed to the running program, within the limits."""

    def __init__(self, limits: Limits) -> None:
        self._lines_left = limits.max_log_lines
        self._bytes_left = limits.max_output_bytes
        self.current: list[str] = []
        self.dropped = 0
        self.redactor = NO_REDACTION  # the binding's, once there is one

    def write(self, line: str) -> None:
        """Keep `line` for the running program's trace; raises ValueError (in the rule) for
        text that could not cross the sandbox boundary."""
        if not valid_unicode(line):
            raise ValueError("log text must be valid Unicode (it has a lone surrogate)")
        if self._lines_left <= 0 or self._bytes_left <= 0:
            self.dropped += 1
            return
        line = self.redactor.bounded(lambda count: line[:count], self._bytes_left)
        self._lines_left -= 1
        self._bytes_left -= len(line)
        self.current.append(line)

    def take(self) -> tuple[str, ...]:
        if not self.current:
            return ()
        lines, self.current = tuple(self.current), []
        return lines


class PrintToLog:
    """What RestrictedPython's rewritten `print(...)` calls: lines go to the trace."""

    __slots__ = ("_sink", "_printed", "_join")

    def __init__(self, sink: LogSink, join: Callable[[tuple[object, ...], object], str]) -> None:
        self._sink = sink
        self._printed: list[str] = []
        self._join = join

    def _call_print(self, *objects: object, sep: object = " ", end: object = "\n", file: object = None) -> None:
        if file is not None:
            raise TypeError("print(file=...) is not available to rules")
        text = self._join(objects, sep)
        self._sink.write(text)
        self._printed.append(text + self._join((end,), ""))

    def __call__(self) -> str:
        return "".join(self._printed)


def run_programs(
    programs: Sequence[Program],
    host: Host,
    guards: Guards,
    payload: Payload,
    *,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    limits = guards.limits
    sink = LogSink(limits)
    facades.forget_patterns()
    try:
        binding = host.bind(payload, sink.write)
    except Exception as exc:  # noqa: BLE001 - an input the host cannot bind fails, it never crashes
        # The type only: the message may quote the input, which may be personal data.
        why = f"the input could not be bound for the rules ({type(exc).__name__})"
        return RunReport(None, (ProgramTrace(UNBOUND_INPUT, "error", 0, why, ()),))
    budget = Budget(limits.max_steps, clock)
    redactor = sink.redactor = binding.redactor

    def join_for_print(items: tuple[object, ...], separator: object) -> str:
        return guards.join_for_print(items, separator, redactor)

    def print_factory(_getattr_: object = None) -> PrintToLog:
        return PrintToLog(sink, join_for_print)

    traces: list[ProgramTrace] = []
    try:
        rule_timeout = limits.rule_timeout_ms / 1000
        pipeline_deadline = clock() + limits.pipeline_timeout_ms / 1000
        is_finished, checkpoint, args = binding.is_finished, binding.checkpoint, binding.args
        start, fresh_globals = guards.evaluation_globals(budget.tick, print_factory), guards.fresh_globals
        for index, program in enumerate(programs):
            if is_finished():
                break
            if progress is not None:
                progress(index, RUNNING)
            saved = checkpoint(program.meta)
            namespace = fresh_globals(start)
            started = clock()
            deadline = started + rule_timeout
            budget.start(deadline if deadline < pipeline_deadline else pipeline_deadline)
            code, error = _run_one(program, namespace, args, redactor)
            # Break the globals <-> functions cycle now: nothing the rule built outlives it.
            namespace.clear()
            finished = clock()
            if code == OK and finished > budget.deadline:
                # Budgets are checked between steps; one long C call (a strftime, a sort) can
                # pass the deadline without a step. A rule that overran is late, whatever it did.
                code, error = TIMEOUT, "DeadlineExceeded: deadline exceeded"
            if error is not None and redactor:
                error = redactor(error)  # the sandbox's own words too: a one-letter secret is in them
            duration_us = int((finished - started) * 1e6)
            if code != OK:
                binding.restore(saved)
                binding.fail(program.meta)
            if progress is not None:
                progress(index, code)
            traces.append(_new_trace((program.compiled.name, OUTCOME_NAMES[code], duration_us, error,
                                      sink.take() if sink.current else ())))
        return RunReport(binding.result(), tuple(traces), sink.dropped)
    except Exception as exc:  # noqa: BLE001 - the host or the interpreter failed: fail the evaluation
        failure = ProgramTrace(SANDBOX_FAILURE, "error", 0,
                               f"the evaluation failed in the sandbox ({type(exc).__name__})", ())
        return RunReport(None, (*traces, failure))


def prepare_programs(programs: Sequence[Program], guards: Guards) -> tuple[Program, ...]:
    """Run each module body once, under budget, and keep a snapshot where one is safe."""
    shareable = frozenset(
        [id(value) for value in guards.builtins.values()]
        + [id(value) for value in guards.static_globals.values()]
        + [id(member) for value in guards.static_globals.values() if isinstance(value, Facade)
           for member in value.members.values()]
    )
    limits = guards.limits
    prepared = []
    for program in programs:
        sink = LogSink(limits)
        budget = Budget(limits.max_steps, time.perf_counter)
        budget.start(time.perf_counter() + limits.rule_timeout_ms / 1000)
        base = guards.globals_for(budget.tick, lambda _getattr_=None: PrintToLog(sink, guards.join_for_print))
        template = dict(base)
        snapshot = None
        if not _calls_at_module_level(program.compiled.code):
            # Definitions and literals only: executing them (about 1 us) is as cheap as
            # instantiating a snapshot, and needs no reasoning about sharing.
            prepared.append(program)
            continue
        try:
            exec(program.compiled.code, template)
        except (Exception, LimitExceeded):
            pass  # the failure will happen again, with a trace, when the rule runs
        else:
            if not sink.current and not sink.dropped:
                snapshot = take_snapshot(template, base, shareable)
        prepared.append(dataclasses.replace(program, snapshot=snapshot))
    return tuple(prepared)


def _calls_at_module_level(code: CodeType) -> bool:
    """Whether module-level code calls anything (function bodies are separate code objects)."""
    return any(instruction.opname.startswith("CALL") for instruction in dis.get_instructions(code))


def _run_one(program: Program, namespace: dict[str, object], args: tuple[object, ...],
             redactor: Redactor = NO_REDACTION) -> tuple[int, str | None]:
    try:
        if program.snapshot is None:
            exec(program.compiled.code, namespace)
        else:
            program.snapshot.instantiate(namespace)
        returned = namespace["rule"](*args)  # type: ignore[operator]
    except LimitExceeded as exc:
        return (TIMEOUT if exc.outcome == "timeout" else ERROR), f"{type(exc).__name__}: {exc}"
    except MemoryError:
        return ERROR, "MemoryError: the rule ran out of memory"
    except RecursionError:
        return ERROR, "RecursionError: maximum recursion depth exceeded"
    except Exception as exc:
        return ERROR, _describe(exc, program.name, redactor)
    if returned is not None:
        return ERROR, f"rule() returned a {type(returned).__name__}; rules act through context and return nothing"
    return OK, None


MAX_ERROR_CHARS = 500


def _describe(exc: BaseException, filename: str, redactor: Redactor = NO_REDACTION) -> str:
    """The trace's text for a failed rule: total (never raises), bounded, valid Unicode, with the
    binding's secrets taken out before it is cut."""
    try:
        line = _rule_line(exc.__traceback__, filename)
        where = redactor(f" (line {line})") if line else ""  # the whole text is redacted: "e" is a secret too
        name = type(exc).__name__

        def render(count: int) -> str:
            return f"{name}: {display(exc, count)}"[:count]

        # A secret holds no lone surrogate, so printable() escapes none of its characters.
        head = printable(redactor.bounded(render, MAX_ERROR_CHARS - len(where)))
        return redactor.cut(head, MAX_ERROR_CHARS - len(where)) + where
    except BaseException:  # noqa: BLE001 - describing a failure must never become one (MemoryError...)
        return "the rule failed; its error could not be described"


def _rule_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
