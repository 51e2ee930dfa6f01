"""The active rule set (ordered, versioned, immutable) and its evaluation in the sandbox.

A rule set is loaded whole: every file in `rules/` named `NN-name.py` compiles, or the
set is rejected with every error of every file. Evaluation hands plain data to the
sandbox and turns what comes back into an Evaluation; a rule that failed, timed out or
was killed fails closed as `rules.on_error` says (deny by default).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine import rule_lint
from engine.config import RulesSettings
from engine.fairness import FairShares
from engine.formats import RULE_ID
from engine.outcome import MalformedOutcome, Outcome
from engine.rule_settings import NO_SETTINGS, RuleSettings, redact_report
from sandbox.errors import CompileFailed
from sandbox.limits import Limits
from sandbox.programs import ProgramSet, ProgramSource, compile_set
from sandbox.runner import ProgramTrace, RunReport

log = logging.getLogger("engine.pipeline")


class RuleSetRejected(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class Executor(Protocol):
    """Runs a ProgramSet: sandbox.inprocess.InProcessRunner or sandbox.pool.WorkerPool."""

    isolation: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def run(self, program_set: ProgramSet, payload: dict[str, Any]) -> RunReport: ...

    def state(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    summary: str
    on_error: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    programs: ProgramSet
    settings: RuleSettings = NO_SETTINGS  # what rules read as context.settings (engine/rule_settings.py)


@dataclass(frozen=True, slots=True)
class Evaluation:
    outcome: Outcome
    trace: tuple[ProgramTrace, ...]
    version: str


def build_rule_set(sources: Mapping[str, str], settings: RulesSettings, limits: Limits) -> RuleSet:
    """Compile {rule id: source} in id order; raise RuleSetRejected listing every error of every
    rule, rule by rule in line order: a misnamed id, compile errors, and mistakes against the
    rule API (engine/rule_lint.py). One rule's error never hides another's."""
    ordered = sorted(sources.items())
    program_sources = tuple(
        ProgramSource(rule_id, source, {"rule": rule_id, "on_error": _on_error(rule_id, settings)})
        for rule_id, source in ordered
    )
    digest = hashlib.sha256()
    for item in program_sources:
        digest.update(f"{item.name}\0{item.meta['on_error']}\0{item.source}\0".encode("utf-8", "surrogatepass"))
    program_set = ProgramSet(digest.hexdigest()[:16], program_sources)
    try:
        programs, compile_errors = compile_set(program_set, limits), []
    except CompileFailed as exc:
        programs, compile_errors = (), list(exc.errors)
    errors = _errors_by_rule(ordered, compile_errors, limits)
    if errors:
        raise RuleSetRejected(errors)
    rules = tuple(
        Rule(program.name, program.compiled.summary.splitlines()[0] if program.compiled.summary else "",
             program.meta["on_error"])
        for program in programs
    )
    return RuleSet(program_set.version, rules, program_set)


def _errors_by_rule(ordered: list[tuple[str, str]], compile_errors: list[str], limits: Limits) -> list[str]:
    """Errors about the whole set first, then each rule's ("<id>: Line N: message") in line order."""
    by_rule: dict[str, list[str]] = {rule_id: [] for rule_id, _ in ordered}
    errors: list[str] = []
    for error in compile_errors:
        rule_id = error.split(": ", 1)[0]
        (by_rule[rule_id] if rule_id in by_rule else errors).append(error)
    for rule_id, source in ordered:
        if RULE_ID.fullmatch(rule_id) is None:
            errors.append(f"{rule_id}: the name must look like NN-name (digits, a dash, lower-case letters, digits, "
                          "dashes)")
        # Over the size limit the compiler says so; the lint does not read it.
        if len(source) <= limits.max_source_bytes:
            by_rule[rule_id].extend(f"{rule_id}: {message}" for message in rule_lint.lint(source))
        errors.extend(sorted(by_rule[rule_id], key=lambda error: _line_of(rule_id, error)))
    return errors


def _line_of(rule_id: str, error: str) -> int:
    line = _LINE.match(error, len(rule_id) + 2)
    return int(line[1]) if line else 0


_LINE = re.compile(r"Line ([0-9]+): ")


def load_rule_set(directory: Path, settings: RulesSettings, limits: Limits) -> RuleSet:
    """Read `directory`'s rule files; files that are not `.py` are ignored, misnamed `.py` files rejected.
    A file that cannot be read is reported with the errors of all the others."""
    if not directory.is_dir():
        raise RuleSetRejected([f"{directory}: the rules directory does not exist"])
    sources: dict[str, str] = {}
    errors: list[str] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".py" or not path.is_file():
            continue
        try:
            raw = path.read_bytes()
            sources[path.stem] = raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(f"{path.stem}: Line 1: source is not valid UTF-8")
        except OSError as exc:
            errors.append(f"{path.stem}: cannot read ({exc.strerror})")
    try:
        rule_set = build_rule_set(sources, settings, limits)
    except RuleSetRejected as exc:
        raise RuleSetRejected(errors + exc.errors) from exc
    if errors:
        raise RuleSetRejected(errors)
    return rule_set


async def run_rules(executor: Executor, rule_set: RuleSet, payload: dict[str, Any]) -> RunReport:
    """Run `rule_set` on `payload` with its settings; the one way rules are run (the pipeline, dry
    runs, fixtures, the CLI), so secret settings are redacted from every report before anyone reads it."""
    settings = rule_set.settings
    if settings.entries:
        payload = {**payload, "settings": settings.plain, "secret_keys": settings.secret_keys}
    return redact_report(await executor.run(rule_set.programs, payload), settings)


def outcome_of(rule_set: RuleSet, report: RunReport) -> Outcome:
    """The run's outcome; when the evaluation itself died, or answered something that is not an
    outcome, the fail-closed one."""
    if report.result is not None:
        try:
            return Outcome.from_plain(report.result)
        except MalformedOutcome as exc:
            log.error("outcome_malformed version=%s error=%s", rule_set.version, exc)
            return Outcome.failed([rule.id for rule in rule_set.rules], "deny")
    on_error = {rule.id: rule.on_error for rule in rule_set.rules}
    failed = [t.name for t in report.trace if t.outcome != "ok"]
    modes = [on_error.get(name, "deny") for name in failed]
    # A dead worker took the earlier rules' effects with it: with nothing to build on,
    # only an explicit require_mfa on every failed rule keeps the login going.
    mode = "require_mfa" if modes and all(m == "require_mfa" for m in modes) else "deny"
    return Outcome.failed(failed, mode)


def _on_error(rule_id: str, settings: RulesSettings) -> str:
    return settings.on_error_by_rule.get(rule_id, settings.on_error)


class Pipeline:
    """Evaluates the active RuleSet on an executor; `rule_set` is swapped in one assignment."""

    def __init__(self, rule_set: RuleSet, executor: Executor, shares: FairShares | None = None,
                 on_trace: Callable[[tuple[ProgramTrace, ...]], None] | None = None) -> None:
        """`on_trace` is handed each evaluation's trace (engine/metrics.py: rule durations, failures)."""
        self.rule_set = rule_set
        self.executor = executor
        self.shares = shares or FairShares(per_user=0, per_client=0)
        self.on_trace = on_trace

    async def evaluate(self, payload: dict[str, Any]) -> Evaluation:
        """Raises TooManyEvaluations past the user's or client's share, before queueing."""
        rule_set = self.rule_set  # in-flight evaluations finish on the version they started with
        context = payload["context"]
        with self.shares.hold(payload["user"].get("user_id"), context["client"].get("client_id"),
                              context["connection"].get("ip")):
            report = await run_rules(self.executor, rule_set, payload)
        outcome = outcome_of(rule_set, report)
        if self.on_trace is not None:
            self.on_trace(report.trace)
        for trace in report.trace:
            if trace.outcome != "ok":
                log.warning("rule_failed rule=%s outcome=%s version=%s", trace.name, trace.outcome, rule_set.version)
        return Evaluation(outcome, report.trace, rule_set.version)

