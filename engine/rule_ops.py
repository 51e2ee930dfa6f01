"""Rule changes, shared by the admin API and the CLI: build a whole candidate set, activate it all or nothing.

A change (put, patch, delete, apply, reload, rollback) builds the whole new set; it becomes active
only if every rule compiles and every rule test (engine/rule_tests.py) passes. Then it is written
to the rules folder, recorded in the history and swapped in with one assignment of
`pipeline.rule_set`: in-flight evaluations finish on the version they started with. A rejected
change raises RulesRejected and leaves the active set, the folder and the history as they were.
Changes are serialised by one lock; a dry run activates and records nothing.

Several instances (a shared RuleSync, engine/stores/rule_sync.py): an accepted change is first
published to the shared store, only if the shared version is still the one the change was built
on (else 409: another instance changed the set first), then written and swapped in. The other
instances `converge` on it (engine/rule_follower.py): compile it, without re-running the
fixtures (the publisher ran them; a follower that refused would split the fleet), write it to
their folder and swap. The shared store is the truth: a follower whose folder cannot be written
still runs the shared version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import policy, rule_folder, rule_tests, signals
from engine.audit import Actor
from engine.audit_trail import AuditTrail
from engine.clock import Clock
from engine.config import Settings
from engine.errors import Conflict, InvalidRequest, NotFound, RulesRejected, ServiceUnavailable
from engine.formats import RULE_ID
from engine.geo import GeoLocator
from engine.outcome import Outcome
from engine.pipeline import (
    Executor, Pipeline, RuleSet, RuleSetRejected, build_rule_set, load_rule_set, outcome_of, run_rules,
)
from engine.rule_settings import (
    NO_SETTINGS, RuleSettings, Setting, SettingsVault, UnreadableSettings, check_key, check_value,
)
from engine.stores.rule_sync import LocalRuleSync, RuleSync
from sandbox.runner import ProgramTrace

log = logging.getLogger("engine.rule_ops")

_ERROR = re.compile(r"(?P<rule>[^:\s]+): (?:Line (?P<line>[0-9]+): )?(?P<message>.*)", re.DOTALL)


# A change's result: the rule sources, the ids of the disabled ones, and the settings.
Change = tuple[Mapping[str, str], frozenset[str], RuleSettings]


@dataclass(frozen=True, slots=True)
class RuleEntry:
    id: str
    order: int
    enabled: bool
    summary: str
    sha256: str
    source: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every rule of a version, disabled ones included, and the RuleSet that runs (enabled ones)."""

    version: str
    entries: tuple[RuleEntry, ...]
    rule_set: RuleSet

    def sources(self) -> dict[str, str]:
        return {entry.id: entry.source for entry in self.entries}

    def disabled(self) -> frozenset[str]:
        return frozenset(entry.id for entry in self.entries if not entry.enabled)


@dataclass(frozen=True, slots=True)
class Activation:
    version: str
    previous_version: str


@dataclass(frozen=True, slots=True)
class DryRun:
    decision: policy.Decision
    outcome: Outcome
    trace: tuple[ProgramTrace, ...]
    version: str


def check_rule_id(rule_id: str, field: str = "id") -> str:
    """400 for an id that is not `NN-name` (which also refuses `../x` and `a/b`)."""
    if RULE_ID.fullmatch(rule_id) is None:
        raise InvalidRequest("must be a rule id like 20-geo (digits, a dash, lower-case letters, digits, dashes)",
                             field=field)
    return rule_id


def build_snapshot(sources: Mapping[str, str], disabled: frozenset[str], settings: Settings,
                   rule_settings: RuleSettings = NO_SETTINGS, vault: SettingsVault | None = None) -> Snapshot:
    """Compile every rule (disabled ones too, so a later enable cannot fail); raise RulesRejected.
    Settings change the version through the vault's MAC (never a plain hash of their values)."""
    limits = settings.sandbox.limits()
    unknown = sorted(disabled - sources.keys())
    try:
        every = build_rule_set(sources, settings.rules, limits)
        running = every if not disabled else build_rule_set(
            {rule_id: source for rule_id, source in sources.items() if rule_id not in disabled}, settings.rules, limits)
    except RuleSetRejected as exc:
        raise RulesRejected([error_plain(error, sources) for error in exc.errors]) from exc
    version = every.version if not disabled else hashlib.sha256(
        f"{every.version}\0{','.join(sorted(disabled))}".encode()).hexdigest()[:16]
    summaries = {rule.id: rule.summary for rule in every.rules}
    entries = tuple(
        RuleEntry(rule_id, int(rule_id.split("-", 1)[0]), rule_id not in disabled, summaries[rule_id],
                  hashlib.sha256(source.encode("utf-8")).hexdigest(), source)
        for rule_id, source in sorted(sources.items()))
    if unknown:
        raise RulesRejected([{"rule": rule_id, "line": None, "message": "disabled, but there is no such rule"}
                             for rule_id in unknown])
    if rule_settings.entries:
        if vault is None:
            raise RulesRejected([{"rule": rule_folder.SETTINGS_FILE, "line": None,
                                  "message": "settings need the secret key (secrets.key)"}])
        version = hashlib.sha256(f"{version}\0settings\0{vault.digest(rule_settings)}".encode()).hexdigest()[:16]
    return Snapshot(version, entries, dataclasses.replace(running, version=version, settings=rule_settings))


def load_folder(directory: Path, settings: Settings, vault: SettingsVault | None = None) -> Snapshot:
    """The folder's rules, `disabled` manifest and settings as a snapshot; raise RuleSetRejected (startup, CLI)."""
    every = load_rule_set(directory, settings.rules, settings.sandbox.limits())
    sources = {program.name: program.source for program in every.programs.sources}
    try:
        return build_snapshot(sources, rule_folder.read_disabled(directory), settings,
                              _read_settings(directory, vault), vault)
    except RulesRejected as exc:
        raise RuleSetRejected([f"{e['rule']}: {e['message']}" for e in exc.errors]) from exc


def _read_settings(directory: Path, vault: SettingsVault | None) -> RuleSettings:
    """The folder's settings; RulesRejected for a file that is not ours or does not decrypt here."""
    try:
        stored = rule_folder.read_settings(directory)
        if stored is None:
            return NO_SETTINGS
        if vault is None:
            raise UnreadableSettings("settings need the secret key (secrets.key)")
        return vault.open(stored)
    except (OSError, ValueError) as exc:  # UnreadableSettings is a ValueError; its message names no value
        message = str(exc) if isinstance(exc, UnreadableSettings) else f"cannot be read ({type(exc).__name__})"
        raise RulesRejected([{"rule": rule_folder.SETTINGS_FILE, "line": None, "message": message}]) from exc


def error_plain(error: str, sources: Mapping[str, str]) -> dict[str, Any]:
    """`10-bad: Line 2: message` (the sandbox's compile errors) as {rule, line, message}."""
    match = _ERROR.fullmatch(error)
    if match is None or match["rule"] not in sources:
        return {"rule": None, "line": None, "message": error}
    return {"rule": match["rule"], "line": int(match["line"]) if match["line"] else None,
            "message": match["message"]}


class RuleOps:
    """The use cases of rule changes on one instance; `active` is the snapshot the pipeline runs."""

    def __init__(self, settings: Settings, pipeline: Pipeline, executor: Executor, geo: GeoLocator, clock: Clock,
                 active: Snapshot, sync: RuleSync | None = None, vault: SettingsVault | None = None, *,
                 audit: AuditTrail) -> None:
        self.settings = settings
        self.directory = settings.path(settings.rules.dir)
        self.pipeline = pipeline
        self.executor = executor
        self.geo = geo
        self.clock = clock
        self.active = active
        self.sync: RuleSync = sync or LocalRuleSync()
        self.vault = vault  # None: settings cannot be stored (tests, tools without the secret key)
        self.audit = audit
        self.shared_version: str | None = None  # as last seen in the shared store
        self._settled: str | None = None  # the last shared version followed or refused here
        self._lock = asyncio.Lock()

    def record_startup(self) -> None:
        """Record the folder's set in the history when it is not the newest entry (a first start, a hand edit)."""
        try:
            with rule_folder.locked(self.directory):
                history = rule_folder.read_history(self.directory)
                if not history or history[-1]["version"] != self.active.version:
                    self._record(self.active, "startup")
        except (OSError, ValueError) as exc:  # a read-only folder still serves; changes will be refused
            log.warning("rule_history_unavailable type=%s", type(exc).__name__)

    def get(self, rule_id: str) -> RuleEntry:
        for entry in self.active.entries:
            if entry.id == check_rule_id(rule_id):
                return entry
        raise NotFound("no such rule")

    # Each change is a function of the set it applies to, called under the lock: two changes
    # at once (PUT a, PUT b) each see the other's result, and neither is lost.

    async def put(self, rule_id: str, source: str, enabled: bool | None) -> Activation:
        check_rule_id(rule_id)

        def change(active: Snapshot) -> Change:
            disabled = active.disabled()
            if enabled is not None:
                disabled = disabled - {rule_id} if enabled else disabled | {rule_id}
            return active.sources() | {rule_id: source}, disabled, active.rule_set.settings
        return await self._activate(change, "put")

    async def set_enabled(self, rule_id: str, enabled: bool) -> Activation:
        def change(active: Snapshot) -> Change:
            self.get(rule_id)
            return (active.sources(), active.disabled() - {rule_id} if enabled else active.disabled() | {rule_id},
                    active.rule_set.settings)
        return await self._activate(change, "patch")

    async def delete(self, rule_id: str) -> Activation:
        def change(active: Snapshot) -> Change:
            self.get(rule_id)
            return ({key: value for key, value in active.sources().items() if key != rule_id},
                    active.disabled() - {rule_id}, active.rule_set.settings)
        return await self._activate(change, "delete")

    async def apply(self, changes: Mapping[str, str], replace: bool) -> Activation:
        for rule_id in changes:
            check_rule_id(rule_id, f"rules.{rule_id}" if len(rule_id) <= 64 else "rules")

        def change(active: Snapshot) -> Change:
            sources = dict(changes) if replace else active.sources() | dict(changes)
            return sources, active.disabled() & sources.keys(), active.rule_set.settings
        return await self._activate(change, "apply")

    async def reload(self, actor: Actor = Actor.ADMIN) -> Activation:
        """`actor`: SYSTEM when the folder watcher (rules.watch) asks, not an administrator."""
        return await self._activate(lambda active: (*_read_folder(self.directory),
                                                    _read_settings(self.directory, self.vault)), "reload", actor)

    def setting(self, key: str) -> Setting:
        found = self.active.rule_set.settings.get(check_key(key))
        if found is None:
            raise NotFound("no such setting")
        return found

    async def put_setting(self, key: str, value: Any, secret: bool) -> Activation:
        """A settings change is a rule-set change: a new version, in the history, shared."""
        setting = Setting(check_key(key), check_value(value, secret), secret, self.clock.now().isoformat())

        def change(active: Snapshot) -> Change:
            return active.sources(), active.disabled(), active.rule_set.settings.with_setting(setting)
        return await self._activate(change, "settings")

    async def delete_setting(self, key: str) -> Activation:
        check_key(key)

        def change(active: Snapshot) -> Change:
            self.setting(key)
            return active.sources(), active.disabled(), active.rule_set.settings.without(key)
        return await self._activate(change, "settings")

    def versions(self) -> list[dict[str, Any]]:
        return [{"version": e["version"], "activated_at": e["activated_at"], "by": e["by"],
                 "rules": [rule["id"] for rule in e["rules"]]}
                for e in reversed(rule_folder.read_history(self.directory))]

    async def rollback(self, version: str) -> Activation:
        for entry in reversed(rule_folder.read_history(self.directory)):
            if entry["version"] == version:
                sources = {rule["id"]: rule["source"] for rule in entry["rules"]}
                disabled = frozenset(rule["id"] for rule in entry["rules"] if not rule["enabled"])
                settings = self._open(entry.get("settings"))
                return await self._activate(lambda active: (sources, disabled, settings), "rollback")
        raise NotFound("no such version")

    async def dry_run(self, changes: Mapping[str, str] | None, user: dict[str, Any],
                      context: dict[str, Any], now: datetime | None = None) -> DryRun:
        """Evaluate the active set changed by `changes` on the executor, at `now` (default: the
        clock's); nothing is activated or recorded."""
        for rule_id in changes or {}:
            check_rule_id(rule_id, f"rules.{rule_id}" if len(rule_id) <= 64 else "rules")
        snapshot = self.active if not changes else build_snapshot(
            self.active.sources() | dict(changes), self.active.disabled(), self.settings,
            self.active.rule_set.settings, self.vault)
        at = self.clock.now() if now is None else now
        collected = signals.collect(user, context, self.geo, at, self.settings.mfa, signals.request_history(user, at))
        report = await run_rules(self.executor, snapshot.rule_set, collected.payload)
        outcome = outcome_of(snapshot.rule_set, report)
        decision = policy.decide(outcome, user.get("factors"), self.settings.mfa, collected.triggered,
                                 action=collected.payload["context"]["action"])
        return DryRun(decision, outcome, report.trace, snapshot.version)

    async def _activate(self, change: Callable[[Snapshot], Change], by: str,
                        actor: Actor = Actor.ADMIN) -> Activation:
        async with self._lock:
            before = self.active
            sources, disabled, rule_settings = change(self.active)
            candidate = build_snapshot(sources, disabled, self.settings, rule_settings, self.vault)
            failures = rule_tests.failures_of(await rule_tests.run_fixtures(
                candidate.rule_set, self.directory, self.settings.mfa, self.executor))
            if failures:
                raise RulesRejected([{"rule": f.file, "line": None, "message": f"{f.fixture}: {f.message}"}
                                     for f in failures])
            entry = self._entry(candidate, by)
            # StoreUnavailable (503) while the shared store is down: instances must not diverge.
            if not await self.sync.publish(entry, self.active.version):
                raise Conflict("the rule set was changed on another instance; this one follows it within a "
                               "second, then retry")
            self.shared_version = candidate.version if self.sync.is_shared else None
            self._write(candidate, entry, strict=not self.sync.is_shared)
            activation = self._swap(candidate, by)
            # Written by the instance that made the change (followers only follow it); ids and
            # setting keys, never a source or a value.
            await self.audit.record("rules.changed", self.clock.now(), actor=actor, change=by,
                                    version=candidate.version, previous_version=before.version,
                                    rules=changed_rules(before, candidate),
                                    settings=changed_settings(before, candidate))
            return activation

    async def converge(self) -> None:
        """Run the shared store's version; seed an empty store with the active set (a first start,
        a restarted Redis). Raises StoreUnavailable."""
        shared = await self.sync.version()
        if shared is None:
            await self.sync.publish(self._entry(self.active, "seed"), None)  # a lost race to seed is fine
            shared = await self.sync.version()
        self.shared_version = shared
        if shared is None or shared in (self.active.version, self._settled):
            return
        entry = await self.sync.read()
        if entry is not None:
            await self._follow(entry)

    def sync_status(self) -> dict[str, Any]:
        """What /healthz and GET /admin/rules show of the fleet: the shared version, and whether this runs it."""
        if not self.sync.is_shared:
            return {"kind": self.sync.kind}
        return {"kind": self.sync.kind, "shared_version": self.shared_version,
                "in_sync": self.shared_version == self.active.version}

    async def _follow(self, entry: Mapping[str, Any]) -> None:
        async with self._lock:
            version = str(entry.get("version"))
            if version == self.active.version:
                return
            try:
                rules = entry["rules"]
                sources = {str(rule["id"]): str(rule["source"]) for rule in rules}
                disabled = frozenset(str(rule["id"]) for rule in rules if not rule["enabled"])
                candidate = build_snapshot(sources, disabled, self.settings, self._open(entry.get("settings")),
                                           self.vault)
            except RulesRejected as exc:
                log.error("rules_sync_rejected version=%s errors=%s", version, exc.errors)
                self._settled = version  # refused once per version: logged once, not at every check
                return
            except (KeyError, TypeError, ValueError) as exc:
                log.error("rules_sync_unreadable version=%s type=%s", version, type(exc).__name__)
                self._settled = version
                return
            self._write(candidate, self._entry(candidate, "sync"), strict=False)
            self._swap(candidate, "sync")
            if candidate.version != version:  # another rules.* config than the publisher's: run it, once
                log.error("rules_sync_version_differs shared=%s here=%s", version, candidate.version)
                self._settled = version

    def _write(self, snapshot: Snapshot, entry: dict[str, Any], *, strict: bool) -> None:
        """Write the folder and the history; a failure is a 503 when the folder is the only copy.
        The workers of one server share the folder and each runs a change (one publishes it, the
        others follow, often before the publisher writes): the history records it once, as the
        publisher's (put, rollback...) rather than a follower's sync."""
        try:
            with rule_folder.locked(self.directory):
                rule_folder.write_rules(self.directory, snapshot.sources(), snapshot.disabled())
                rule_folder.write_settings(self.directory, entry.get("settings") or {})
                history = rule_folder.read_history(self.directory)
                newest = history[-1] if history else {}
                if newest.get("version") != snapshot.version:
                    rule_folder.append_history(self.directory, entry)
                elif newest.get("by") == "sync" and entry["by"] != "sync":
                    rule_folder.append_history(self.directory, entry, replace_newest=True)
        except (OSError, ValueError) as exc:  # ValueError: a history file that is not JSON
            log.error("rules_not_written type=%s", type(exc).__name__)
            if strict:
                raise ServiceUnavailable("the rules folder cannot be written; the active set is unchanged") from exc

    def _swap(self, candidate: Snapshot, by: str) -> Activation:
        previous = self.active.version
        self.active = candidate
        self._settled = None
        self.pipeline.rule_set = candidate.rule_set  # the one swap evaluations see
        log.info("rules_activated version=%s previous=%s by=%s", candidate.version, previous, by)
        return Activation(candidate.version, previous)

    def _record(self, snapshot: Snapshot, by: str) -> None:
        rule_folder.append_history(self.directory, self._entry(snapshot, by))

    def _entry(self, snapshot: Snapshot, by: str) -> dict[str, Any]:
        """A history entry, also what the shared store holds: settings only sealed."""
        entry: dict[str, Any] = {
            "version": snapshot.version, "activated_at": self.clock.now().isoformat(), "by": by,
            "rules": [{"id": e.id, "enabled": e.enabled, "source": e.source} for e in snapshot.entries]}
        if snapshot.rule_set.settings.entries and self.vault is not None:
            entry["settings"] = self.vault.seal(snapshot.rule_set.settings)
        return entry

    def _open(self, stored: Any) -> RuleSettings:
        """Settings of a history or shared entry; RulesRejected when they cannot be opened here."""
        if stored is None:
            return NO_SETTINGS
        if self.vault is None:
            raise RulesRejected([{"rule": rule_folder.SETTINGS_FILE, "line": None,
                                  "message": "settings need the secret key (secrets.key)"}])
        try:
            return self.vault.open(stored)
        except UnreadableSettings as exc:
            raise RulesRejected([{"rule": rule_folder.SETTINGS_FILE, "line": None, "message": str(exc)}]) from exc


def changed_rules(before: Snapshot, after: Snapshot) -> list[str]:
    """Ids of the rules added, removed, edited, enabled or disabled between two snapshots."""
    old = {entry.id: (entry.sha256, entry.enabled) for entry in before.entries}
    new = {entry.id: (entry.sha256, entry.enabled) for entry in after.entries}
    return sorted(rule_id for rule_id in old.keys() | new.keys() if old.get(rule_id) != new.get(rule_id))


def changed_settings(before: Snapshot, after: Snapshot) -> list[str]:
    """Keys of the settings set, changed or removed between two snapshots (never their values)."""
    old = {entry.key: entry for entry in before.rule_set.settings.entries}
    new = {entry.key: entry for entry in after.rule_set.settings.entries}
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def _read_folder(directory: Path) -> tuple[dict[str, str], frozenset[str]]:
    """The folder's sources as reload sees them; unreadable files are rejections."""
    if not directory.is_dir():
        raise RulesRejected([{"rule": None, "line": None, "message": "the rules directory does not exist"}])
    sources: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.py")):
        try:
            sources[path.stem] = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append({"rule": path.stem, "line": None, "message": f"cannot read ({type(exc).__name__})"})
    if errors:
        raise RulesRejected(errors)
    return sources, rule_folder.read_disabled(directory)
