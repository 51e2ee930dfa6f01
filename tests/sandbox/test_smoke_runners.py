"""Both runners agree on the basics: order, logs, deny stops, failures fail closed."""

from __future__ import annotations

from tests.conftest import SyncRunner, rule_payload


def test_rules_run_in_order_and_see_earlier_changes(rule_runner: SyncRunner) -> None:
    report = rule_runner.run(
        {
            "10-first": "def rule(user, context):\n    context.multifactor.add_factor('sms')\n",
            "20-second": "def rule(user, context):\n    print(context.multifactor.factors)\n"
                         "    context.multifactor.enable()\n",
        },
        rule_payload(),
    )
    assert report.result is not None
    assert report.result["mfa_required"] is True
    assert report.result["factors"] == ["sms"]
    assert [t.outcome for t in report.trace] == ["ok", "ok"]
    assert report.trace[1].logs == ("('sms',)",)
