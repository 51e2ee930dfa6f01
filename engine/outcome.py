"""What a rule set's run adds up to, parsed once from the sandbox's plain reply.

The rule host (engine/rule_host.py) hands back plain data, because it crosses a process
boundary; everything after the sandbox reads this typed value instead. A reply that is not
the shape the host writes (a worker gone wrong) is not guessed at: it parses as the
fail-closed outcome, as a dead worker's does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import metadata


class MalformedOutcome(ValueError):
    """The sandbox answered something that is not an outcome."""


@dataclass(frozen=True, slots=True)
class Outcome:
    denied: bool
    deny_reason: str | None
    mfa_required: bool
    provider: str = "any"  # the one factor type the rules allow; "any" is no restriction
    provider_set_by: str | None = None  # the id of the rule that named `provider`
    # The ids of the rules that require the factor (their enable() holds, or they failed with
    # on_error: require_mfa), in pipeline order: `rule:<id>` in the decision's required_by.
    required_by_rules: tuple[str, ...] = ()
    disable_ignored_by: tuple[str, ...] = ()  # rules whose disable() mfa.policy: required ignored
    allow_remember_browser: bool = False
    factors: tuple[str, ...] = ()  # the rules' add_factor order
    return_to: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    # {"app_metadata": {key: value or None}, "user_metadata": {...}}, both kinds always: None
    # deletes the key. Saved when a login completes (engine/sessions.py); /v1/evaluate hands
    # them to the caller.
    metadata_updates: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {
        kind: {} for kind in metadata.KINDS})
    failed_rules: tuple[str, ...] = ()

    @classmethod
    def failed(cls, failed_rules: list[str] | tuple[str, ...], on_error: str) -> Outcome:
        """The outcome when an evaluation died as a whole: nothing the rules did survives, so
        the login is denied, or (every failed rule's `on_error: require_mfa`) needs a factor."""
        deny = on_error != "require_mfa"
        return cls(denied=deny, deny_reason="rule_failed" if deny else None, mfa_required=True,
                   required_by_rules=() if deny else tuple(failed_rules), failed_rules=tuple(failed_rules))

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> Outcome:
        """Raises MalformedOutcome for anything that is not what RuleBinding.result writes."""
        try:
            outcome = cls(
                denied=_typed(plain["denied"], bool),
                deny_reason=_optional(plain["deny_reason"], str),
                mfa_required=_typed(plain["mfa_required"], bool),
                provider=_typed(plain["provider"], str),
                provider_set_by=_optional(plain.get("provider_set_by"), str),
                required_by_rules=_names(plain.get("required_by_rules", [])),
                disable_ignored_by=_names(plain.get("disable_ignored_by", [])),
                allow_remember_browser=_typed(plain["allow_remember_browser"], bool),
                factors=_names(plain["factors"]),
                return_to=_optional(plain.get("return_to"), str),
                claims=_typed(plain["claims"], dict),
                metadata_updates=_metadata_updates(plain["metadata_updates"]),
                failed_rules=_names(plain["failed_rules"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedOutcome(f"not an outcome: {type(exc).__name__}") from None
        return outcome


def _metadata_updates(value: Any) -> dict[str, dict[str, Any]]:
    """Both kinds and nothing else, each change as a rule could make it (engine/metadata.py):
    a worker gone wrong must not put in the directory what a rule could not."""
    if type(value) is not dict or set(value) != set(metadata.KINDS):
        raise TypeError("metadata_updates")
    updates = {kind: {metadata.check_key(key): metadata.plain_value(item)
                      for key, item in _typed(value[kind], dict).items()} for kind in metadata.KINDS}
    for kind, changes in updates.items():
        if metadata.size(changes) > metadata.MAX_BYTES:
            raise ValueError(kind)
    return updates


def _names(value: Any) -> tuple[str, ...]:
    return tuple([_typed(name, str) for name in _typed(value, list)])  # a list comprehension: no generator


def _typed(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise TypeError(kind.__name__)
    return value


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else _typed(value, kind)
