"""Secrets never reach a log line, a metric, an error body or the audit trail: a whole login is captured
and searched, in the text and the JSON log formats, request lines included, in GET /metrics, and in the
audit_events table and GET /admin/audit on both directory backends."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.log_format import JsonFormatter
from engine.outcome import Outcome
from engine.pipeline import Rule, RuleSet, outcome_of, run_rules
from engine.rule_settings import RuleSettings, Setting, redact_report
from sandbox.redaction import Redactor
from sandbox.runner import ProgramTrace, RunReport
from tests.conftest import LoopThread, SyncRunner, program_set, rule_payload
from tests.engine.login_harness import DE_IP, LoginService, start_service, totp_now
from tests.engine.service import ADMIN_TOKEN, API_KEY, METRICS_TOKEN, SECRET_KEY, SIGNING_KEY, admin_auth, metrics_auth
from tests.postgres_db import postgres_database  # noqa: F401 - the fixture, for the audit trail's sweep

PASSWORD = "tr0ub4dor-and-3-horses"
PHONE = "+14155550123"


@pytest.fixture(params=["memory", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, request.param)


def test_no_password_code_secret_or_token_appears_in_logs_or_error_bodies(
    service: LoginService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    secrets: list[str] = [PASSWORD, API_KEY, ADMIN_TOKEN, SECRET_KEY, SIGNING_KEY, METRICS_TOKEN]

    service.create_user(password=PASSWORD)
    bodies.append(service.login(password=PASSWORD + "x").text)  # a wrong password
    first = service.first_login_enrolling_otp_with(PASSWORD)
    secrets += [first["secret"], first["token"], *first["recovery_codes"]]
    enrolled = service.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": PHONE, "user_token": first["token"]})
    enrollment_code = service.sms.last_code_for(PHONE)
    secrets.append(enrollment_code)
    bodies.append(service.post("/v1/mfa/enroll/confirm", {"enrollment_id": enrolled.json()["enrollment_id"],
                                                          "code": "000000"}).text)
    service.post("/v1/mfa/enroll/confirm", {"enrollment_id": enrolled.json()["enrollment_id"],
                                            "code": enrollment_code})

    login = service.login(password=PASSWORD, ip=DE_IP).json()
    sms_factor = next(f for f in login["factors"] if f["type"] == "sms")
    service.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"], "factor_id": sms_factor["id"]})
    code = service.sms.last_code_for(PHONE)
    secrets.append(code)
    wrong_code = "000000" if code != "000000" else "111111"
    bodies.append(service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"],
                                                  "factor_id": sms_factor["id"], "code": wrong_code}).text)
    done = service.post("/v1/mfa/verify", {"challenge_id": login["challenge_id"], "factor_id": sms_factor["id"],
                                           "code": code}).json()
    secrets.append(done["token"])
    otp_code = totp_now(first["secret"], service.clock.now())
    bodies.append(service.post("/v1/mfa/verify", {"challenge_id": "unknown-challenge-0000",
                                                  "factor_id": first["factor_id"], "code": otp_code}).text)
    secrets.append(otp_code)

    metrics = service.client.get("/metrics", headers=metrics_auth())
    assert metrics.status_code == 200 and "mfa_verifications_total" in metrics.text
    service.client.app.state.request_log.drain()  # the request lines, written by their thread
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    as_json = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert caplog.records, "the login should have logged events"
    assert "verify_succeeded" in logged and '"event":"verify_succeeded"' in as_json
    assert "request method=POST path=/v1/mfa/verify" in logged
    for secret in secrets:
        for text in (logged, as_json, metrics.text, *bodies):
            assert secret not in text


# Rule settings (issue 9): a secret set through the admin API and read by rules that try every
# way out: a log line, print, a claim, return_to, a deny reason, an exception's message.
SETTING_SECRET = "s3cret-'quoted'-\\value-0123456789"
URL_SECRET = "url-safe-secret-9876543210"
LEAKY_RULES = {
    "10-leaks-into-the-trace": '''"""Writes the secret everywhere it can on a login."""


def rule(user, context):
    secret = context.settings["api_key"]
    if context.action == "login":
        context.log("the key is", secret)
        print("printed:", secret)
        context.claims["https://example.com/key"] = {"nested": [secret, "before " + secret + " after"]}
        context.multifactor.return_to = "https://example.com/?k=" + context.settings["url_key"]
''',
    "20-denies-with-it": '''"""Denies with the secret as reason."""


def rule(user, context):
    if context.action == "transaction":
        context.deny("reason " + context.settings["api_key"])
''',
    "30-raises-with-it": '''"""Raises an exception carrying the secret."""


def rule(user, context):
    if context.action == "change_profile":
        raise ValueError("boom " + repr(context.settings["api_key"]) + " " + context.settings["api_key"])
''',
}


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_a_rule_setting_secret_never_leaves_the_engine(tmp_path: Path, loop_thread: LoopThread,
                                                       caplog: pytest.LogCaptureFixture, isolation: str) -> None:
    import base64

    from engine.app import create_app
    from tests.engine.asgi import ServiceClient
    from tests.engine.service import admin_auth, auth, evaluate_body, make_settings

    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, LEAKY_RULES, isolation=isolation)
    answers: list[str] = []
    with ServiceClient(create_app(settings), loop_thread) as client:
        def admin(method: str, path: str, body: object = None) -> str:
            response = client.request(method, path, json=body, headers=admin_auth())
            answers.append(response.text)
            return response.text

        admin("PUT", "/admin/rules/settings/api_key", {"value": SETTING_SECRET, "secret": True})
        admin("PUT", "/admin/rules/settings/url_key", {"value": URL_SECRET, "secret": True})
        admin("PUT", "/admin/rules/settings/api_key", {"value": SETTING_SECRET, "secret": "yes"})  # a 400
        admin("PUT", "/admin/rules/settings/api_key", {"value": SETTING_SECRET, "secret": True, "x": 1})
        admin("PUT", "/admin/rules/settings/bad%20key", {"value": SETTING_SECRET, "secret": True})
        seen: dict[str, dict[str, object]] = {}
        for action in ("login", "transaction", "change_profile"):
            body = evaluate_body()
            body["context"]["action"] = action
            evaluated = client.post("/v1/evaluate", json=body, headers=auth())
            answers.append(evaluated.text)
            seen[action] = evaluated.json()
            admin("GET", f"/admin/decisions/{evaluated.json()['decision_id']}")
            admin("POST", "/admin/rules/dry-run", body)
        admin("GET", "/admin/rules/settings")
        admin("GET", "/admin/rules/settings/api_key")
        admin("GET", "/admin/rules/versions")
        admin("GET", "/admin/rules")
        admin("POST", "/admin/users", {"username": "alice", "password": PASSWORD})
        login = client.post("/v1/login", json={"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                               "context": {"ip": "203.0.113.7", "device_id": "dev-1"}},
                            headers=auth())
        answers.append(login.text)
        for token in (value for value in login.json().values() if isinstance(value, str) and value.count(".") == 2):
            answers += [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1")
                        for part in token.split(".")[:2]]

    # The rules did run and did read the secret: what they wrote is there, the secret is not.
    login_claim = seen["login"]["claims"]["https://example.com/key"]  # type: ignore[index]
    assert login_claim == {"nested": ["[redacted]", "before [redacted] after"]}
    assert seen["login"]["return_to"] == "https://example.com/?k=[redacted]"
    assert seen["transaction"]["reason"] == "reason [redacted]"
    assert seen["change_profile"]["reason"] == "rule_failed"
    assert "[redacted]" in seen["login"]["trace"][0]["logs"][0]  # type: ignore[index]
    assert "[redacted]" in (seen["change_profile"]["trace"][-1]["error"] or "")  # type: ignore[index]
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    forms = (SETTING_SECRET, repr(SETTING_SECRET)[1:-1], "s3cret-", URL_SECRET)
    for text in [*answers, logged]:
        for form in forms:
            assert form not in text, text


# Redaction happens where rule text enters the result, before any cut or bound (the red team's
# S1, S3, S4): a caller who pads the input so that a cut falls inside a secret learns nothing, every
# textual form Python writes a secret in is replaced, and a very short secret over-redacts but
# never breaks the outcome's shape or its bounds.
CUT_SECRET = "pärtner-Kéy-0123456789abcdef"
NOW = "2026-01-01T00:00:00+00:00"


def run_with_secrets(rule_runner: SyncRunner, loop_thread: LoopThread, sources: dict[str, str],
                     secrets: dict[str, str], payload: dict[str, Any] | None = None) -> tuple[RunReport, Outcome]:
    """Run `sources` the way every caller does (pipeline.run_rules) with `secrets` as secret settings."""
    settings = RuleSettings(tuple(Setting(key, value, True, NOW) for key, value in sorted(secrets.items())))
    rule_set = RuleSet("v", tuple(Rule(name, "", "deny") for name in sources),
                       program_set(sources, {"on_error": "deny"}), settings)
    report = loop_thread.call(run_rules(rule_runner.runner, rule_set, payload or rule_payload()))
    return report, outcome_of(rule_set, report)


def answer_text(report: RunReport) -> str:
    return json.dumps({"trace": [trace.to_plain() for trace in report.trace], "result": report.result},
                      ensure_ascii=False)


def assert_no_part_of(secret: str, text: str) -> None:
    for length in range(2, len(secret) + 1):
        assert secret[:length] not in text, (length, text[-200:])


def padded(pad: int) -> dict[str, Any]:
    return rule_payload({"user_id": "u-1", "user_metadata": {"p": "x" * pad}})


def rule_of(body: str) -> str:
    return f'"""A rule."""\n\n\ndef rule(user, context):\n    key = context.settings["k"]\n    {body}\n'


# (rules, the length of the text the cut counts, the characters before the padding)
CUTS = {
    "the evaluation's log budget": ({"10-pad": rule_of('context.log(user.user_metadata["p"])'),
                                     "20-key": rule_of('context.log("key", key)')}, 16_384, 4),
    "context.log's cap of one value": ({"10-key": rule_of('context.log(user.user_metadata["p"] + key)')},
                                       16_384, 0),
    "print's cap": ({"10-key": rule_of('print(user.user_metadata["p"] + key)')}, 16_384, 0),
    "deny's 200 characters": ({"10-key": rule_of('context.deny(user.user_metadata["p"] + key)')}, 200, 0),
    "an error's 500 characters": ({"10-key": rule_of('raise ValueError(user.user_metadata["p"] + key)')},
                                  500 - len(" (line 6)"), len("ValueError: ")),
    "enable()'s description of a bad provider": (
        {"10-key": rule_of('context.multifactor.enable(user.user_metadata["p"] + key)')}, 100, 1),
    "add_factor()'s description of a bad factor": (
        {"10-key": rule_of('context.multifactor.add_factor(user.user_metadata["p"] + key)')}, 100, 1),
    "completed_within()'s description of a bad factor": (
        {"10-key": rule_of('context.authentication.completed_within(5, [user.user_metadata["p"] + key])')}, 100, 1),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_cut_the_caller_places_inside_a_secret_leaves_no_part_of_it(rule_runner: SyncRunner,
                                                                      loop_thread: LoopThread, cut: str) -> None:
    sources, limit, before = CUTS[cut]
    start = limit - before - len(CUT_SECRET)
    for pad in range(max(start - 3, 0), limit - before + 3):  # the cut falls at every offset of the secret
        report, _ = run_with_secrets(rule_runner, loop_thread, sources, {"k": CUT_SECRET}, padded(pad))
        assert_no_part_of(CUT_SECRET, answer_text(report))


FORM_SECRETS = {"k1": "pässwörd-0123456789", "k2": "it's-a-secret-0123456789", "k3": "a.b+c-0123456789",
                "k4": "tab\there-\U0001f511-0123456789"}
FORMS = '''"""Writes the secrets in every form Python's text functions write them."""
import re


def rule(user, context):
    s1, s2, s3, s4 = context.settings["k1"], context.settings["k2"], context.settings["k3"], context.settings["k4"]
    context.log("%a" % s1)
    context.log("{!a}".format(s1))
    context.log(f"{s1!a}")
    context.log(repr('Authorization: "Bearer ' + s2 + '"'))
    context.log(re.compile(re.escape(s3)))
    context.log(repr(repr(s2)))
    context.log(repr(s2))
    context.log(re.escape(s3))
    context.log("%a" % s4)
    context.log(repr([s4]))
    context.log("%a" % repr(s4))
    context.claims["https://example.com/r"] = repr(s2 + '"')
    context.multifactor.return_to = "https://example.com/?k=%a" % s1
    context.deny("{!a}".format(s4))
'''


def test_every_textual_form_of_a_secret_is_redacted(rule_runner: SyncRunner, loop_thread: LoopThread) -> None:
    report, outcome = run_with_secrets(rule_runner, loop_thread, {"10-forms": FORMS}, FORM_SECRETS)
    assert report.trace[0].outcome == "ok", report.trace[0].error
    assert report.trace[0].logs == (
        "'[redacted]'", "'[redacted]'", "'[redacted]'", "'Authorization: \"Bearer [redacted]\"'",
        "re.compile('[redacted]')", "'\"[redacted]\"'", '"[redacted]"', "[redacted]", "'[redacted]'",
        "['[redacted]']", "\"'[redacted]'\"")
    assert outcome.claims == {"https://example.com/r": "'[redacted]\"'"}
    assert outcome.return_to == "https://example.com/?k='[redacted]'"
    assert outcome.deny_reason == "'[redacted]'"
    assert "0123456789" not in answer_text(report)


NO_OP = '"""Does nothing."""\n\n\ndef rule(user, context):\n    pass\n'
SHORT_SECRET_RULE = '''"""Writes text full of a one-letter secret."""


def rule(user, context):
    context.set_app_metadata("note", user.user_metadata.get("bio", ""))
    context.claims["https://example.com/e"] = "e"
    context.deny("e" * 200)
'''


@pytest.mark.parametrize("secret", ["e", "data", "user", "app_metadata", "deny_reason"])
def test_a_short_secret_never_breaks_the_outcome(rule_runner: SyncRunner, loop_thread: LoopThread,
                                                  caplog: pytest.LogCaptureFixture, secret: str) -> None:
    caplog.set_level(logging.WARNING)
    _, outcome = run_with_secrets(rule_runner, loop_thread, {"10-no-op": NO_OP}, {"k": secret})
    assert not outcome.denied and outcome.failed_rules == ()
    assert set(outcome.metadata_updates) == {"app_metadata", "user_metadata"}
    assert not [record for record in caplog.records if record.name in ("engine.pipeline", "engine.rule_settings")]


def test_a_one_letter_secret_over_redacts_within_the_outcomes_shape(rule_runner: SyncRunner,
                                                                    loop_thread: LoopThread) -> None:
    payload = rule_payload({"user_id": "u-1", "user_metadata": {"bio": "e" * 4000}})
    report, outcome = run_with_secrets(rule_runner, loop_thread, {"10-short": SHORT_SECRET_RULE}, {"k": "e"}, payload)
    assert outcome.failed_rules == () and report.trace[0].outcome == "ok"
    assert outcome.deny_reason == "[redacted]"
    assert outcome.claims == {"https://[redacted]xampl[redacted].com/[redacted]": "[redacted]"}
    assert outcome.metadata_updates["app_metadata"] == {"not[redacted]": "[redacted]"}


BOUNDS = {
    "deny reason": ('context.deny("ex" * 150)', None),
    "claim value": ('context.claims["https://x.example/k"] = "ex" * 1000', "larger than 4096 bytes"),
    "claim name": ('context.claims["https://x.example/" + "ex" * 90] = 1', "1 to 200 characters"),
    "metadata value": ('context.set_app_metadata("note", "ex" * 5000)', "more than 16384"),
    "metadata key": ('context.set_user_metadata("ex" * 90, 1)', "1 to 200 characters"),
    "return_to": ('context.multifactor.return_to = "https://example.com/?q=" + "ex" * 300', "2048 characters"),
}


@pytest.mark.parametrize("bound", list(BOUNDS))
def test_bounds_hold_after_redaction(rule_runner: SyncRunner, loop_thread: LoopThread, bound: str) -> None:
    body, refused = BOUNDS[bound]
    report, outcome = run_with_secrets(rule_runner, loop_thread, {"10-grows": rule_of(body)}, {"k": "e"})
    if refused is None:
        assert report.trace[0].outcome == "ok"
        assert outcome.deny_reason is not None and len(outcome.deny_reason) <= 200
        assert outcome.deny_reason.replace("[redacted]", "").strip("x") == ""
    else:
        error = report.trace[0].error or ""
        assert report.trace[0].outcome == "error" and Redactor(["e"])(refused) in error, error
        assert outcome.claims == {} and outcome.return_to is None
        assert outcome.metadata_updates == {"app_metadata": {}, "user_metadata": {}}


def test_the_engine_side_layer_scrubs_free_text_only_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    secret = "data-0123456789-data"
    settings = RuleSettings((Setting("k", secret, True, NOW), Setting("short", "data", True, NOW)))
    result = {"denied": True, "deny_reason": f"r {secret}", "mfa_required": False, "provider": "any",
              "provider_set_by": None, "allow_remember_browser": False, "factors": [], "return_to": None,
              "claims": {f"https://x/{secret}": [secret]},
              "metadata_updates": {"app_metadata": {"a": secret}, "user_metadata": {}}, "failed_rules": []}
    report = RunReport(result, (ProgramTrace("10-a", "ok", 1, f"E {secret}", (f"log {secret}",)),))
    caplog.set_level(logging.WARNING)
    redacted = redact_report(report, settings)
    assert redacted.result is not None
    assert redacted.result["deny_reason"] == "r [redacted]"
    assert redacted.result["claims"] == {"https://x/[redacted]": ["[redacted]"]}
    assert redacted.result["metadata_updates"] == {"app_metadata": {"a": "[redacted]"}, "user_metadata": {}}
    assert redacted.trace[0].logs == ("log [redacted]",) and redacted.trace[0].error == "E [redacted]"
    assert Outcome.from_plain(redacted.result).deny_reason == "r [redacted]"
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings and all("0123456789" not in record.getMessage() for record in warnings)
    caplog.clear()
    assert redact_report(redacted, settings) == redacted  # what the sandbox redacted is left alone
    assert not caplog.records


LEAK_RULES = {
    "10-debug": '"""Logs the caller\'s metadata."""\n\n\ndef rule(user, context):\n    context.log(user.user_metadata["p"])\n',
    "20-partner": rule_of('context.log("key", key)'),
    "30-formats": rule_of('context.log("%a" % key, "{!a}".format(key))'),
    "40-enable": rule_of('context.multifactor.enable("A" * 90 + key)'),
}


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_an_api_key_caller_cannot_cut_a_secret_in_an_evaluate_answer(tmp_path: Path, loop_thread: LoopThread,
                                                                     isolation: str) -> None:
    from engine.app import create_app
    from tests.engine.asgi import ServiceClient
    from tests.engine.service import admin_auth, auth, evaluate_body, make_settings

    with ServiceClient(create_app(make_settings(tmp_path, LEAK_RULES, isolation=isolation)), loop_thread) as client:
        response = client.request("PUT", "/admin/rules/settings/k", json={"value": CUT_SECRET, "secret": True},
                                  headers=admin_auth())
        assert response.status_code == 200, response.text
        for keep in (2, len(CUT_SECRET) // 2, len(CUT_SECRET) - 1):
            pad = 16_384 - len("key ") - keep
            answer = client.post("/v1/evaluate", json=evaluate_body(user_metadata={"p": "x" * pad}), headers=auth())
            assert answer.status_code == 200, answer.text
            record = client.get(f"/admin/decisions/{answer.json()['decision_id']}", headers=admin_auth())
            for text in (answer.text, record.text, json.dumps(answer.json(), ensure_ascii=False)):
                assert_no_part_of(CUT_SECRET, text)
                assert ascii(CUT_SECRET)[1:8] not in text.replace("\\\\", "\\")


# Remember this browser (issue 10): the token is a bearer credential for skipping the factor.
REMEMBERING_RULES = {"10-remember": '''"""Every login needs a factor; a remembered browser may skip it."""


def rule(user, context):
    context.multifactor.enable(allow_remember_browser=True)
'''}
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_remember_token_never_appears_in_logs_records_or_other_answers(
    tmp_path: Path, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for service in start_service(tmp_path, loop_thread, "memory", rules=REMEMBERING_RULES):
        user = service.create_user(password=PASSWORD)
        factor = service.post(f"/admin/users/{user['user_id']}/factors", {"type": "otp", "secret": OTP_SECRET},
                              admin_auth()).json()

        def login(token: str | None = None, device_id: str = "dev-1") -> Any:
            context = {"device_id": device_id} | ({"remember_token": token} if token else {})
            return service.post("/v1/login", {"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                              "context": context})

        challenge = login().json()
        token = service.post("/v1/mfa/verify", {"challenge_id": challenge["challenge_id"], "factor_id": factor["id"],
                                                "code": totp_now(OTP_SECRET, service.clock.now()),
                                                "remember_browser": True}).json()["remember_token"]
        mac = token.split(".")[1]
        answers = [login(token), login(token[:-1] + "x"), login(token, "dev-2"), login(token + "\n"),
                   service.post("/v1/evaluate", {"user": {"user_id": user["user_id"]},
                                                 "context": {"remember_token": token}}),
                   service.client.get(f"/admin/users/{user['user_id']}/remembered-browsers", headers=admin_auth())]
        assert answers[0].json()["remembered_browser"] is True
        record = service.client.get(f"/admin/decisions/{answers[0].json()['decision_id']}", headers=admin_auth())
        logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
        assert "login_remembered_browser" in logged
        for text in (logged, record.text, *(answer.text for answer in answers)):
            assert token not in text
            assert mac not in text


# The audit trail (GET /admin/audit and the audit_events table) on both directory backends: a story
# with every kind of secret the engine handles, and every one searched for in what the trail kept.
SECOND_PHONE = "+14155550199"
NEW_PASSWORD = "an0ther-l0ng-passphrase"
WRONG_PASSWORD = "wr0ng-but-close-passphrase"
DEFAULT_PASSWORD = "correct horse battery staple"  # the harness's


@pytest.fixture(params=["sqlite", "postgresql"])
def audited(request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread) -> Iterator[tuple[LoginService,
                                                                                                     str]]:
    """A service and its directory: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        for service in start_service(tmp_path, loop_thread, "memory"):
            yield service, str(tmp_path / "mfa.db")
        return
    from tests.postgres_db import empty

    url: str = request.getfixturevalue("postgres_database")
    empty(url)
    for service in start_service(tmp_path, loop_thread, "memory", directory_url=url):
        yield service, url


def audit_rows(location: str) -> str:
    """Every stored audit event, every column, as text."""
    query = "SELECT seq, at, type, actor, user_id, ip, decision_id, details FROM audit_events"
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as connection:
            rows = connection.execute(query).fetchall()
    else:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(location)) as connection:
            rows = connection.execute(query).fetchall()
    return "\n".join(repr(row) for row in rows)


def test_no_secret_reaches_the_audit_trail(audited: tuple[LoginService, str]) -> None:
    service, location = audited
    secrets: list[str] = [DEFAULT_PASSWORD, WRONG_PASSWORD, NEW_PASSWORD, API_KEY, ADMIN_TOKEN, SECRET_KEY,
                          SIGNING_KEY, OTP_SECRET, SETTING_SECRET, PHONE, PHONE[1:], SECOND_PHONE, SECOND_PHONE[1:]]
    user = service.create_user(phone_number=PHONE)
    service.login(username=DEFAULT_PASSWORD)  # a password typed into the username field
    service.login(password=WRONG_PASSWORD)

    # The first login enrolls a phone; its confirmation is first mistyped.
    login = service.login().json()
    secrets.append(login["enrollment_token"])
    started = service.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": PHONE,
                                              "enrollment_token": login["enrollment_token"]}).json()
    sms_code = service.sms.last_code_for(PHONE)
    assert sms_code is not None
    secrets += [started["enrollment_id"], sms_code]
    service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"], "code": "000000"})
    first = service.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"], "code": sms_code}).json()
    secrets += [first["token"], *first["recovery_codes"]]
    # An authenticator app next, then new recovery codes.
    app = service.post("/v1/mfa/enroll", {"factor": "otp", "user_token": first["token"]}).json()
    app_code = totp_now(app["secret"], service.clock.now())
    secrets += [app["secret"], app["secret"].lower(), app["enrollment_id"], app["otpauth_uri"], app_code]
    assert service.post("/v1/mfa/enroll/confirm", {"enrollment_id": app["enrollment_id"], "code": app_code}
                        ).status_code == 200
    service.clock.advance(30)
    codes = service.post("/v1/mfa/recovery-codes", {"user_token": first["token"]}).json()["recovery_codes"]
    secrets += codes

    # Logins with each factor, one code mistyped.
    sms_login = service.login(ip=DE_IP).json()
    secrets.append(sms_login["challenge_id"])
    service.post("/v1/mfa/challenge", {"challenge_id": sms_login["challenge_id"], "factor_id": started["factor_id"]})
    code = service.sms.last_code_for(PHONE)
    assert code is not None
    wrong = "000000" if code != "000000" else "111111"
    service.post("/v1/mfa/verify", {"challenge_id": sms_login["challenge_id"], "factor_id": started["factor_id"],
                                    "code": wrong})
    done = service.post("/v1/mfa/verify", {"challenge_id": sms_login["challenge_id"], "factor_id": started["factor_id"],
                                           "code": code}).json()
    secrets += [code, done["token"]]
    otp_login = service.login(ip=DE_IP).json()
    otp_code = totp_now(app["secret"], service.clock.now())
    done = service.post("/v1/mfa/verify", {"challenge_id": otp_login["challenge_id"], "factor_id": app["factor_id"],
                                           "code": otp_code}).json()
    secrets += [otp_login["challenge_id"], otp_code, done["token"]]
    recovery_login = service.login(ip=DE_IP).json()
    done = service.post("/v1/mfa/verify", {"challenge_id": recovery_login["challenge_id"], "factor_id": "recovery",
                                           "code": codes[0]}).json()
    secrets += [recovery_login["challenge_id"], done["token"]]

    # An administrator's changes: an imported secret, a phone, a password, a secret rule setting.
    user_path = f"/admin/users/{user['user_id']}"
    service.post(f"{user_path}/factors", {"type": "otp", "secret": OTP_SECRET}, admin_auth())
    service.post(f"{user_path}/factors", {"type": "sms", "phone_number": SECOND_PHONE}, admin_auth())
    service.client.request("PATCH", user_path, headers=admin_auth(),
                           json={"password": NEW_PASSWORD, "phone_number": SECOND_PHONE})
    service.client.request("PUT", "/admin/rules/settings/partner_key", headers=admin_auth(),
                           json={"value": SETTING_SECRET, "secret": True})

    answers: list[str] = []
    cursor = None
    while True:
        page = service.client.get("/admin/audit", params={"limit": 4} | ({"cursor": cursor} if cursor else {}),
                                  headers=admin_auth())
        assert page.status_code == 200, page.text
        answers.append(page.text)
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    stored = audit_rows(location)

    # The trail did record the story (a search of an empty trail proves nothing).
    for kind in ("login.failed", "factor.enrolled", "recovery_codes.generated", "factor.challenged", "factor.failed",
                 "factor.verified", "login.succeeded", "factor.added", "user.updated", "rules.changed"):
        assert kind in stored, kind
    assert "+1 *** *** 0123" in stored and "+1 *** *** 0199" in stored
    for secret in secrets:
        for text in (stored, *answers):
            assert secret not in text, secret
    for code in (*first["recovery_codes"], *codes):  # also as typed without the dash
        for text in (stored, *answers):
            assert code.replace("-", "") not in text
