"""Rule settings and secrets: the values rules read as `context.settings`, sealed at rest, and the
redaction of secret values from everything a run of the rules hands back.

A setting is plain JSON under a key; a secret is a setting whose value is a non-empty string that
never leaves the engine: it reaches the rules (in the payload, memory only) and nothing else.
Settings belong to the rule set: a change is a new version (engine/rule_ops.py), rolled back and
shared like rules. Stored form (rules/settings.json, history entries, the shared RuleSync entry),
every value sealed, secret or not:

    {"KEY": {"secret": bool, "updated_at": "ISO 8601", "sealed": "v1.<AES-GCM of the JSON value>"}}

The ciphertext is bound to "rule-setting:KEY" (moved to another key, it does not decrypt). The
version digest of the settings is the keyring's MAC, never a hash of the values: a public short
hash of a weak secret could be brute-forced.

Redaction happens inside the evaluation (sandbox/redaction.py): pipeline.run_rules names the
secret keys in the payload (`secret_keys`), and the rules' binding takes every form of each secret
value (raw, repr and ascii in both quote styles, JSON, re.escape, repr of those) out of log lines,
error messages, deny reasons, claims, metadata and return_to where the rule writes them, before
any cut or size check. `redact_report` is the second layer, on the report that comes back: it
scrubs only free text (never the outcome's fixed keys) and logs a warning, without the text, if it
finds anything, since that means the first layer missed it. It matches text: a rule that
transforms a secret (reversed, upper-cased, sliced, encoded) defeats it (docs/rules.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.crypto import DecryptionError, Keyring
from engine.errors import InvalidRequest
from sandbox.redaction import REDACTED, Redactor, redact_plain
from sandbox.runner import RunReport

KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_SETTINGS = 100
MAX_VALUE_BYTES = 4096  # the value as compact JSON (UTF-8)
MAX_DEPTH = 8
_MAC_PURPOSE = "rule-settings"
# The outcome's free text: what rules wrote. Everything else in it is the engine's (fixed keys,
# flags, factor names, rule ids) and is never rewritten: "app_metadata" must stay a key even when a
# secret is "data".
FREE_TEXT = ("deny_reason", "return_to", "claims")

# Deny reasons the engine writes itself (rule_host.RuleBinding.fail), never a rule's text.
ENGINE_REASONS = frozenset({"rule_failed"})

log = logging.getLogger("engine.rule_settings")


class UnreadableSettings(ValueError):
    """Stored settings that are not the stored form, or do not decrypt under this key."""


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    value: Any  # plain JSON
    secret: bool
    updated_at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The settings of one rule-set version, decrypted, in memory only; `plain` is what rules see."""

    entries: tuple[Setting, ...] = ()  # sorted by key
    plain: dict[str, Any] = field(init=False, compare=False, repr=False)
    redactor: Redactor = field(init=False, compare=False, repr=False)
    secret_keys: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plain", {entry.key: entry.value for entry in self.entries})
        object.__setattr__(self, "secret_keys", tuple(entry.key for entry in self.entries if entry.secret))
        object.__setattr__(self, "redactor", Redactor(entry.value for entry in self.entries if entry.secret))

    def __repr__(self) -> str:
        return f"RuleSettings(keys={[entry.key for entry in self.entries]})"

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> Setting | None:
        return next((entry for entry in self.entries if entry.key == key), None)

    def with_setting(self, setting: Setting) -> RuleSettings:
        kept = [entry for entry in self.entries if entry.key != setting.key]
        if len(kept) >= MAX_SETTINGS:
            raise InvalidRequest(f"at most {MAX_SETTINGS} settings; delete one first", field="key")
        return RuleSettings(tuple(sorted([*kept, setting], key=lambda entry: entry.key)))

    def without(self, key: str) -> RuleSettings:
        return RuleSettings(tuple(entry for entry in self.entries if entry.key != key))


def check_key(key: str) -> str:
    """400 naming `key` for anything but a letter then up to 63 letters, digits, `_`, `.`, `-`."""
    if KEY.fullmatch(key) is None:
        raise InvalidRequest("must be a letter followed by at most 63 letters, digits, '_', '.' or '-'",
                             field="key")
    return key


def check_value(value: Any, secret: bool) -> Any:
    """400 naming `value`: plain JSON of at most MAX_VALUE_BYTES, nested at most MAX_DEPTH; a
    secret's value is a non-empty string (redaction works on text). The value is never echoed."""
    if secret and (type(value) is not str or not value):
        raise InvalidRequest("a secret's value must be a non-empty string", field="value")
    if _depth(value) > MAX_DEPTH:
        raise InvalidRequest(f"nests more than {MAX_DEPTH} levels", field="value")
    if len(_canonical(value).encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise InvalidRequest(f"must be at most {MAX_VALUE_BYTES} bytes as JSON", field="value")
    if type(value) is str and any(0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise InvalidRequest("must be valid Unicode", field="value")
    return value


class SettingsVault:
    """Seals settings for storage and sharing, opens them, and digests them for the version."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def seal(self, settings: RuleSettings) -> dict[str, dict[str, Any]]:
        return {entry.key: {"secret": entry.secret, "updated_at": entry.updated_at,
                            "sealed": self._keyring.encrypt(_canonical(entry.value), context=_context(entry.key))}
                for entry in settings.entries}

    def open(self, stored: Any) -> RuleSettings:
        """Raises UnreadableSettings (the message names no value)."""
        if stored is None:
            return NO_SETTINGS
        if not isinstance(stored, Mapping) or len(stored) > MAX_SETTINGS:
            raise UnreadableSettings("settings must be an object of at most 100 keys")
        entries = []
        for key, item in stored.items():
            if not isinstance(key, str) or KEY.fullmatch(key) is None or not isinstance(item, Mapping):
                raise UnreadableSettings("a setting is not in the stored form")
            try:
                value = json.loads(self._keyring.decrypt(str(item["sealed"]), context=_context(key)))
                entries.append(Setting(key, value, _typed(item["secret"], bool), _typed(item["updated_at"], str)))
            except (KeyError, TypeError, ValueError, DecryptionError) as exc:
                raise UnreadableSettings(f"setting {key} cannot be read ({type(exc).__name__})") from None
        return RuleSettings(tuple(sorted(entries, key=lambda entry: entry.key)))

    def reseal(self, stored: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """The stored form with every value one of secrets.previous_keys sealed sealed again under
        secrets.key, and how many were (key rotation). Raises UnreadableSettings as open does."""
        resealed: dict[str, Any] = {}
        count = 0
        for key, item in stored.items():
            try:
                fresh = self._keyring.reseal(str(item["sealed"]), context=_context(key))
            except (KeyError, TypeError, DecryptionError) as exc:
                raise UnreadableSettings(f"setting {key} cannot be read ({type(exc).__name__})") from None
            resealed[key] = item if fresh is None else {**item, "sealed": fresh}
            count += fresh is not None
        return resealed, count

    def digest(self, settings: RuleSettings) -> str:
        return self._keyring.mac(_MAC_PURPOSE, *(
            f"{entry.key}\0{int(entry.secret)}\0{entry.updated_at}\0{_canonical(entry.value)}"
            for entry in settings.entries))


def redact_report(report: RunReport, settings: RuleSettings) -> RunReport:
    """`report` with every secret of `settings` replaced by REDACTED in its trace and free text: the
    second layer (the binding redacted where rules wrote, before cuts and bounds). A change here is a
    miss of the first layer: logged as a warning naming where, never the text."""
    redactor = settings.redactor
    if not redactor:
        return report
    trace = tuple(t._replace(error=None if t.error is None else redactor(t.error),
                             logs=tuple(redactor(line) for line in t.logs)) for t in report.trace)
    result = report.result
    if result is not None:
        result = {**result, **{name: redact_plain(result[name], redactor) for name in FREE_TEXT
                               if name in result and not (name == "deny_reason" and result[name] in ENGINE_REASONS)}}
        updates = result.get("metadata_updates")
        if type(updates) is dict:
            result["metadata_updates"] = {kind: redact_plain(changes, redactor) for kind, changes in updates.items()}
    redacted = dataclasses.replace(report, result=result, trace=trace)
    if redacted != report:
        missed = [t.name for t, was in zip(trace, report.trace, strict=True) if t != was]
        log.warning("secret_redacted_late rules=%s outcome=%s", ",".join(missed) or "-",
                    result != report.result)
    return redacted


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _context(key: str) -> str:
    return f"rule-setting:{key}"


def _depth(value: Any) -> int:
    if type(value) is dict:
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if type(value) is list:
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _typed(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise TypeError(kind.__name__)
    return value


NO_SETTINGS = RuleSettings()
