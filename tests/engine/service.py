"""Building a real service for tests: settings, a rules folder and a GeoIP database on disk."""

from __future__ import annotations

import base64
import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.config import (
    AdminSettings,
    ApiSettings,
    DirectorySettings,
    GeoipSettings,
    HttpSettings,
    LoginSettings,
    MetricsSettings,
    MfaSettings,
    RulesSettings,
    SandboxSettings,
    SecretsSettings,
    Settings,
    SmsSettings,
    StoreSettings,
    TokensSettings,
)
from engine.demo_geoip import write_city_db

API_KEY = "test-api-key-0123456789abcdef"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
SECRET_KEY = base64.b64encode(bytes(range(32))).decode()
SIGNING_KEY = "test-signing-secret-0123456789abcdef-0123456789"
METRICS_TOKEN = "test-metrics-token-0123456789abcdef"
# Cheap argon2id parameters: the tests exercise the logic, bench/ measures the real cost.
FAST_LOGIN = LoginSettings(password_time_cost=1, password_memory_kib=8192, password_parallelism=1)
REPO_RULES = Path(__file__).resolve().parents[2] / "rules"
DOCUMENTATION_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
US_IP, CA_IP, DE_IP, FR_IP, UNKNOWN_IP = "203.0.113.7", "192.0.2.10", "198.51.100.7", "2001:db8:1::7", "192.0.2.200"


def make_settings(
    tmp_path: Path,
    rules: Mapping[str, str] | None = None,
    *,
    isolation: str = "inprocess",
    sandbox: Mapping[str, Any] | None = None,
    rules_settings: Mapping[str, Any] | None = None,
    max_body_bytes: int = 65_536,
    redis_url: str = "",
    mfa: Mapping[str, Any] | None = None,
    sms: Mapping[str, Any] | None = None,
    login: Mapping[str, Any] | None = None,
    environment: str = "development",
) -> Settings:
    """Settings on a fresh rules folder: the repository's example rules, or `rules` ({id: source})."""
    rules_dir = tmp_path / "rules"
    if rules is None:
        shutil.copytree(REPO_RULES, rules_dir)
    else:
        rules_dir.mkdir()
        for rule_id, source in rules.items():
            (rules_dir / f"{rule_id}.py").write_text(source, encoding="utf-8")
    database = tmp_path / "city.mmdb"
    if not database.exists():
        write_city_db(database)
    sandbox_settings = SandboxSettings(isolation=isolation, rule_timeout_ms=100, pipeline_timeout_ms=300,
                                       kill_grace_ms=300)
    return Settings(
        environment=environment,
        base_dir=str(tmp_path),
        directory=DirectorySettings(url=f"sqlite:///{tmp_path / 'mfa.db'}"),
        store=StoreSettings(redis_url=redis_url),
        admin=AdminSettings(token=ADMIN_TOKEN),
        secrets=SecretsSettings(key=SECRET_KEY),
        tokens=TokensSettings(signing_key=SIGNING_KEY),
        login=dataclasses.replace(FAST_LOGIN, **(login or {})),
        mfa=MfaSettings(**(mfa or {})),
        sms=SmsSettings(**(sms or {})),
        rules=RulesSettings(dir=str(rules_dir), **(rules_settings or {})),
        sandbox=dataclasses.replace(sandbox_settings, **(sandbox or {})),
        geoip=GeoipSettings(database=str(database), allow_networks=DOCUMENTATION_RANGES),
        api=ApiSettings(keys=(API_KEY,)),
        http=HttpSettings(max_body_bytes=max_body_bytes),
        metrics=MetricsSettings(token=METRICS_TOKEN),
    )


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin_auth(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metrics_auth(token: str = METRICS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def evaluate_body(ip: str = US_IP, **user: Any) -> dict[str, Any]:
    return {
        "user": {"user_id": "u-1", "username": "alice", "logins_count": 3, "factors": ["otp", "sms"],
                 "known_device_ids": ["dev-1"], "known_countries": ["US", "CA"], **user},
        "context": {"ip": ip, "user_agent": "Mozilla/5.0", "device_id": "dev-1", "client_id": "app-1"},
    }
