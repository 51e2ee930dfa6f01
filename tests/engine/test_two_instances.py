"""Two service processes on one Redis and one PostgreSQL directory, as two machines behind a load
balancer would run: whatever one instance starts or counts, the other sees.

Each step is done through one instance and checked through the other: a challenge, its SMS code
and its verify; the attempt count of a challenge; the lockout streak; the SMS send limit; TOTP
replay protection; a factor enrolled through one, used through the other.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.engine.live_process import RawConnection, ServerProcess, write_config
from tests.engine.login_harness import REDIS_URL, flush_redis, redis_or_skip, totp_now
from tests.engine.service import ADMIN_TOKEN, API_KEY
from tests.engine.sms.test_gateways import LocalProvider, Seen
from tests.postgres_db import delete_users, postgres_database  # noqa: F401 - the fixture

ALWAYS_MFA = '''"""Every login needs a second factor."""


def rule(user, context):
    context.multifactor.enable()
'''
PASSWORD = "correct horse battery staple"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PHONE = "+14155550123"
CONTEXT = {"ip": "203.0.113.7", "device_id": "dev-1"}


class Instance:
    """One running engine and a keep-alive connection to it."""

    def __init__(self, name: str, server: ServerProcess) -> None:
        self.name = name
        self.server = server
        self.connection = RawConnection(server.port)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] = AUTH) -> tuple[int, dict[str, Any]]:
        response = self.connection.request("POST", path, headers, body)
        return response.status, response.json()

    def login(self, username: str) -> dict[str, Any]:
        status, body = self.post("/v1/login", {"username": username, "password": PASSWORD, "client_id": "app-1",
                                               "context": CONTEXT})
        assert status == 200, (self.name, body)
        return body

    def verify(self, challenge_id: str, factor_id: str, code: str) -> tuple[int, dict[str, Any]]:
        return self.post("/v1/mfa/verify", {"challenge_id": challenge_id, "factor_id": factor_id, "code": code,
                                            "client_id": "app-1"})


@pytest.fixture
def sms_provider() -> Iterator[LocalProvider]:
    """The SMS gateway both instances post to (sms.gateway: webhook): the codes the test types."""
    provider = LocalProvider(lambda seen: (200, b"{}"))
    yield provider
    provider.stop()


@pytest.fixture
def shared_redis() -> Iterator[None]:
    """The login tests' database (TEST_LOGIN_REDIS_URL, flushed around each test): parallel runs set
    their own, so a rule set another run's engines published there is never adopted here."""
    redis_or_skip()
    flush_redis()
    yield
    flush_redis()


@pytest.fixture
def instances(tmp_path: Path, shared_redis: None, postgres_database: str,  # noqa: F811
              sms_provider: LocalProvider) -> Iterator[tuple[Instance, Instance]]:
    if _migrated(postgres_database):
        delete_users(postgres_database)
    config = write_config(
        tmp_path, {"10-always-mfa": ALWAYS_MFA}, store={"redis_url": REDIS_URL},
        directory={"url": postgres_database},
        mfa={"max_attempts": 3, "lockout_threshold": 4, "lockout_seconds": 600},
        sms={"gateway": "webhook", "webhook": {"url": sms_provider.url, "secret": "webhook-secret-0123456789"},
             "resend_cooldown_seconds": 0, "sends_per_user_per_hour": 2})
    servers = [ServerProcess(tmp_path, config), ServerProcess(tmp_path, config)]
    opened: list[Instance] = []
    try:
        for server in servers:
            server.wait_ready(timeout=30)
        opened = [Instance("A", servers[0]), Instance("B", servers[1])]
        yield opened[0], opened[1]
    finally:
        for instance in opened:
            instance.connection.close()
        for server in servers:
            server.stop()
        if _migrated(postgres_database):
            delete_users(postgres_database)


def _migrated(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT to_regclass('public.users') IS NOT NULL").fetchone()
        return row is not None and bool(row[0])


def last_code(provider: LocalProvider, phone: str) -> str:
    sent: list[Seen] = [seen for seen in provider.seen if json.loads(seen.body)["to"] == phone]
    assert sent, "no SMS was sent"
    return str(json.loads(sent[-1].body)["code"])


def create_user(instance: Instance, username: str) -> str:
    status, user = instance.post("/admin/users", {"username": username, "password": PASSWORD}, ADMIN)
    assert status == 201, user
    return str(user["user_id"])


def add_factor(instance: Instance, user_id: str, body: dict[str, Any]) -> str:
    status, factor = instance.post(f"/admin/users/{user_id}/factors", body, ADMIN)
    assert status == 201, factor
    return str(factor["id"])


def factor_of(login: dict[str, Any], kind: str) -> str:
    return str(next(factor["id"] for factor in login["factors"] if factor["type"] == kind))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_what_one_instance_starts_or_counts_the_other_sees(instances: tuple[Instance, Instance],
                                                           sms_provider: LocalProvider) -> None:
    a, b = instances

    # A challenge made by A is sent by B and verified on A: the SMS code's hash is in Redis.
    alice = create_user(a, "alice")
    add_factor(b, alice, {"type": "sms", "phone_number": PHONE})
    login = a.login("alice")
    assert login["status"] == "mfa_required", login
    status, sent = b.post("/v1/mfa/challenge", {"challenge_id": login["challenge_id"],
                                                "factor_id": factor_of(login, "sms")})
    assert status == 200 and sent["sent"] is True, sent
    status, done = a.verify(login["challenge_id"], factor_of(login, "sms"), last_code(sms_provider, PHONE))
    assert status == 200 and done["status"] == "authenticated", done

    # The SMS limit (2 an hour for the user) counts the sends of both instances.
    again = b.login("alice")
    status, _ = a.post("/v1/mfa/challenge", {"challenge_id": again["challenge_id"],
                                             "factor_id": factor_of(again, "sms")})
    assert status == 200
    status, refused = b.post("/v1/mfa/challenge", {"challenge_id": again["challenge_id"],
                                                   "factor_id": factor_of(again, "sms")})
    assert status == 429, refused

    # A challenge's attempts (mfa.max_attempts: 3) count on both: the right code comes too late.
    secret = base64.b32encode(secrets.token_bytes(20)).decode()
    bob = create_user(b, "bob")
    otp = add_factor(a, bob, {"type": "otp", "secret": secret})
    login = b.login("bob")
    for instance in (a, b, a):
        assert instance.verify(login["challenge_id"], otp, "000000")[0] == 401
    assert b.verify(login["challenge_id"], otp, totp_now(secret, datetime.now(UTC)))[0] == 401

    # The lockout streak (mfa.lockout_threshold: 4) too: three failures on A and B, a fourth on
    # B's challenge, and erin is locked on A.
    erin = create_user(a, "erin")
    erin_otp = add_factor(b, erin, {"type": "otp", "secret": secret})
    login = a.login("erin")
    for instance in (a, b, a):
        assert instance.verify(login["challenge_id"], erin_otp, "000000")[0] == 401
    login = b.login("erin")
    assert b.verify(login["challenge_id"], erin_otp, "000000")[0] in (401, 429)
    status, locked = a.post("/v1/login", {"username": "erin", "password": PASSWORD, "client_id": "app-1",
                                          "context": CONTEXT})
    assert status == 429 and locked["error"] == "too_many_attempts", locked

    # TOTP replay: a code accepted on A is refused on B, in its own time step and challenge.
    carol = create_user(a, "carol")
    carol_secret = base64.b32encode(secrets.token_bytes(20)).decode()
    carol_otp = add_factor(b, carol, {"type": "otp", "secret": carol_secret})
    code = totp_now(carol_secret, datetime.now(UTC))
    first, second = a.login("carol"), b.login("carol")
    assert a.verify(first["challenge_id"], carol_otp, code)[0] == 200
    assert b.verify(second["challenge_id"], carol_otp, code)[0] == 401

    # A factor enrolled through A (start and confirm) is used to log in through B.
    create_user(b, "dave")
    first_login = a.login("dave")
    assert first_login["status"] == "mfa_enrollment_required", first_login
    status, started = a.post("/v1/mfa/enroll", {"factor": "otp", "enrollment_token": first_login["enrollment_token"]})
    assert status == 200, started
    status, confirmed = b.post("/v1/mfa/enroll/confirm", {
        "enrollment_id": started["enrollment_id"],
        "code": totp_now(started["secret"], datetime.now(UTC) - timedelta(seconds=30))})
    assert status == 200, confirmed
    login = b.login("dave")
    assert login["status"] == "mfa_required", login
    status, done = b.verify(login["challenge_id"], started["factor_id"],
                            totp_now(started["secret"], datetime.now(UTC) + timedelta(seconds=30)))
    assert status == 200 and done["status"] == "authenticated", done
