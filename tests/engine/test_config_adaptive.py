"""mfa.policy, mfa.triggers.* and mfa.remember_browser (issue 10): parsed strictly, overridable, and off
by default so that wiring the triggers changes nothing for a config that does not name them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import (
    ConfigError,
    CountriesTrigger,
    FirstLoginTrigger,
    ImpossibleTravelTrigger,
    MfaSettings,
    RecentTrigger,
    RememberBrowserSettings,
    SensitiveActionsTrigger,
    TriggersSettings,
    load_settings,
)

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_defaults_are_adaptive_with_every_trigger_off_and_thirty_day_remembered_browsers() -> None:
    mfa = load_settings(None, environ={}).mfa
    assert mfa.policy == "adaptive"
    assert mfa.triggers == TriggersSettings(
        first_login=FirstLoginTrigger(enabled=False, per_client=False),
        new_device=RecentTrigger(enabled=False, days=90),
        new_country=RecentTrigger(enabled=False, days=90),
        impossible_travel=ImpossibleTravelTrigger(enabled=False, max_kmh=1000),
        countries=CountriesTrigger(require_mfa_outside=(), deny=()),
        sensitive_actions=SensitiveActionsTrigger(actions=(), within_minutes=5),
        unknown_location="new",
    )
    assert mfa.remember_browser == RememberBrowserSettings(days=30, allowed_in_required=False)


def test_the_shipped_config_names_every_new_key_and_keeps_the_seed_behaviour() -> None:
    # The shipped rules (20, 30, 40) already decide on country, step-up and new device or
    # country; built-in triggers stay off there so a login needs what it needed before.
    mfa = load_settings(REPO_CONFIG, environ={}).mfa
    assert mfa.policy == "adaptive"
    assert mfa.triggers == TriggersSettings()
    assert mfa.remember_browser == RememberBrowserSettings()


def test_a_full_adaptive_section_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, """
mfa:
  policy: required
  triggers:
    first_login: {enabled: true, per_client: true}
    new_device: {enabled: true, days: 30}
    new_country: {enabled: true, days: 365}
    impossible_travel: {enabled: true, max_kmh: 800}
    countries: {require_mfa_outside: [US, CA], deny: [KP]}
    sensitive_actions: {actions: [transaction, change_profile], within_minutes: 10}
    unknown_location: ignore
  remember_browser: {days: 0, allowed_in_required: true}
""")
    mfa = load_settings(path, environ={}).mfa
    assert mfa == MfaSettings(
        policy="required",
        triggers=TriggersSettings(
            first_login=FirstLoginTrigger(enabled=True, per_client=True),
            new_device=RecentTrigger(enabled=True, days=30),
            new_country=RecentTrigger(enabled=True, days=365),
            impossible_travel=ImpossibleTravelTrigger(enabled=True, max_kmh=800),
            countries=CountriesTrigger(require_mfa_outside=("US", "CA"), deny=("KP",)),
            sensitive_actions=SensitiveActionsTrigger(actions=("transaction", "change_profile"), within_minutes=10),
            unknown_location="ignore",
        ),
        remember_browser=RememberBrowserSettings(days=0, allowed_in_required=True),
    )


def test_a_partial_trigger_keeps_the_defaults_of_the_keys_it_does_not_name(tmp_path: Path) -> None:
    path = write(tmp_path, "mfa: {triggers: {new_device: {enabled: true}}}\n")
    triggers = load_settings(path, environ={}).mfa.triggers
    assert triggers.new_device == RecentTrigger(enabled=True, days=90)
    assert triggers.new_country == RecentTrigger()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mfa: {policy: sometimes}\n", "mfa.policy: must be one of required, optional, adaptive, never"),
        ("mfa: {triggers: {new_devices: {enabled: true}}}\n", "mfa.triggers.new_devices: unknown key"),
        ("mfa: {triggers: {new_device: {enabled: yes-please}}}\n", "mfa.triggers.new_device.enabled: must be true or false"),
        ("mfa: {triggers: {new_device: {days: 0}}}\n", "mfa.triggers.new_device.days: must be 1..3650"),
        ("mfa: {triggers: {new_country: {days: 4000}}}\n", "mfa.triggers.new_country.days: must be 1..3650"),
        ("mfa: {triggers: {new_country: {window: 3}}}\n", "mfa.triggers.new_country.window: unknown key"),
        ("mfa: {triggers: {first_login: {per_client: 1}}}\n", "mfa.triggers.first_login.per_client: must be true or false"),
        ("mfa: {triggers: {impossible_travel: {max_kmh: 0}}}\n", "mfa.triggers.impossible_travel.max_kmh: must be 1..100000"),
        ("mfa: {triggers: {impossible_travel: {max_kmh: 900.5}}}\n",
         "mfa.triggers.impossible_travel.max_kmh: must be an integer"),
        ("mfa: {triggers: {countries: {deny: [kp]}}}\n",
         "mfa.triggers.countries.deny: items must be ISO 3166 alpha-2 codes in upper case like US"),
        ("mfa: {triggers: {countries: {require_mfa_outside: [USA]}}}\n",
         "mfa.triggers.countries.require_mfa_outside: items must be ISO 3166 alpha-2 codes in upper case like US"),
        ("mfa: {triggers: {countries: {deny: [KP, KP]}}}\n", "mfa.triggers.countries.deny: items must not repeat"),
        ("mfa: {triggers: {countries: {require_mfa_outside: [US, KP], deny: [KP]}}}\n",
         "mfa.triggers.countries: KP is both a home country (require_mfa_outside) and denied"),
        ("mfa: {triggers: {countries: US}}\n", "mfa.triggers.countries: must be a mapping"),
        ("mfa: {triggers: {sensitive_actions: {actions: [Transfer]}}}\n",
         "mfa.triggers.sensitive_actions.actions: items must be action names like transaction"),
        ("mfa: {triggers: {sensitive_actions: {actions: [login]}}}\n",
         "mfa.triggers.sensitive_actions.actions: login is not a sensitive action"),
        ("mfa: {triggers: {sensitive_actions: {within_minutes: 0}}}\n",
         "mfa.triggers.sensitive_actions.within_minutes: must be 1..1440"),
        ("mfa: {triggers: {unknown_location: deny}}\n", "mfa.triggers.unknown_location: must be one of new, ignore"),
        ("mfa: {remember_browser: {days: -1}}\n", "mfa.remember_browser.days: must be 0..365"),
        ("mfa: {remember_browser: {days: 400}}\n", "mfa.remember_browser.days: must be 0..365"),
        ("mfa: {remember_browser: {allowed_in_required: 'no'}}\n",
         "mfa.remember_browser.allowed_in_required: must be true or false"),
        ("mfa: {remember_browser: 30}\n", "mfa.remember_browser: must be a mapping"),
    ],
)
def test_a_bad_adaptive_setting_stops_startup_with_its_dotted_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(error.value)


def test_environment_variables_override_the_nested_trigger_keys() -> None:
    settings = load_settings(None, environ={
        "MFA_MFA__POLICY": "optional",
        "MFA_MFA__TRIGGERS__NEW_DEVICE__ENABLED": "true",
        "MFA_MFA__TRIGGERS__NEW_DEVICE__DAYS": "14",
        "MFA_MFA__TRIGGERS__IMPOSSIBLE_TRAVEL__MAX_KMH": "900",
        "MFA_MFA__TRIGGERS__COUNTRIES__REQUIRE_MFA_OUTSIDE": "US, CA",
        "MFA_MFA__TRIGGERS__COUNTRIES__DENY": "[KP]",
        "MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS__ACTIONS": "transaction",
        "MFA_MFA__TRIGGERS__UNKNOWN_LOCATION": "ignore",
        "MFA_MFA__REMEMBER_BROWSER__DAYS": "0",
    })
    mfa = settings.mfa
    assert mfa.policy == "optional"
    assert mfa.triggers.new_device == RecentTrigger(enabled=True, days=14)
    assert mfa.triggers.impossible_travel.max_kmh == 900
    assert mfa.triggers.countries == CountriesTrigger(require_mfa_outside=("US", "CA"), deny=("KP",))
    assert mfa.triggers.sensitive_actions.actions == ("transaction",)
    assert mfa.triggers.unknown_location == "ignore"
    assert mfa.remember_browser.days == 0


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MFA_MFA__TRIGGERS__NEW_DEVICE__DAYZ", "3",
     "mfa.triggers.new_device.dayz: unknown key (from the environment variable MFA_MFA__TRIGGERS__NEW_DEVICE__DAYZ)"),
    ("MFA_MFA__TRIGGERS__NEW_DEVICE__ENABLED", "maybe", "mfa.triggers.new_device.enabled: must be true or false"),
    ("MFA_MFA__TRIGGERS__COUNTRIES__DENY", "kp", "mfa.triggers.countries.deny: items must be ISO 3166 alpha-2"),
])
def test_a_bad_environment_override_of_a_trigger_names_the_key(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, environ={name: value})
    assert message in str(error.value)


# -- short forms: a trigger switched on with `true`, step-up actions as a list, a tuned block on ---

@pytest.mark.parametrize(("text", "expected"), [
    ("first_login: true", {"first_login": FirstLoginTrigger(enabled=True, per_client=False)}),
    ("first_login: false", {"first_login": FirstLoginTrigger(enabled=False)}),
    ("new_device: true", {"new_device": RecentTrigger(enabled=True, days=90)}),
    ("new_country: true", {"new_country": RecentTrigger(enabled=True, days=90)}),
    ("impossible_travel: true", {"impossible_travel": ImpossibleTravelTrigger(enabled=True, max_kmh=1000)}),
    ("impossible_travel: false", {"impossible_travel": ImpossibleTravelTrigger(enabled=False)}),
    ("sensitive_actions: [transfer]",
     {"sensitive_actions": SensitiveActionsTrigger(actions=("transfer",), within_minutes=5)}),
    ("sensitive_actions: [transfer, change_profile]",
     {"sensitive_actions": SensitiveActionsTrigger(actions=("transfer", "change_profile"))}),
    ("sensitive_actions: []", {"sensitive_actions": SensitiveActionsTrigger()}),
    ("sensitive_actions: false", {"sensitive_actions": SensitiveActionsTrigger()}),
    ("countries: false", {"countries": CountriesTrigger()}),
    # A block without `enabled` is switched on: it was tuned because it is wanted.
    ("new_device: {days: 30}", {"new_device": RecentTrigger(enabled=True, days=30)}),
    ("new_country: {days: 365}", {"new_country": RecentTrigger(enabled=True, days=365)}),
    ("first_login: {per_client: true}", {"first_login": FirstLoginTrigger(enabled=True, per_client=True)}),
    ("impossible_travel: {max_kmh: 800}", {"impossible_travel": ImpossibleTravelTrigger(enabled=True, max_kmh=800)}),
    ("new_device: {}", {"new_device": RecentTrigger(enabled=True, days=90)}),
    # ... and `enabled: false` still switches it off.
    ("new_device: {enabled: false, days: 30}", {"new_device": RecentTrigger(enabled=False, days=30)}),
    ("first_login: {enabled: false, per_client: true}",
     {"first_login": FirstLoginTrigger(enabled=False, per_client=True)}),
])
def test_a_trigger_takes_its_short_forms(tmp_path: Path, text: str, expected: dict[str, object]) -> None:
    path = write(tmp_path, f"mfa:\n  triggers:\n    {text}\n")
    assert load_settings(path, environ={}).mfa.triggers == TriggersSettings(**expected)  # type: ignore[arg-type]


def test_the_issue_s_own_wording_loads(tmp_path: Path) -> None:
    path = write(tmp_path, """
mfa:
  policy: adaptive
  triggers:
    first_login: true
    new_device: {days: 30}
    impossible_travel: true
    countries: {require_mfa_outside: [US, CA], deny: [KP]}
    sensitive_actions: [transfer]
""")
    triggers = load_settings(path, environ={}).mfa.triggers
    assert triggers == TriggersSettings(
        first_login=FirstLoginTrigger(enabled=True),
        new_device=RecentTrigger(enabled=True, days=30),
        impossible_travel=ImpossibleTravelTrigger(enabled=True),
        countries=CountriesTrigger(require_mfa_outside=("US", "CA"), deny=("KP",)),
        sensitive_actions=SensitiveActionsTrigger(actions=("transfer",)),
    )


@pytest.mark.parametrize(("text", "message"), [
    ("new_device: 30", "mfa.triggers.new_device: must be true, false or a mapping"),
    ("first_login: 'yes'", "mfa.triggers.first_login: must be true, false or a mapping"),
    ("first_login: [a]", "mfa.triggers.first_login: must be true, false or a mapping"),
    ("new_device: {days: 30, enabled: 1}", "mfa.triggers.new_device.enabled: must be true or false"),
    ("new_device: {days: 0}", "mfa.triggers.new_device.days: must be 1..3650"),
    ("sensitive_actions: true", "mfa.triggers.sensitive_actions: true names no action"),
    ("sensitive_actions: transfer",
     "mfa.triggers.sensitive_actions: must be a list of action names, a mapping (actions, within_minutes) or false"),
    ("sensitive_actions: [Transfer]",
     "mfa.triggers.sensitive_actions.actions: items must be action names like transaction"),
    ("sensitive_actions: [login]", "mfa.triggers.sensitive_actions.actions: login is not a sensitive action"),
    ("sensitive_actions: [transfer, transfer]", "mfa.triggers.sensitive_actions.actions: items must not repeat"),
    ("countries: true", "mfa.triggers.countries: true names no country"),
    ("countries: [US, CA]", "mfa.triggers.countries: must be a mapping (require_mfa_outside, deny) or false"),
    ("unknown_location: true", "mfa.triggers.unknown_location: must be a string"),
])
def test_a_bad_short_form_names_its_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, f"mfa:\n  triggers:\n    {text}\n"), environ={})
    assert message in str(error.value)


def test_other_sections_stay_mappings_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mfa.remember_browser: must be a mapping"):
        load_settings(write(tmp_path, "mfa: {remember_browser: true}\n"), environ={})
    with pytest.raises(ConfigError, match="mfa.triggers: must be a mapping"):
        load_settings(write(tmp_path, "mfa: {triggers: true}\n"), environ={})


def test_the_shipped_config_loads_exactly_as_before() -> None:
    # config.yaml names `enabled: false` on every switchable trigger: all stay off.
    triggers = load_settings(REPO_CONFIG, environ={}).mfa.triggers
    assert triggers == TriggersSettings()
    assert not any(getattr(triggers, name).enabled
                   for name in ("first_login", "new_device", "new_country", "impossible_travel"))


@pytest.mark.parametrize(("environ", "expected"), [
    ({"MFA_MFA__TRIGGERS__FIRST_LOGIN": "true"}, {"first_login": FirstLoginTrigger(enabled=True)}),
    ({"MFA_MFA__TRIGGERS__NEW_DEVICE": "true", "MFA_MFA__TRIGGERS__NEW_DEVICE__DAYS": "30"},
     {"new_device": RecentTrigger(enabled=True, days=30)}),
    ({"MFA_MFA__TRIGGERS__NEW_DEVICE__DAYS": "30"}, {"new_device": RecentTrigger(enabled=True, days=30)}),
    ({"MFA_MFA__TRIGGERS__NEW_DEVICE__DAYS": "30", "MFA_MFA__TRIGGERS__NEW_DEVICE__ENABLED": "false"},
     {"new_device": RecentTrigger(enabled=False, days=30)}),
    ({"MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS": "transfer"},
     {"sensitive_actions": SensitiveActionsTrigger(actions=("transfer",))}),
    ({"MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS": "transfer, change_profile"},
     {"sensitive_actions": SensitiveActionsTrigger(actions=("transfer", "change_profile"))}),
    ({"MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS": "[transfer]", "MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS__WITHIN_MINUTES": "10"},
     {"sensitive_actions": SensitiveActionsTrigger(actions=("transfer",), within_minutes=10)}),
])
def test_environment_variables_take_the_short_forms(environ: dict[str, str], expected: dict[str, object]) -> None:
    assert load_settings(None, environ=environ).mfa.triggers == TriggersSettings(**expected)  # type: ignore[arg-type]


def test_a_short_form_from_the_environment_switches_the_file_s_tuned_trigger(tmp_path: Path) -> None:
    # `true` sets the trigger's `enabled`, a list its `actions`: the file's tuning stays.
    path = write(tmp_path, """
mfa:
  triggers:
    first_login: {enabled: false, per_client: true}
    new_device: {enabled: false, days: 30}
    sensitive_actions: {actions: [], within_minutes: 10}
""")
    triggers = load_settings(path, environ={
        "MFA_MFA__TRIGGERS__FIRST_LOGIN": "true",
        "MFA_MFA__TRIGGERS__NEW_DEVICE": "true",
        "MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS": "transfer",
    }).mfa.triggers
    assert triggers.first_login == FirstLoginTrigger(enabled=True, per_client=True)
    assert triggers.new_device == RecentTrigger(enabled=True, days=30)
    assert triggers.sensitive_actions == SensitiveActionsTrigger(actions=("transfer",), within_minutes=10)


def test_the_environment_tunes_a_trigger_the_file_gave_in_short_form(tmp_path: Path) -> None:
    path = write(tmp_path, "mfa:\n  triggers:\n    new_device: true\n    sensitive_actions: [transfer]\n")
    triggers = load_settings(path, environ={
        "MFA_MFA__TRIGGERS__NEW_DEVICE__DAYS": "7",
        "MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS__WITHIN_MINUTES": "15",
    }).mfa.triggers
    assert triggers.new_device == RecentTrigger(enabled=True, days=7)
    assert triggers.sensitive_actions == SensitiveActionsTrigger(actions=("transfer",), within_minutes=15)


def test_the_shipped_config_with_an_environment_switch_keeps_its_other_keys() -> None:
    triggers = load_settings(REPO_CONFIG, environ={"MFA_MFA__TRIGGERS__IMPOSSIBLE_TRAVEL": "true"}).mfa.triggers
    assert triggers == TriggersSettings(impossible_travel=ImpossibleTravelTrigger(enabled=True, max_kmh=1000))


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MFA_MFA__TRIGGERS__FIRST_LOGIN", "maybe", "mfa.triggers.first_login: must be true, false or a mapping"),
    ("MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS", "true", "mfa.triggers.sensitive_actions: true names no action"),
    ("MFA_MFA__TRIGGERS__SENSITIVE_ACTIONS", "Transfer",
     "mfa.triggers.sensitive_actions.actions: items must be action names"),
])
def test_a_bad_short_form_from_the_environment_names_its_key(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, environ={name: value})
    assert message in str(error.value)
