"""Text that looks like something else is refused (issue 6, item 9).

A pattern checked with `re.match` and `$` also accepts a final "\\n": `"transaction\\n"` passed the
action check and skipped the step-up rule, an admin could create `carol\\n` next to `carol`, and a
phone number with a line break was stored and sent to the SMS gateway. These tests attack every
text field of every body, the CLI, the directory, the configuration and rule ids with line
breaks, other controls, invisible format characters and separators, and check that free text
keeps what people really write (emoji sequences, joiners in Persian names).
"""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from engine.config import ConfigError, RulesSettings, load_settings
from engine.crypto import Keyring
from engine.errors import InvalidRequest
from engine.http import clients_admin, schema
from engine.http.routes import ROUTES
from engine.pipeline import RuleSetRejected, build_rule_set
from engine.stores.directory import NewUser
from engine.stores.sqlite import SqliteDirectory
from sandbox.limits import Limits
from tests.conftest import LoopThread
from tests.engine.login_harness import LoginService, start_service
from tests.engine.service import ADMIN_TOKEN, API_KEY, DE_IP, US_IP, admin_auth, auth

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

CONTEXT: dict[str, Any] = {
    "ip": US_IP, "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "device_id": "dev-1", "action": "login",
    "client_id": "app-1", "client_name": "App One", "hostname": "login.example.com",
    "authentication_methods": [{"name": "otp", "timestamp": "2026-11-27T09:59:00+00:00"}],
}

# One schema-valid body per body schema, holding every field it declares (a test below checks
# that against the schema itself). Metadata objects hold no strings: they are free data.
EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "evaluate": ("POST", "/v1/evaluate", {
        "user": {"user_id": "u-1", "username": "alice", "email": "alice@example.com", "email_verified": True,
                 "name": "Alice A.", "phone_number": "+14155550123", "created_at": "2026-01-01T00:00:00+00:00",
                 "last_login": "2026-11-01T00:00:00+00:00", "logins_count": 3, "app_metadata": {"n": 1},
                 "user_metadata": {"n": 1}, "factors": ["otp"], "groups": ["staff"],
                 "known_device_ids": ["dev-1"], "known_countries": ["US"], "known_client_ids": ["app-1"],
                 "last_login_geo": {"latitude": 39.8, "longitude": -89.65, "accuracy_radius": 50}},
        "context": CONTEXT}),
    "login": ("POST", "/v1/login", {
        "username": "alice", "password": PASSWORD, "client_id": "app-1",
        "context": {**{name: value for name, value in CONTEXT.items() if name != "authentication_methods"},
                    "remember_token": "rmb_0123.abcdef"}}),
    "mfa_challenge": ("POST", "/v1/mfa/challenge", {
        "challenge_id": "ch_0123", "factor_id": "fac_0123", "client_id": "app-1", "context": CONTEXT}),
    "mfa_verify": ("POST", "/v1/mfa/verify", {
        "challenge_id": "ch_0123", "factor_id": "fac_0123", "code": "123456", "client_id": "app-1",
        "context": CONTEXT, "remember_browser": True}),
    "mfa_enroll": ("POST", "/v1/mfa/enroll", {
        "factor": "sms", "phone_number": "+14155550123", "enrollment_token": "tok_0123", "user_token": "aaa.bbb.ccc",
        "context": CONTEXT}),
    "mfa_enroll_confirm": ("POST", "/v1/mfa/enroll/confirm", {"enrollment_id": "enr_0123", "code": "123456"}),
    "mfa_recovery_codes": ("POST", "/v1/mfa/recovery-codes", {"user_token": "aaa.bbb.ccc"}),
    "step_up": ("POST", "/v1/step-up", {"user_token": "aaa.bbb.ccc", "action": "transfer", "context": {
        name: value for name, value in CONTEXT.items() if name not in ("action", "authentication_methods")}}),
    "admin_create_user": ("POST", "/admin/users", {
        "username": "dave", "password": PASSWORD, "email": "dave@example.com", "email_verified": False,
        "name": "Dave D.", "phone_number": "+14155550123", "app_metadata": {"n": 1}, "user_metadata": {"n": 1}}),
    "admin_update_user": ("PATCH", "/admin/users/{user_id}", {
        "password": PASSWORD, "email": "erin@example.com", "email_verified": True, "name": "Erin E.",
        "phone_number": "+14155550123", "app_metadata": {"n": 1}, "user_metadata": {"n": 1}}),
    "admin_add_factor": ("POST", "/admin/users/{user_id}/factors", {
        "type": "sms", "phone_number": "+14155550123", "secret": "JBSWY3DPEHPK3PXP"}),
    "token": ("POST", "/v1/token", {"code": "c" * 22, "client_id": "demo", "redirect_uri": "https://app.example.com/cb",
                                    "code_verifier": "v" * 43}),
    "admin_put_client": ("PUT", "/admin/clients/sweep-app", {
        "name": "Sweep App", "redirect_uris": ["https://app.example.com/callback"], "public": False}),
}
# Every body schema by route name: the core API's and the admin clients' (rule bodies: see RULE_ROUTES).
BODIES = {**schema.BODIES, **clients_admin.BODIES}

# Examples are keyed by route name, like schema.BODIES.
def parse_body(name: str, body: dict[str, Any]) -> Any:
    if name == "evaluate":
        return schema.parse_evaluate(body)
    if name == "step_up":
        return schema.parse_step_up(body)
    if name in ("token", "admin_put_client"):  # declared in BODIES only
        return schema.parse(BODIES[name], body)
    return schema.parse(getattr(schema, {"login": "LOGIN", "mfa_challenge": "CHALLENGE", "mfa_verify": "VERIFY",
                                         "mfa_enroll": "ENROLL", "mfa_enroll_confirm": "CONFIRM",
                                         "mfa_recovery_codes": "USER_TOKEN", "admin_create_user": "NEW_USER",
                                         "admin_update_user": "USER_CHANGES", "admin_add_factor": "NEW_FACTOR"}[name]),
                        body)


# Free text (the ledger in engine/http/schema.py): what people and browsers write.
FREE_TEXT = {"name", "user.name", "context.user_agent", "context.client_name"}
SECRET_TEXT = {"password"}


def string_leaves(value: Any, path: str = "") -> Iterator[str]:
    """The dotted path of every string in a body, as the schema names fields (`user.groups[0]`)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from string_leaves(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from string_leaves(child, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path


def with_value(body: dict[str, Any], path: str, change: Callable[[str], str]) -> dict[str, Any]:
    """A deep copy of `body` with the string at `path` replaced by change(old)."""
    changed = copy.deepcopy(body)
    parts = path.replace("[", ".[").split(".")
    holder: Any = changed
    for part in parts[:-1]:
        holder = holder[int(part[1:-1])] if part.startswith("[") else holder[part]
    last = parts[-1]
    key: Any = int(last[1:-1]) if last.startswith("[") else last
    holder[key] = change(holder[key])
    return changed


def kind_of(path: str) -> str:
    if path in FREE_TEXT:
        return "free"
    if path in SECRET_TEXT:
        return "secret"
    return "identifier"


SWEEP = [(name, path) for name, (_, _, body) in EXAMPLES.items() for path in string_leaves(body)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path_factory.mktemp("input-validation"), loop_thread, "memory")


@pytest.fixture(scope="module")
def user_id(service: LoginService) -> str:
    return str(service.create_user("frank")["user_id"])


def send(service: LoginService, name: str, body: dict[str, Any], user_id: str) -> Any:
    method, path, _ = EXAMPLES[name]
    headers = admin_auth() if path.startswith("/admin") else auth()
    return service.client.request(method, path.format(user_id=user_id), json=body, headers=headers)


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field


# The property: every text field of every body refuses a trailing line break, over HTTP.

@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_body_is_valid_so_the_sweep_tests_one_change_at_a_time(
        service: LoginService, user_id: str, name: str) -> None:
    response = send(service, name, EXAMPLES[name][2], user_id)
    assert response.status_code != 400, response.text
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(("name", "path"), SWEEP, ids=[f"{n}:{p}" for n, p in SWEEP])
def test_every_text_field_refuses_a_trailing_line_break(service: LoginService, user_id: str, name: str,
                                                        path: str) -> None:
    body = with_value(EXAMPLES[name][2], path, lambda old: old + "\n")
    assert_refused(send(service, name, body, user_id), path)


def test_the_sweep_covers_every_field_of_every_body_schema() -> None:
    """A field added to a schema without an example here would escape the sweep."""
    for name, (_, _, body) in EXAMPLES.items():
        declared = set(schema.field_paths(BODIES[name]))
        # A list checked whole by its own function (admin_put_client's redirect_uris) is one declared field.
        leaves = {leaf.split("[")[0] if leaf.split("[")[0] in declared else leaf for leaf in _all_leaves(body)}
        assert declared == leaves, name
    assert set(BODIES) == set(EXAMPLES)
    with_bodies = {route.name for route in ROUTES if isinstance(route, Route) and route.methods
                   and route.methods & {"POST", "PATCH", "PUT"}} - {"admin_reset_mfa"} - RULE_ROUTES
    assert with_bodies == set(BODIES)


# Rule bodies carry source code, where a trailing line break is normal: engine/http/rules_admin.py
# validates them and tests/engine/test_rules_admin.py sweeps their fields. A rule setting's value
# is any JSON the rules read (engine/http/settings_admin.py; tests/engine/test_rule_settings.py).
RULE_ROUTES = {"admin_apply_rules", "admin_reload_rules", "admin_rollback_rules", "admin_dry_run_rules",
               "admin_put_rule", "admin_patch_rule", "admin_bad_rule_path", "admin_put_rule_setting",
               "admin_bad_rule_setting_path"}


def _all_leaves(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict) and not path.endswith("_metadata"):
        for key, child in value.items():
            yield from _all_leaves(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _all_leaves(child, f"{path}[{index}]")
    else:
        yield path


# The same, in the schema, with every kind of character that hides or reorders text.

HIDDEN_IN_IDENTIFIERS = ["\n", "\r", "\t", "\x00", "\x0b", "\x1b", "\x7f", "\x85", "\xa0", "\u200b", "\u200d",
                         "\u200e", "\u061c", "\u2028", "\u2029", "\u202e", "\u2066", "\ufeff", "\U000e0041", " "]
HIDDEN_IN_FREE_TEXT = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202a", "\u202e",
                       "\u2066", "\u2069"]
HIDDEN_IN_SECRETS = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029"]


def accepted(name: str, body: dict[str, Any]) -> bool:
    try:
        parse_body(name, body)
    except InvalidRequest:
        return False
    return True


@pytest.mark.parametrize(("name", "path"), SWEEP, ids=[f"{n}:{p}" for n, p in SWEEP])
def test_no_text_field_accepts_controls_separators_or_invisible_characters(name: str, path: str) -> None:
    body = EXAMPLES[name][2]
    assert accepted(name, body)
    hidden = {"identifier": HIDDEN_IN_IDENTIFIERS, "free": HIDDEN_IN_FREE_TEXT,
              "secret": HIDDEN_IN_SECRETS}[kind_of(path)]
    slipped = []
    for character in hidden:
        for where, change in (("end", lambda old, c=character: old + c),
                              ("middle", lambda old, c=character: old[:1] + c + old[1:])):
            if character == " " and where == "middle":
                continue  # "Domain Admins": a space inside an identifier is not hidden
            if accepted(name, with_value(body, path, change)):
                slipped.append(f"U+{ord(character):04X} at the {where}")
    assert slipped == []


def test_the_refusal_names_the_field_and_never_echoes_the_value() -> None:
    with pytest.raises(InvalidRequest) as caught:
        schema.parse(schema.NEW_USER, {"username": "carol\u202eloac", "password": PASSWORD})
    assert caught.value.field == "username"
    assert "carol" not in caught.value.message


# The attacks of the report, one by one, over HTTP.

@pytest.mark.parametrize("action", ["transaction\n", "transaction\r\n", "transaction\r", "transaction\x00",
                                    "transaction\t", "transaction\x85", "transaction\u2028", "transaction\u200b",
                                    "transaction\ufeff", "transaction\u202e"])
def test_a_step_up_action_with_a_hidden_character_is_refused_not_waved_through(service: LoginService,
                                                                               action: str) -> None:
    body = copy.deepcopy(EXAMPLES["evaluate"][2])
    body["context"] = {"ip": US_IP, "device_id": "dev-1", "action": action}
    assert_refused(service.post("/v1/evaluate", body), "context.action")


def test_the_shipped_step_up_rule_still_asks_for_the_app_on_a_clean_transaction(service: LoginService) -> None:
    body = copy.deepcopy(EXAMPLES["evaluate"][2])
    body["context"] = {"ip": US_IP, "device_id": "dev-1", "action": "transaction"}
    answer = service.post("/v1/evaluate", body).json()
    assert answer["decision"] == "mfa"
    assert answer["factors"][0]["type"] == "otp"


@pytest.mark.parametrize("look_alike", ["carol\n", "carol\r\n", "carol\u200b", "carol\u2028", "carol "])
def test_an_admin_cannot_create_a_look_alike_of_an_existing_username(service: LoginService,
                                                                     look_alike: str) -> None:
    if not any(u["username"] == "carol" for u in
               service.client.get("/admin/users", headers=admin_auth()).json()["users"]):
        service.create_user("carol")
    response = service.post("/admin/users", {"username": look_alike, "password": PASSWORD}, admin_auth())
    assert_refused(response, "username")
    users = service.client.get("/admin/users", headers=admin_auth()).json()["users"]
    assert look_alike not in [u["username"] for u in users]


@pytest.mark.parametrize("phone", ["+14155550123\n", "+14155550123\r\n", "\n+14155550123", "+1415555\x000123"])
def test_a_phone_number_with_a_hidden_character_is_never_stored_or_texted(service: LoginService, user_id: str,
                                                                          phone: str) -> None:
    sent = len(service.sms.messages)
    factor = service.post(f"/admin/users/{user_id}/factors", {"type": "sms", "phone_number": phone}, admin_auth())
    assert_refused(factor, "phone_number")
    created = service.post("/admin/users", {"username": "gina", "password": PASSWORD, "phone_number": phone},
                           admin_auth())
    assert_refused(created, "phone_number")
    changed = service.client.request("PATCH", f"/admin/users/{user_id}", json={"phone_number": phone},
                                     headers=admin_auth())
    assert_refused(changed, "phone_number")
    enrolled = service.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": phone, "user_token": "aaa.bbb.ccc"})
    assert_refused(enrolled, "phone_number")
    stored = service.client.get(f"/admin/users/{user_id}/factors", headers=admin_auth()).json()["factors"]
    assert all("\n" not in (f["phone"] or "") for f in stored)
    assert len(service.sms.messages) == sent


@pytest.mark.parametrize(("name", "field"), [
    ("mfa_challenge", "challenge_id"), ("mfa_challenge", "factor_id"), ("mfa_verify", "challenge_id"),
    ("mfa_verify", "factor_id"), ("mfa_verify", "code"), ("mfa_enroll_confirm", "enrollment_id"),
    ("mfa_enroll_confirm", "code"), ("mfa_enroll", "enrollment_token"), ("mfa_enroll", "user_token"),
    ("mfa_recovery_codes", "user_token"),
])
@pytest.mark.parametrize("hidden", ["\n", "\r\n", "\x00"])
def test_ids_codes_and_tokens_with_a_hidden_character_are_refused(service: LoginService, user_id: str, name: str,
                                                                   field: str, hidden: str) -> None:
    body = with_value(EXAMPLES[name][2], field, lambda old: old + hidden)
    assert_refused(send(service, name, body, user_id), field)


def test_a_timestamp_with_a_line_break_inside_is_refused(service: LoginService) -> None:
    body = copy.deepcopy(EXAMPLES["evaluate"][2])
    body["user"]["created_at"] = "2026-01-01T00:00:00\n+00:00"  # datetime.fromisoformat accepts this
    assert_refused(service.post("/v1/evaluate", body), "user.created_at")


@pytest.mark.parametrize("ip", ["fe80::1%eth0", "fe80::1%a\nb", "fe80::1%\u202e"])
def test_an_ip_address_with_a_zone_index_is_refused(service: LoginService, ip: str) -> None:
    """A zone index (scope id) means nothing off the host, and would make one address many strings."""
    body = copy.deepcopy(EXAMPLES["evaluate"][2])
    body["context"]["ip"] = ip
    assert_refused(service.post("/v1/evaluate", body), "context.ip")


@pytest.mark.parametrize("hostname", ["login.example.com/evil", "evil.example@login.example.com",
                                      "login example.com", "login.example.com:443", "-login.example.com",
                                      "login..example.com"])
def test_a_hostname_is_a_dns_name_rules_can_build_urls_from(service: LoginService, hostname: str) -> None:
    body = copy.deepcopy(EXAMPLES["evaluate"][2])
    body["context"]["hostname"] = hostname
    assert_refused(service.post("/v1/evaluate", body), "context.hostname")


def test_free_text_keeps_emoji_sequences_joiners_and_no_break_spaces(service: LoginService) -> None:
    names = ["\U0001f469\u200d\U0001f4bb Zo\u00eb", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
             "Ana\u00a0Mar\u00eda", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u200f(RTL)"]
    for index, name in enumerate(names):
        user = service.create_user(f"free{index}", name=name)
        assert user["name"] == name
    body = copy.deepcopy(EXAMPLES["evaluate"][2])
    body["context"]["user_agent"] = "Mozilla/5.0 (\u00fcber; \U0001f600)"
    assert service.post("/v1/evaluate", body).status_code == 200


def test_a_password_may_hold_any_printable_text_emoji_sequences_included(service: LoginService) -> None:
    password = "na\u00efve \U0001f468\u200d\U0001f469\u200d\U0001f467 \u202etwisted\u202c p\u00e2ss"
    service.create_user("hank", password=password)
    assert service.login("hank", password, ip=DE_IP).status_code == 200


def test_a_password_with_a_line_break_is_refused_when_set(service: LoginService, user_id: str) -> None:
    created = service.post("/admin/users", {"username": "ivan", "password": PASSWORD + "\n"}, admin_auth())
    assert_refused(created, "password")
    changed = service.client.request("PATCH", f"/admin/users/{user_id}", json={"password": PASSWORD + "\r\n"},
                                     headers=admin_auth())
    assert_refused(changed, "password")


@pytest.mark.parametrize("junk", ["\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0"])
def test_a_bearer_key_with_trailing_junk_is_not_accepted(service: LoginService, junk: str) -> None:
    """str.strip() also strips vertical tabs, file separators, NEL and NBSP: only spaces and tabs
    around a header value are optional whitespace (RFC 9110)."""
    body = EXAMPLES["evaluate"][2]
    def bearer(key: str) -> dict[str, bytes]:
        return {"Authorization": f"Bearer {key}{junk}".encode("latin-1")}
    evaluated = service.client.post("/v1/evaluate", json=body, headers=bearer(API_KEY))
    assert evaluated.status_code == 401
    listed = service.client.get("/admin/users", headers=bearer(ADMIN_TOKEN))
    assert listed.status_code == 401


@pytest.mark.parametrize("length", ["\u00b2", "1\u00b9", "\u00b3\u00b3", "9" * 5000],
                         ids=["sup2", "1sup1", "sup3sup3", "5000-digits"])
def test_a_content_length_of_non_ascii_digits_is_not_a_500(service: LoginService, length: str) -> None:
    """Headers arrive as latin-1: str.isdigit() says yes to superscript digits, int() says no."""
    response = service.client.post("/v1/evaluate", content=b"{}",
                                   headers={"Authorization": auth()["Authorization"].encode(),
                                            "Content-Type": b"application/json",
                                            "Content-Length": length.encode("latin-1")})
    assert response.status_code < 500


# The other ways in: the CLI, the directory itself, the configuration, rule ids.

def _cli_config(tmp_path: Path) -> str:
    (tmp_path / "rules").mkdir()
    (tmp_path / "config.yaml").write_text(
        "rules: {dir: rules}\ndirectory: {url: 'sqlite:///users.db'}\n"
        "login: {password_time_cost: 1, password_memory_kib: 8192, password_parallelism: 1}\n")
    return str(tmp_path / "config.yaml")


def _users(config: str, *args: str, password: str = "s3cret-passphrase\n") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", "users", "--config", config, *args], input=password,
                          capture_output=True, text=True, timeout=60, cwd=REPO, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args", [
    ("add", "carol\n"), ("add", "carol\u200b"), ("add", "carol", "--phone", "+14155550123\n"),
    ("add", "carol", "--email", "carol@example.com\n"), ("add", "carol", "--name", "Carol\x1b[2J"),
], ids=["username-newline", "username-zwsp", "phone-newline", "email-newline", "name-escape"])
def test_users_add_refuses_hidden_characters_like_the_admin_api(tmp_path: Path, args: tuple[str, ...]) -> None:
    config = _cli_config(tmp_path)
    added = _users(config, *args)
    assert added.returncode == 2, added.stdout + added.stderr
    assert "Traceback" not in added.stderr
    assert "created" not in added.stdout
    assert _users(config, "list").stdout == ""


def test_users_add_refuses_a_password_with_a_control_character(tmp_path: Path) -> None:
    added = _users(_cli_config(tmp_path), "add", "carol", password="pass\x1bword-long-enough\n")
    assert added.returncode == 2
    assert "Traceback" not in added.stderr


@pytest.mark.parametrize("username", ["carol\n", "carol\r", "carol\u200b", "car\u200dol", "carol\u2028",
                                      "carol\u202e", "carol\x00", " carol", "carol ", "car\u00a0ol", ""])
def test_the_directory_itself_refuses_usernames_that_hide_characters(tmp_path: Path, username: str) -> None:
    """The last line: whatever calls create_user (admin API, CLI, an import script)."""
    directory = SqliteDirectory(str(tmp_path / "d.db"), Keyring(bytes(range(32))))
    try:
        with pytest.raises(ValueError):
            asyncio.run(directory.create_user(NewUser(username, "$argon2id$x"), NOW))
        assert asyncio.run(directory.list_users(10, 0)) == []
    finally:
        asyncio.run(directory.close())


@pytest.mark.parametrize(("yaml_text", "environ", "path"), [
    ("rules: {on_error_by_rule: {\"30-step-up-transactions\\n\": require_mfa}}\n", {}, "rules.on_error_by_rule"),
    ("rules: {on_error_by_rule: {\"\u0663\u0660-step-up\": require_mfa}}\n", {}, "rules.on_error_by_rule"),
    ("sms: {allowed_countries: [\"\u00c4\u00d6\"]}\n", {}, "sms.allowed_countries"),
    ("sms: {allowed_countries: [\"US\\n\"]}\n", {}, "sms.allowed_countries"),
    ("", {"MFA_ADMIN__TOKEN": "a-long-admin-token-0123456789\r"}, "admin.token"),
    ("", {"MFA_API__KEYS": "[\"a-long-api-key-0123456789\\n\"]"}, "api.keys"),
    ("mfa: {issuer_name: \"Acme\\nYour code is 000000\"}\n", {}, "mfa.issuer_name"),
    ("directory: {url: \"sqlite:///var/mfa\\0.db\"}\n", {}, "directory.url"),
    ("store: {redis_url: \"redis://127.0.0.1:6379/0\\n\"}\n", {}, "store.redis_url"),
    ("sms: {gateway: webhook, webhook: {url: \"https://hooks.example.com/sms\\n\", secret: s}}\n", {},
     "sms.webhook.url"),
    ("sms: {gateway: webhook, webhook: {url: \"ftp://hooks.example.com/sms\", secret: s}}\n", {},
     "sms.webhook.url"),
    ("sms: {twilio: {base_url: \"https://api.twilio.com\\u2028\"}}\n", {}, "sms.twilio.base_url"),
    ("tokens: {issuer: \"mfa-engine\\u200b\"}\n", {}, "tokens.issuer"),
    ("", {"MFA_SECRETS__KEY": " AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, "secrets.key"),
], ids=["rule-id-newline", "rule-id-arabic-digits", "country-non-ascii", "country-newline", "admin-token-cr",
        "api-key-newline", "issuer-name-newline", "directory-url-nul", "redis-url-newline", "webhook-url-newline",
        "webhook-url-scheme", "twilio-url-separator", "token-issuer-zwsp", "secret-key-leading-space"])
def test_configuration_values_refuse_hidden_characters(tmp_path: Path, yaml_text: str, environ: dict[str, str],
                                                       path: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml_text or "{}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ)
    assert str(caught.value).startswith(path + ":")


def test_a_pem_signing_key_keeps_its_line_breaks(tmp_path: Path) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB3Z1m0kDqM4y6m6h1o1ZxK4+u1n2H8S6h3z2Y3vQ0Lh\n" \
          "-----END PRIVATE KEY-----\n"
    settings = load_settings(None, {"MFA_TOKENS__ALGORITHM": "EdDSA", "MFA_TOKENS__SIGNING_KEY": pem})
    assert settings.tokens.signing_key == pem


@pytest.mark.parametrize("rule_id", ["\u0661\u0660-arabic-digits", "\uff11\uff10-fullwidth-digits",
                                     "10-trailing\n", "10-zero\u200bwidth"])
def test_a_rule_id_is_ascii_digits_a_dash_and_a_name(rule_id: str) -> None:
    with pytest.raises(RuleSetRejected):
        build_rule_set({rule_id: "def rule(user, context):\n    pass\n"}, RulesSettings(), Limits())
