"""From a pipeline outcome to a decision: allow, mfa (with ordered factors) or deny.

Three layers may require the factor, and the decision names each that did (`required_by`):
`policy` (`mfa.policy`), `trigger:<name>` (engine/triggers.py) and `rule:<id>`. By mode:

  required   every login: `policy`; fired triggers and rules are named too; no rule can drop it
  optional   `policy` for users with a factor (or whose enrollment is unknown); rules; triggers
             are reported but require nothing, except `sensitive_actions`
  adaptive   fired triggers and rules (the default)
  never      rules, and `sensitive_actions`; other triggers are reported but require nothing

`sensitive_actions` requires its factor in every mode: like a rule, it is the administrator's
explicit request for those actions (the issue's "always require"), not a guess about a login.

`required` and `optional` speak of logins: for another `context.action` (a step-up) only the
triggers and rules decide. `countries.deny` refuses the login in every mode.

Factor order has three layers, strongest last: the admin's default order (`mfa.factors`),
the user's preferred order (their enrolled factors as given), and a rule's `add_factor`
calls. Factors not enabled in config, or not enrolled by the user when enrollment is
known, are dropped. When a second factor is required and none remains, the answer asks
for enrollment (or denies, by `mfa.when_no_factor`): never a login without the factor.

A user who already has a factor never enrolls another on the strength of the password
alone: when what is required is a type they lack, they first pass one of the factors they
have (`verify_then_enroll`), or are denied (`no_usable_factor`) when none of theirs is
usable. `mfa.when_no_factor` is only for users who have no factor at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine import metadata
from engine.config import MfaSettings
from engine.offers import RECOVERY_FACTOR_ID
from engine.outcome import Outcome
from engine.triggers import Triggered

POLICY = "policy"
# Triggers that require a factor in every mode, optional and never included: explicit requests
# for actions after the login, of which neither mode says anything.
_EVERY_MODE_TRIGGERS = frozenset({"sensitive_actions"})


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str  # "allow" | "mfa" | "deny"
    reason: str | None
    factors: tuple[str, ...] = ()
    default_source: str | None = None  # "rule" | "user" | "config": the layer that chose factors[0]
    enrollment_required: bool = False
    # The types the user may enroll to meet the requirement: with "enrollment_required" at
    # once, with "verify_then_enroll" once they have passed one of `factors` (their own).
    enroll_after: tuple[str, ...] = ()
    # The layers that required the factor: "policy", "trigger:<name>", "rule:<id>" (empty
    # when none did, and on a rule's or a country's denial; a denial for want of a usable factor
    # keeps them); and whatever the policy and triggers noted for the trace.
    required_by: tuple[str, ...] = ()
    policy: str = "adaptive"
    triggers_fired: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def with_layers(self, required_by: tuple[str, ...], policy: str, triggers_fired: tuple[str, ...],
                    notes: tuple[str, ...]) -> Decision:
        """This decision with what led to it: dataclasses.replace, at a third of its cost (it runs
        for every evaluation); every field is named, in order."""
        return Decision(self.decision, self.reason, self.factors, self.default_source, self.enrollment_required,
                        self.enroll_after, required_by, policy, triggers_fired, notes)

    def factors_plain(self) -> list[dict[str, Any]]:
        return [{"type": name, "default": index == 0} for index, name in enumerate(self.factors)]

    def to_plain(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "factors": self.factors_plain(),
                "default_factor_source": self.default_source, "enrollment_required": self.enrollment_required,
                "enroll_after": list(self.enroll_after), "required_by": list(self.required_by),
                "policy": self.policy, "triggers_fired": list(self.triggers_fired), "notes": list(self.notes)}


def answer(decision: Decision, outcome: Outcome, version: str, trace: Sequence[Any]) -> dict[str, Any]:
    """The answer of /v1/evaluate (and of a dry run, and `mfa-engine evaluate`): the decision, the
    provider the rules allow ("any": no restriction) and the rule that named it, what the rules
    ask of the caller (claims, where to return, metadata to save: both kinds, always, None values
    deleting keys; empty when denied, as a denied login saves nothing), the rule-set version and each rule's trace."""
    denied = decision.decision == "deny"
    return {**decision.to_plain(), "provider": outcome.provider, "provider_set_by": outcome.provider_set_by,
            "claims": {} if denied else dict(outcome.claims),
            "return_to": None if denied else outcome.return_to,
            "metadata_updates": {kind: {} if denied else dict(outcome.metadata_updates.get(kind, {}))
                                 for kind in metadata.KINDS},
            "rule_set": {"version": version}, "trace": [entry.to_plain() for entry in trace]}


def decide(outcome: Outcome, enrolled: Sequence[str] | None, settings: MfaSettings,
           triggered: Triggered | None = None, *, action: str = "login") -> Decision:
    """`enrolled` is the user's factors in preference order, or None when unknown; `triggered`
    what the built-in triggers found (None: not assessed); `action` the context's action."""
    required_by, notes = requirements(outcome, enrolled, settings, triggered, action)
    decision = _decide(outcome, enrolled, settings, triggered, required_by)
    # A rule's or a country's denial needs no factor: nothing required one. A denial for want of
    # a usable factor (no_enrolled_factor, no_usable_factor) keeps the layers that required it.
    refused = outcome.denied or (triggered is not None and triggered.deny_reason is not None)
    return decision.with_layers(() if refused else required_by, settings.policy,
                                triggered.fired if triggered else (), notes)


def requirements(outcome: Outcome, enrolled: Sequence[str] | None, settings: MfaSettings,
                 triggered: Triggered | None, action: str = "login") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The layers that require a second factor, and notes on what was ignored and why."""
    notes = list(triggered.notes if triggered else ())
    layers: list[str] = []
    mode = settings.policy
    has_factor = enrolled is None or bool(enrolled)
    if action == "login" and (mode == "required" or (mode == "optional" and has_factor)):
        layers.append(POLICY)
        if mode == "optional" and enrolled is None:
            notes.append("policy optional: user.factors unknown, counted as enrolled")
    for name in triggered.fired if triggered else ():
        if mode in ("required", "adaptive") or name in _EVERY_MODE_TRIGGERS:
            layers.append(f"trigger:{name}")
        else:
            notes.append(f"trigger {name} fired; mfa.policy {mode}: it requires no factor")
    if outcome.mfa_required:
        # An outcome built without rule ids (not by the rule host) still requires the factor.
        layers.extend(f"rule:{rule}" for rule in outcome.required_by_rules or ("unknown",))
    notes.extend(f"rule {rule}: multifactor.disable() ignored: mfa.policy is required"
                 for rule in outcome.disable_ignored_by)
    return tuple(layers), tuple(notes)


_REASONS = {"policy": "policy_requires_mfa", "trigger": "trigger_requires_mfa", "rule": "rule_requires_mfa"}


def _decide(outcome: Outcome, enrolled: Sequence[str] | None, settings: MfaSettings,
            triggered: Triggered | None, required_by: tuple[str, ...]) -> Decision:
    if outcome.denied:
        return Decision("deny", outcome.deny_reason or "access_denied")
    if triggered is not None and triggered.deny_reason is not None:
        return Decision("deny", triggered.deny_reason)
    if not required_by:
        return Decision("allow", None)
    # The rules' reason whenever a rule asks (as before the policy layer existed).
    reason = _REASONS["rule"] if outcome.mfa_required else _REASONS[required_by[0].split(":", 1)[0]]
    usable, source = order_factors(outcome.factors, enrolled, settings.factors)
    ordered = usable if outcome.provider == "any" else [name for name in usable if name == outcome.provider]
    if ordered:
        return Decision("mfa", reason, tuple(ordered), source)
    if enrolled:
        return _verify_then_enroll(outcome, usable, source, settings)
    if settings.when_no_factor == "deny":
        return Decision("deny", "no_enrolled_factor")
    enrollable = _enrollable(outcome, settings)
    if not enrollable:
        return Decision("deny", "no_usable_factor")
    # A rule's provider holds for enrollment too: a rule asking for the authenticator is not
    # met by a phone the user adds on the way.
    return Decision("mfa", "enrollment_required", enrollment_required=True, enroll_after=enrollable)


def _enrollable(outcome: Outcome, settings: MfaSettings) -> tuple[str, ...]:
    """The factor types a user may enroll to meet this requirement."""
    return tuple(name for name in settings.factors
                 if name != RECOVERY_FACTOR_ID and outcome.provider in ("any", name))


def _verify_then_enroll(outcome: Outcome, existing: Sequence[str], source: str | None,
                        settings: MfaSettings) -> Decision:
    """The user has factors (`existing`: their usable ones, in order), none of the required type:
    enrolling one on the password alone would let a password thief add their own, so the user
    passes one of theirs first."""
    enrollable = _enrollable(outcome, settings)
    if not existing or not enrollable:
        return Decision("deny", "no_usable_factor")
    return Decision("mfa", "verify_then_enroll", tuple(existing), source, enroll_after=enrollable)


def order_factors(
    from_rules: Sequence[str], enrolled: Sequence[str] | None, enabled: Sequence[str]
) -> tuple[list[str], str | None]:
    layers = (("rule", from_rules), ("user", enrolled or ()), ("config", enabled))
    ordered: list[str] = []
    source = None
    for layer, names in layers:
        for name in names:
            usable = name in enabled and (enrolled is None or name in enrolled)
            if usable and name not in ordered:
                ordered.append(name)
                source = source or layer
    return ordered, source
