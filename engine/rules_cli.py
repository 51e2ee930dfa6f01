"""`mfa-engine rules check|test` and `mfa-engine evaluate`: checks, rule tests and local dry runs, without a server."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from engine import policy, rule_folder, rule_tests, signals
from engine.clock import SystemClock
from engine.config import Settings
from engine.crypto import DEV_KEY_FILE, Keyring
from engine.geo import GeoLocator, open_locator
from engine.pipeline import RuleSetRejected, load_rule_set, outcome_of, run_rules
from engine.rule_ops import error_plain, load_folder
from engine.rule_settings import SettingsVault


def test_rules(settings: Settings, directory: str | None) -> int:
    """Print each fixture's pass/fail; 1 when any fails, else 0."""
    folder = Path(directory) if directory else settings.path(settings.rules.dir)
    try:
        snapshot = load_folder(folder, settings, _vault(folder, settings))
    except RuleSetRejected as exc:  # a set that does not compile fails every test it has
        for error in exc.errors:
            print(f"FAIL  {error}")
        return 1
    runner = rule_tests.in_process_runner(settings.sandbox.limits(), settings.environment)
    results = asyncio.run(rule_tests.run_fixtures(snapshot.rule_set, folder, settings.mfa, runner))
    for result in results:
        mark = "pass" if result.passed else "FAIL"
        print(f"{mark}  {result.file}: {result.name}" + ("" if result.passed else f": {result.message}"))
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed (rule set {snapshot.version})")
    return 1 if failed else 0


def evaluate_locally(settings: Settings, rules: str, user_path: str, context_path: str | None,
                     now: datetime | None = None) -> int:
    """The decision and trace of one evaluation on the in-process runner, at `now` (default: the
    system clock), as JSON on stdout."""
    user = _read_object(user_path, "user")
    context = _read_object(context_path, "context") if context_path else {}
    if user is None or context is None:
        return 2
    snapshot = load_folder(Path(rules), settings, _vault(Path(rules), settings))
    geo = _locator(settings)
    try:
        at = SystemClock().now() if now is None else now
        collected = signals.collect(user, context, geo, at, settings.mfa, signals.request_history(user, at))
        runner = rule_tests.in_process_runner(settings.sandbox.limits(), settings.environment)
        report = asyncio.run(run_rules(runner, snapshot.rule_set, collected.payload))
    finally:
        geo.close()
    outcome = outcome_of(snapshot.rule_set, report)
    decision = policy.decide(outcome, user.get("factors"), settings.mfa, collected.triggered,
                             action=collected.payload["context"]["action"])
    print(orjson.dumps(policy.answer(decision, outcome, snapshot.version, report.trace),
                       option=orjson.OPT_INDENT_2).decode())
    return 0


def _vault(folder: Path, settings: Settings) -> SettingsVault | None:
    """The keyring's vault when the folder has settings (sealed with the service's secrets.key, or the
    development key as engine/app.py builds it); None otherwise, so a folder without any needs no key."""
    if not (folder / rule_folder.SETTINGS_FILE).is_file():
        return None
    return SettingsVault(Keyring.configured(settings.secrets.key, settings.path(DEV_KEY_FILE),
                                            settings.secrets.previous_keys))


def _locator(settings: Settings) -> GeoLocator:
    """The configured GeoIP database; a local dry run goes on without one that is missing (a
    checkout where `./dev serve` has not yet written the demo database), and says so."""
    path = settings.path(settings.geoip.database) if settings.geoip.database else None
    if path is not None and not path.is_file():
        print(f"geoip.database {path.absolute()} not found: evaluating without GeoIP (ip_country is None; "
              f"write the demo one with `mfa-engine geoip write-demo {path}`)", file=sys.stderr)
        path = None
    return open_locator(str(path) if path else None)


def _read_object(path: str, what: str) -> dict[str, Any] | None:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot read the {what} ({type(exc).__name__})", file=sys.stderr)
        return None
    if not isinstance(value, dict):
        print(f"{path}: the {what} must be a JSON object", file=sys.stderr)
        return None
    return value


def check_rules(settings: Settings, directory: str | None) -> int:
    """Compile and lint every rule of the folder: 0 when all are fine, else 1 with every error of
    every file on stderr as `file:line: message` (the file as named in the folder), as compilers
    print them. The summary line names the folder that was checked."""
    folder = (Path(directory) if directory else settings.path(settings.rules.dir)).absolute()
    try:
        rule_set = load_rule_set(folder, settings.rules, settings.sandbox.limits())
    except RuleSetRejected as exc:
        files = {path.stem: path.name for path in folder.glob("*.py")} if folder.is_dir() else {}
        located = [error_plain(error, files) for error in exc.errors]
        for error, found in zip(exc.errors, located, strict=True):
            print(_file_line(files, found) if found["rule"] else error, file=sys.stderr)
        in_files = len({found["rule"] for found in located} - {None})
        print(f"checked rules in {folder}: {_count(len(located), 'error')}"
              + (f" in {_count(in_files, 'file')}" if in_files else ""))
        return 1
    try:  # the version the service runs: the enabled rules with the folder's settings
        version = load_folder(folder, settings, _vault(folder, settings)).version
    except RuleSetRejected as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"checked rules in {folder}: {_count(len(exc.errors), 'error')}")
        return 1
    verb = "compiles" if len(rule_set.rules) == 1 else "compile"
    print(f"checked rules in {folder}: {_count(len(rule_set.rules), 'rule')} {verb} (rule set {version})")
    for rule in rule_set.rules:
        print(f"  {rule.id}  on_error={rule.on_error}  {rule.summary}")
    return 0


def _file_line(files: dict[str, str], found: dict[str, Any]) -> str:
    name = files[found["rule"]]
    return f"{name}:{found['line']}: {found['message']}" if found["line"] else f"{name}: {found['message']}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
