"""Date formatting and parsing work in rules although datetime's C code imports modules itself."""

from __future__ import annotations

from tests.conftest import SyncRunner, rule_payload

DATES = '''def rule(user, context):
    print(context.now.strftime("%Y-%m-%d %A"), f"{context.now:%H:%M}")
    parsed = datetime.datetime.strptime("2026-11-27 10:00", "%Y-%m-%d %H:%M")
    print(parsed.isoformat())
'''


def test_strftime_format_specs_and_strptime_work_on_both_runners(rule_runner: SyncRunner) -> None:
    report = rule_runner.run({"10-dates": DATES}, rule_payload())
    assert [t.outcome for t in report.trace] == ["ok"]
    assert report.trace[0].logs == ("2026-11-27 Friday 10:00", "2026-11-27T10:00:00")
