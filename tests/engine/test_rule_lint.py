"""Mistakes against the rule API caught when a rule set is loaded (issue 9): engine/rule_lint.py.

Each mistake is reported with its line and, where one exists, the closest real name; every
benign rule the project knows (the shipped folder, the sandbox's benign corpus, the rules in
the documentation) lints clean.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine import rule_lint
from engine.config import RulesSettings
from engine.pipeline import RuleSetRejected, build_rule_set, load_rule_set
from engine.rule_api import Multifactor
from engine.rule_host import RuleBinding, RuleHost
from sandbox.limits import Limits
from tests.conftest import SyncRunner, rule_payload
from tests.sandbox.test_benign_rules import CORPUS

REPO = Path(__file__).resolve().parents[2]


def rule(*body: str, params: str = "user, context") -> str:
    return f"def rule({params}):\n" + "".join(f"    {line}\n" for line in body)


MISTAKES = [
    (rule('context.idToken["https://example.com/x"] = 1'),
     "Line 2: context.idToken is not part of the rule API; did you mean context.claims?"),
    (rule("client = context.clientID"),
     "Line 2: context.clientID is not part of the rule API; did you mean context.client.client_id?"),
    (rule("name = context.clientName"),
     "Line 2: context.clientName is not part of the rule API; did you mean context.client.name?"),
    (rule("factors = user.multifactor"),
     "Line 2: user.multifactor is not part of the rule API; did you mean user.factors or context.multifactor?"),
    (rule("ip = context.request.ip"),
     "Line 2: context.request.ip is not part of the rule API; did you mean context.connection.ip?"),
    (rule("where = context.request.geoip"),
     "Line 2: context.request.geoip is not part of the rule API; did you mean context.connection.geo?"),
    (rule("country = context.connection.geo.contry"),
     "Line 2: context.connection.geo.contry is not part of the rule API; did you mean "
     "context.connection.geo.country?"),
    (rule("agent = context.request.userAgent"),
     "Line 2: context.request.userAgent is not part of the rule API; did you mean context.request.user_agent?"),
    (rule('context.multifactor = {"provider": "any", "allowRememberBrowser": False}'),
     "Line 2: context.multifactor is read-only in the rule API; did you mean context.multifactor.enable(...)?"),
    (rule('context.multifactor.provider = "otp"'),
     "Line 2: context.multifactor.provider is read-only in the rule API; did you mean "
     "context.multifactor.enable(provider=...)?"),
    (rule('user.email = "x@example.com"'), "Line 2: user.email is read-only in the rule API"),
    (rule("context.multifactor.enable(allowRemember=True)"),
     "Line 2: context.multifactor.enable() has no keyword argument 'allowRemember'; did you mean "
     "allowRememberBrowser?"),
    (rule('context.multifactor.enable(provder="otp")'),
     "Line 2: context.multifactor.enable() has no keyword argument 'provder'; did you mean provider?"),
    (rule('context.deny(message="no")'),
     "Line 2: context.deny() has no keyword argument 'message'; it takes: reason"),
    (rule("context.claims.roles"),
     "Line 2: context.claims.roles is not part of the rule API; context.claims has: get, keys"),
    # add_factor takes **options and checks them when it runs; the lint knows the ones it accepts.
    (rule('context.multifactor.add_factor(name="otp")'),
     "Line 2: context.multifactor.add_factor() has no keyword argument 'name'; it takes: name_or_dict"),
    (rule('context.multifactor.addFactor("otp", bogus=1)'),
     "Line 2: context.multifactor.addFactor() has no keyword argument 'bogus'; it takes: name_or_dict"),
]


@pytest.mark.parametrize(("source", "message"), MISTAKES, ids=[m.split(":")[1].split()[0] for _, m in MISTAKES])
def test_a_mistake_against_the_rule_api_is_reported_with_its_line_and_a_suggestion(source: str,
                                                                                      message: str) -> None:
    assert rule_lint.lint(source) == [message]


def test_the_parameters_may_have_any_name_and_aliases_are_followed() -> None:
    source = rule("mf = ctx.multifactor", "conn = ctx.connection", "geo = conn.geo", "",
                  "if geo.contry:", "    mf.enable(allowRemember=True)", "ctx.idToken", params="u, ctx")
    assert rule_lint.lint(source) == [
        "Line 6: context.connection.geo.contry is not part of the rule API; did you mean "
        "context.connection.geo.country?",
        "Line 7: context.multifactor.enable() has no keyword argument 'allowRemember'; did you mean "
        "allowRememberBrowser?",
        "Line 8: context.idToken is not part of the rule API; did you mean context.claims?",
    ]


def test_writing_a_user_metadata_field_points_at_the_api_that_saves_it() -> None:
    [message] = rule_lint.lint(rule("user.app_metadata.plan = 'pro'"))
    assert message.startswith("Line 2: user.app_metadata is read-only in the rule API")
    assert message.endswith('; did you mean context.set_app_metadata("plan", value)?')


def test_the_camel_case_keyword_of_enable_is_accepted_and_means_allow_remember_browser(
        rule_runner: SyncRunner) -> None:
    source = '"""Remembered browsers are fine."""\n' + rule("context.multifactor.enable(allowRememberBrowser=True)")
    rule_set = build_rule_set({"10-remember": source}, RulesSettings(), Limits())
    report = rule_runner.run(rule_set.programs, rule_payload())
    assert report.result is not None
    assert (report.result["mfa_required"], report.result["allow_remember_browser"]) == (True, True)
    with pytest.raises(TypeError):
        Multifactor().enable(allowRememberBrowser="yes")  # type: ignore[arg-type]


# -- no false alarms ------------------------------------------------------------------------

UNRESOLVABLE = [
    rule("context = {}", "context.idToken"),
    rule("if user.groups:", "    mf = context.multifactor", "else:", "    mf = None", "mf.bogus"),
    rule("if user.groups:", "    mf = context.multifactor", "mf.bogus"),
    rule("for m in context.authentication.methods:", "    m.bogus"),
    rule('getattr(context, "idToken")'),
    rule("f = lambda context: context.idToken", "f(1)"),
    rule("names = [context.bogus for context in (1, 2)]"),
    rule("def helper(user):", "    return user.bogus", "helper(1)"),
    rule("x = user.app_metadata.roles.whatever", "y = user.app_metadata.get('a').b"),
    rule("(mf := context.multifactor)", "mf = 1", "mf.bogus"),
    "def helper(context):\n    return context.bogus\n\n\n" + rule("helper(context)"),
    "import re\n\n\n" + rule("re.bogus", "datetime.bogus"),
    rule('context.claims["https://example.com/x"] = 1', 'context.multifactor.return_to = "https://a.example"',
         'context.multifactor.returnTo = "https://a.example"'),
]


@pytest.mark.parametrize("source", UNRESOLVABLE)
def test_what_cannot_be_resolved_statically_is_not_checked(source: str) -> None:
    assert rule_lint.lint(source) == []


def test_source_that_does_not_parse_is_left_to_the_compiler() -> None:
    assert rule_lint.lint("def rule(user, context)\n    pass\n") == []


def _documented_rules() -> list[tuple[str, str]]:
    found = []
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), re.DOTALL)):
            if "def rule(" in block:
                found.append((f"{doc.name}#{number}", block))
    return found


def _known_rules() -> list[tuple[str, str]]:
    shipped = [(path.name, path.read_text()) for path in sorted((REPO / "rules").glob("*.py"))]
    benign = {source: f"benign:{name}" for case in CORPUS for name, source in case.rules.items()}
    return shipped + [(name, source) for source, name in benign.items()] + _documented_rules()


def test_every_known_benign_rule_lints_clean() -> None:
    known = _known_rules()
    assert len(known) >= 20 and any(name.startswith("README") for name, _ in known)
    assert {name: rule_lint.lint(source) for name, source in known} == {name: [] for name, _ in known}


# -- the tables come from the code ------------------------------------------------------------

FULL_PAYLOAD: dict[str, Any] = {
    "user": {"user_id": "u-1", "app_metadata": {"a": 1}, "user_metadata": {"b": 2}},
    "context": {"connection": {"ip": "203.0.113.9", "ip_country": "FR",
                               "geo": {"country": "FR", "city": "Paris", "latitude": 1.0, "longitude": 2.0,
                                       "accuracy_radius": 5}},
                "request": {"user_agent": "x"}, "client": {"client_id": "c"},
                "authentication": {"methods": [{"name": "otp", "timestamp": "2024-01-01T00:00:00Z"}]},
                "now": "2024-01-01T00:00:00Z"},
}


def test_the_lint_model_matches_what_a_real_binding_hands_to_rules() -> None:
    binding = RuleBinding(FULL_PAYLOAD, lambda line: None)
    readable = RuleHost.access.readable
    seen: dict[tuple[type, str], str] = {}
    pending: list[object] = [binding.user, binding.context]
    while pending:
        obj = pending.pop()
        for name in readable[type(obj)]:
            value = getattr(obj, name)
            if type(value) in readable:
                seen[(type(obj), name)] = type(value).__name__
                pending.append(value)
            else:
                seen[(type(obj), name)] = "method" if callable(value) else "value"
    assert {key: rule_lint.kind_of(*key) for key in seen} == seen


# -- through the loaders -------------------------------------------------------------------

GEO_RULE = '"""Geo."""\n\ndef rule(user, context):\n    context.idToken["https://e.example/c"] = 1\n'
IDTOKEN = "context.idToken is not part of the rule API; did you mean context.claims?"


def test_build_rule_set_rejects_lint_errors_as_it_does_compile_errors() -> None:
    with pytest.raises(RuleSetRejected) as caught:
        build_rule_set({"10-geo": GEO_RULE, "20-bad": "def rule(user, context):\n    open('x')\n"},
                       RulesSettings(), Limits())
    assert caught.value.errors == [f"10-geo: Line 4: {IDTOKEN}",
                                   "20-bad: Line 2: name 'open' is not available to rules"]


def test_a_misnamed_rule_does_not_hide_the_errors_of_the_others() -> None:
    with pytest.raises(RuleSetRejected) as caught:
        build_rule_set({"Geo": "def rule(user, context):\n    context.clientID\n", "10-geo": GEO_RULE},
                       RulesSettings(), Limits())
    errors = caught.value.errors
    assert any(error.startswith("Geo: the name must look like NN-name") for error in errors)
    assert "Geo: Line 2: context.clientID is not part of the rule API; did you mean context.client.client_id?" \
        in errors
    assert f"10-geo: Line 4: {IDTOKEN}" in errors


def test_an_unreadable_file_does_not_hide_the_errors_of_the_others(tmp_path: Path) -> None:
    (tmp_path / "05-latin.py").write_bytes(b"# caf\xe9\ndef rule(user, context):\n    pass\n")
    (tmp_path / "10-geo.py").write_text(GEO_RULE)
    with pytest.raises(RuleSetRejected) as caught:
        load_rule_set(tmp_path, RulesSettings(), Limits())
    assert caught.value.errors == ["05-latin: Line 1: source is not valid UTF-8", f"10-geo: Line 4: {IDTOKEN}"]
