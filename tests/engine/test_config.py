"""config.yaml is read strictly; MFA_* variables override any key; errors name the dotted path."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import DEMO_API_KEY, ConfigError, Settings, load_settings

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_loads_and_every_key_in_it_is_known() -> None:
    settings = load_settings(REPO_CONFIG, environ={})
    assert settings.sandbox.isolation == "process"
    assert settings.api.keys == (DEMO_API_KEY,)
    assert settings.path(settings.rules.dir) == REPO_CONFIG.parent / "rules"


def test_no_config_file_gives_the_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings == Settings(base_dir=".")


def test_the_config_path_can_come_from_mfa_config(tmp_path: Path) -> None:
    path = write(tmp_path, "sandbox: {workers: 3}\n")
    assert load_settings(None, environ={"MFA_CONFIG": str(path)}).sandbox.workers == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: blue\n", "colour: unknown key"),
        ("sandbox: {isolaton: process}\n", "sandbox.isolaton: unknown key"),
        ("sandbox: {isolation: docker}\n", "sandbox.isolation: must be one of process, inprocess"),
        ("sandbox: {rule_timeout_ms: 0}\n", "sandbox.rule_timeout_ms: must be 1..10000"),
        ("sandbox: {rule_timeout_ms: '50'}\n", "sandbox.rule_timeout_ms: must be an integer"),
        ("sandbox: {workers: true}\n", "sandbox.workers: must be an integer"),
        ("sandbox: {rule_timeout_ms: 500, pipeline_timeout_ms: 100}\n",
         "sandbox.rule_timeout_ms: must not exceed sandbox.pipeline_timeout_ms"),
        ("sandbox: 3\n", "sandbox: must be a mapping"),
        ("rules: {dir: 7}\n", "rules.dir: must be a string"),
        ("rules: {on_error_by_rule: {10-a: allow}}\n", "rules.on_error_by_rule: values must be among deny, require_mfa"),
        ("api: {keys: short}\n", "api.keys: must be a list of strings"),
        ("api: {keys: [short]}\n", "api.keys: every key must be at least 16 characters"),
        ("mfa: {factors: [otp, push]}\n", "mfa.factors: items must be among otp, sms, recovery"),
        ("mfa: {factors: [otp, otp]}\n", "mfa.factors: items must not repeat"),
        ("http: {max_body_bytes: 10}\n", "http.max_body_bytes: must be 1024..10485760"),
        ("geoip: {allow_networks: [not-a-network]}\n", "geoip.allow_networks: items must be networks"),
        ("- a list\n", "the top level must be a mapping"),
        ("sandbox: {workers: [\n", "not valid YAML"),
        ("environment: production\n", "api.keys: production needs at least one API key"),
        (f"environment: production\napi: {{keys: [{DEMO_API_KEY}]}}\n", "api.keys: the demo key"),
    ],
)
def test_a_bad_config_stops_startup_with_the_dotted_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(error.value)


def test_errors_never_echo_the_value_which_may_be_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, "api: {keys: [tiny-secret]}\n"), environ={})
    assert "tiny-secret" not in str(error.value)


def test_environment_variables_override_nested_keys_with_their_types(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: {dir: rules}\nsandbox: {workers: 2}\n")
    settings = load_settings(path, environ={
        "MFA_RULES__DIR": "/srv/rules",
        "MFA_SANDBOX__WORKERS": "4",
        "MFA_SANDBOX__ISOLATION": "inprocess",
        "MFA_API__KEYS": "key-one-0123456789abcdef, key-two-0123456789abcdef",
        "MFA_MFA__FACTORS": "[sms, otp]",
        "MFA_GEOIP__DATABASE": "",
        "MFA_RULES__ON_ERROR_BY_RULE": "{20-geo: require_mfa}",
    })
    assert settings.rules.dir == "/srv/rules"
    assert settings.sandbox.workers == 4
    assert settings.sandbox.isolation == "inprocess"
    assert settings.api.keys == ("key-one-0123456789abcdef", "key-two-0123456789abcdef")
    assert settings.mfa.factors == ("sms", "otp")
    assert settings.geoip.database == ""
    assert settings.rules.on_error_by_rule == {"20-geo": "require_mfa"}


def test_a_string_setting_from_the_environment_is_taken_literally() -> None:
    assert load_settings(None, environ={"MFA_RULES__DIR": "010"}).rules.dir == "010"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("MFA_SANDBOX__WORKERZ", "sandbox.workerz: unknown key (from the environment variable MFA_SANDBOX__WORKERZ)"),
        ("MFA_NOPE", "nope: unknown key"),
        ("MFA_BASE_DIR", "base_dir: unknown key"),
    ],
)
def test_an_unknown_environment_override_stops_startup(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, environ={name: "1"})
    assert message in str(error.value)


def test_an_override_of_the_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match="sandbox.workers: must be an integer"):
        load_settings(None, environ={"MFA_SANDBOX__WORKERS": "many"})


def test_an_unreadable_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "missing.yaml", environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("directory: {url: 'mysql://db/mfa'}\n", "directory.url: must be sqlite:///PATH or postgresql://"),
        ("store: {redis_url: 'http://cache'}\n", "store.redis_url: must be redis://"),
        ("admin: {token: short}\n", "admin.token: must be at least 16 characters"),
        ("sms: {allowed_countries: [usa]}\n", "sms.allowed_countries: items must be ISO 3166 alpha-2"),
        ("sms: {gateway: webhook}\n", "sms.webhook: url and secret are required"),
        ("sms: {gateway: twilio}\n", "sms.twilio: account_sid, auth_token and from_number are required"),
        ("tokens: {signing_key: too-short}\n", "tokens.signing_key: an HS256 secret must be at least 32"),
        ("mfa: {challenge_ttl_seconds: 3600}\n", "mfa.challenge_ttl_seconds: must be 30..600"),
        ("mfa: {lockout_threshold: 500}\n", "mfa.lockout_threshold: must be 1..100"),
        ("environment: production\napi: {keys: [prod-key-0123456789abcdef]}\n",
         "sms.gateway: the console gateway only prints codes; refused in production"),
        ("environment: production\napi: {keys: [prod-key-0123456789abcdef]}\n"
         "sms: {gateway: console, allow_console_outside_development: true}\n",
         "secrets.key: production needs a key"),
        ("environment: production\napi: {keys: [prod-key-0123456789abcdef]}\n"
         "admin: {token: demo-admin-token-change-me-0123456789}\n", "admin.token: the demo token"),
    ],
)
def test_login_settings_are_checked_at_startup(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(error.value)
