"""A running service for login tests: real HTTP stack, SQLite, a chosen store, a recording SMS
gateway and a clock the test moves. TOTP codes are computed here, independently of the
engine's own code path (RFC 4226 / RFC 6238 with hmac and hashlib)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis

from engine.app import build_store, create_app
from engine.clock import FrozenClock
from engine.config import DirectorySettings, Settings
from engine.passwords import PasswordHasher
from engine.sms.recording import RecordingSmsGateway
from engine.stores.challenges import ChallengeStore
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import DE_IP, SIGNING_KEY, US_IP, admin_auth, auth, make_settings

# A dedicated database, flushed around each test; TEST_LOGIN_REDIS_URL lets parallel runs
# (two checkouts, two developers) keep out of each other's way.
REDIS_URL = os.environ.get("TEST_LOGIN_REDIS_URL", "redis://127.0.0.1:6379/14")
START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def totp_now(secret_base32: str, at: datetime, digits: int = 6) -> str:
    """RFC 6238 TOTP (SHA-1, 30 s steps), written from the RFC, not from the engine."""
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    counter = int(at.timestamp()) // 30
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    binary = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (REQUIRE_REDIS=1) but unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


class LoginService:
    """The service plus the handles a test needs: its clock, its SMS outbox, its HTTP client."""

    def __init__(self, client: ServiceClient, clock: FrozenClock, sms: RecordingSmsGateway) -> None:
        self.client = client
        self.clock = clock
        self.sms = sms

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=headers if headers is not None else auth())

    def create_user(self, username: str = "alice", password: str = "correct horse battery staple",
                    **profile: Any) -> dict[str, Any]:
        response = self.post("/admin/users", {"username": username, "password": password, **profile}, admin_auth())
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def login(self, username: str = "alice", password: str = "correct horse battery staple", ip: str = US_IP,
              device_id: str = "dev-1") -> httpx.Response:
        return self.post("/v1/login", {"username": username, "password": password, "client_id": "app-1",
                                       "context": {"ip": ip, "device_id": device_id, "user_agent": "Firefox"}})

    def first_login_enrolling_otp(self, username: str = "alice") -> dict[str, Any]:
        """A first login always needs a second factor (rules/40-...): enroll the app on the way."""
        return self.first_login_enrolling_otp_with("correct horse battery staple", username)

    def first_login_enrolling_otp_with(self, password: str, username: str = "alice") -> dict[str, Any]:
        login = self.login(username, password).json()
        assert login["status"] == "mfa_enrollment_required", login
        started = self.post("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": login["enrollment_token"]}).json()
        code = totp_now(started["secret"], self.clock.now())
        done = self.post("/v1/mfa/enroll/confirm", {"enrollment_id": started["enrollment_id"], "code": code})
        assert done.status_code == 200, done.text
        self.clock.advance(30)  # the next TOTP code must come from a later time step (replay)
        return {**done.json(), "secret": started["secret"], "factor_id": started["factor_id"]}

    def first_login_enrolling_sms(self, username: str = "alice", phone: str = "+14155550123") -> dict[str, Any]:
        """A first login that enrolls a phone: the user ends with an SMS factor and recovery codes."""
        login = self.login(username).json()
        assert login["status"] == "mfa_enrollment_required", login
        started = self.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": phone,
                                               "enrollment_token": login["enrollment_token"]})
        assert started.status_code == 200, started.text
        done = self.post("/v1/mfa/enroll/confirm", {"enrollment_id": started.json()["enrollment_id"],
                                                    "code": self.sms.last_code_for(phone)})
        assert done.status_code == 200, done.text
        self.sms.messages.clear()
        return {**done.json(), "factor_id": started.json()["factor_id"]}

    def enroll_sms(self, user_token: str, phone: str = "+14155550123") -> tuple[str, dict[str, Any]]:
        started = self.post("/v1/mfa/enroll", {"factor": "sms", "phone_number": phone, "user_token": user_token})
        assert started.status_code == 200, started.text
        code = self.sms.last_code_for(phone)
        confirmed = self.post("/v1/mfa/enroll/confirm", {"enrollment_id": started.json()["enrollment_id"],
                                                         "code": code})
        assert confirmed.status_code == 200, confirmed.text
        return started.json()["factor_id"], confirmed.json()

    def decode(self, token: str) -> dict[str, Any]:
        return jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], audience="mfa-engine-clients",
                          options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})


def flushed_redis_url(store: str) -> str:
    """For "redis", the login tests' database, flushed (skips or fails without Redis); else ""."""
    if store != "redis":
        return ""
    redis_or_skip()
    flush_redis()
    return REDIS_URL


@dataclasses.dataclass(frozen=True)
class Running:
    client: ServiceClient
    clock: FrozenClock
    sms: RecordingSmsGateway
    store: ChallengeStore


@contextlib.contextmanager
def running(built: Settings, loop: LoopThread, *, passwords: PasswordHasher | None = None,
            wrap_store: Callable[[ChallengeStore], ChallengeStore] | None = None) -> Iterator[Running]:
    """The app of `built` served on `loop`, with a frozen clock at START, a recording SMS gateway
    and the challenge store it uses (`wrap_store` is handed the real one and returns that); the
    Redis database is flushed again afterwards."""
    clock, sms = FrozenClock(START), RecordingSmsGateway()
    challenges = build_store(built)
    if wrap_store is not None:
        challenges = wrap_store(challenges)
    try:
        with ServiceClient(create_app(built, clock=clock, gateway=sms, passwords=passwords, store=challenges),
                           loop) as client:
            yield Running(client, clock, sms, challenges)
    finally:
        if built.store.redis_url:
            flush_redis()


def start_service(tmp_path: Path, loop: LoopThread, store: str, *, passwords: PasswordHasher | None = None,
                  wrap_store: Callable[[ChallengeStore], ChallengeStore] | None = None,
                  directory_url: str | None = None, **settings: Any) -> Iterator[LoginService]:
    """`passwords` replaces the argon2 hasher built from the settings (e.g. one that counts);
    `wrap_store` is handed the real challenge store and returns the one the service uses;
    `directory_url` replaces the SQLite file in tmp_path (a PostgreSQL database: tests/postgres_db.py)."""
    built = make_settings(tmp_path, redis_url=flushed_redis_url(store), **settings)
    if directory_url is not None:
        built = dataclasses.replace(built, directory=DirectorySettings(url=directory_url))
    with running(built, loop, passwords=passwords, wrap_store=wrap_store) as service:
        yield LoginService(service.client, service.clock, service.sms)


__all__ = ["DE_IP", "US_IP", "LoginService", "start_service", "totp_now"]
