"""Rule tests: fixtures beside the rules (`rules/tests/*.yaml`), run against a candidate set.

A fixture file holds a list of fixtures (or one), each:

    name: a US login with a known device is allowed
    user: {user_id: u-1, logins_count: 3, known_countries: [US], ...}     as in POST /v1/evaluate
    context: {ip: 203.0.113.7, device_id: dev-1, ...}                       as in POST /v1/evaluate
    country: US          what GeoIP says about context.ip (optional; default: nothing known)
    now: "2026-01-01T12:00:00+00:00"     optional: context.now (ISO 8601, naive means UTC); default below
    decision: allow      allow | mfa | deny
    factors: [otp, sms]  optional: the offered factors, in order
    reason: ...          optional

The decision is taken as /v1/evaluate takes it (signals.collect, the rules, policy.decide), with
the configured `mfa` settings, on the runner the caller gives: the service's own executor for a
change through the API (the rules may be untrusted: the worker pool in production), the
in-process runner for `mfa-engine rules test` (the operator's own folder).
A failure is data (FixtureFailure), never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from engine import policy, signals
from engine.clock import NOW_FORMAT, parse_now
from engine.config import MfaSettings
from engine.geo import GeoFacts
from engine.pipeline import Executor, RuleSet, outcome_of, run_rules
from engine.rule_host import host_for
from sandbox.inprocess import InProcessRunner
from sandbox.limits import Limits

FIXTURE_DIR = "tests"
DEFAULT_NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
_KEYS = frozenset({"name", "user", "context", "country", "now", "decision", "factors", "reason"})


@dataclass(frozen=True, slots=True)
class FixtureFailure:
    """`file` is the fixture's file name (`tests/20-home.yaml`); `fixture` its name, when it has one."""

    file: str
    fixture: str | None
    message: str


@dataclass(frozen=True, slots=True)
class FixtureResult:
    file: str
    name: str
    passed: bool
    message: str


class _FixedLocator:
    """GeoLocator answering every address with the fixture's `country`."""

    def __init__(self, country: str | None) -> None:
        self.facts = GeoFacts(country, None, None, None, None) if country else None

    def lookup(self, ip: str) -> GeoFacts | None:
        return self.facts

    def close(self) -> None:
        return None


def read_fixtures(rules_dir: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[FixtureFailure]]:
    """Every fixture under `rules_dir/tests`, as (file, fixture); malformed files and entries as failures."""
    found: list[tuple[str, dict[str, Any]]] = []
    failures: list[FixtureFailure] = []
    folder = rules_dir / FIXTURE_DIR
    if not folder.is_dir():
        return found, failures
    for path in sorted(folder.glob("*.yaml")):
        label = f"{FIXTURE_DIR}/{path.name}"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            failures.append(FixtureFailure(label, None, f"cannot read: {type(exc).__name__}"))
            continue
        for entry in data if isinstance(data, list) else [data]:
            problem = _shape_problem(entry)
            if problem:
                failures.append(FixtureFailure(label, _name_of(entry), problem))
            else:
                found.append((label, entry))
    return found, failures


def _name_of(entry: Any) -> str | None:
    return str(entry["name"]) if isinstance(entry, dict) and "name" in entry else None


def _shape_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "a fixture must be a mapping"
    unknown = sorted(str(key) for key in entry if key not in _KEYS)
    if unknown:
        return f"unknown keys: {', '.join(unknown)}"
    missing = [key for key in ("name", "user", "decision") if key not in entry]
    if missing:
        return f"missing keys: {', '.join(missing)}"
    if not isinstance(entry["user"], dict) or not isinstance(entry.get("context", {}), dict):
        return "user and context must be mappings"
    if entry["decision"] not in ("allow", "mfa", "deny"):
        return "decision must be allow, mfa or deny"
    try:
        _now_of(entry)
    except ValueError:
        return f"now {NOW_FORMAT}"
    return None


def _now_of(fixture: Mapping[str, Any]) -> datetime:
    """The fixture's `now`: quoted text, or the date or datetime YAML reads from an unquoted one."""
    value = fixture.get("now")
    if value is None:
        return DEFAULT_NOW
    if isinstance(value, date):  # datetime too
        value = value.isoformat()
    if not isinstance(value, str):
        raise ValueError(NOW_FORMAT)
    return parse_now(value)


async def run_fixtures(rule_set: RuleSet, rules_dir: Path, mfa: MfaSettings,
                       executor: Executor) -> list[FixtureResult]:
    """Run every fixture of `rules_dir` on `rule_set`; malformed fixtures are failed results.

    `executor` is the service's own (the worker pool in production: the rules under test may be
    an untrusted upload), or an InProcessRunner for the CLI (in_process_runner)."""
    fixtures, malformed = read_fixtures(rules_dir)
    results = [FixtureResult(f.file, f.fixture or "?", False, f.message) for f in malformed]
    for label, fixture in fixtures:
        results.append(await _run_one(executor, rule_set, label, fixture, mfa))
    return results


def in_process_runner(limits: Limits, environment: str = "production") -> InProcessRunner:
    return InProcessRunner(host_for(environment)[0], limits)


def failures_of(results: list[FixtureResult]) -> list[FixtureFailure]:
    return [FixtureFailure(r.file, r.name, r.message) for r in results if not r.passed]


async def _run_one(executor: Executor, rule_set: RuleSet, label: str, fixture: Mapping[str, Any],
             mfa: MfaSettings) -> FixtureResult:
    name = str(fixture["name"])
    try:
        at = _now_of(fixture)
        collected = signals.collect(fixture["user"], fixture.get("context") or {},
                                    _FixedLocator(fixture.get("country")), at, mfa,
                                    signals.request_history(fixture["user"], at))
        report = await run_rules(executor, rule_set, collected.payload)
        decision = policy.decide(outcome_of(rule_set, report), fixture["user"].get("factors"), mfa,
                                 collected.triggered, action=collected.payload["context"]["action"])
    except Exception as exc:  # a fixture that cannot run fails; it never takes the caller down
        return FixtureResult(label, name, False, f"cannot run: {type(exc).__name__}: {exc}")
    problems = _compare(fixture, decision)
    return FixtureResult(label, name, not problems, "; ".join(problems) or "ok")


def _compare(fixture: Mapping[str, Any], decision: policy.Decision) -> list[str]:
    problems = []
    if decision.decision != fixture["decision"]:
        problems.append(f"expected decision {fixture['decision']}, got {decision.decision} ({decision.reason})")
    if "factors" in fixture and list(decision.factors) != list(fixture["factors"] or ()):
        problems.append(f"expected factors {list(fixture['factors'] or ())}, got {list(decision.factors)}")
    if "reason" in fixture and decision.reason != fixture["reason"]:
        problems.append(f"expected reason {fixture['reason']}, got {decision.reason}")
    return problems
