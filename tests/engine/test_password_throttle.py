"""Password guessing is limited per username and per IP, and none of the three bypasses works.

Issue 6, item 3: (a) a username spelled another way that the directory still matches
(full-width, mathematical bold, Roman numerals) must not get a fresh budget; (b) concurrent
guesses must not all be checked before any is counted; (c) one address written another way
(IPv4-mapped IPv6) or the next address of the same IPv6 /64 must not get a fresh budget.
Over HTTP on both stores, and the key functions themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import throttle
from engine.config import LoginSettings, SmsSettings
from engine.passwords import PasswordHasher
from engine.stores import directory
from tests.conftest import LoopThread
from tests.engine.login_harness import LoginService, start_service
from tests.engine.service import FAST_LOGIN, US_IP, auth

PASSWORD = "correct horse battery staple"


class CountingPasswordHasher(PasswordHasher):
    """The real argon2id hasher, counting the verifications that reach it."""

    def __init__(self) -> None:
        super().__init__(FAST_LOGIN.password_time_cost, FAST_LOGIN.password_memory_kib,
                         FAST_LOGIN.password_parallelism)
        self.verifications = 0

    async def verify(self, encoded: str | None, password: str) -> bool:
        self.verifications += 1
        return await super().verify(encoded, password)


# -- the keys ------------------------------------------------------------------------------

# Each spelling logs in as the account on its right (the directory folds it, NFKC + casefold).
SPELLINGS = [
    ("ａｌｉｃｅ", "alice"),  # full-width
    ("ＡＬＩＣＥ", "alice"),  # full-width capitals
    ("𝐚𝐥𝐢𝐜𝐞", "alice"),  # mathematical bold
    ("𝔞𝔩𝔦𝔠𝔢", "alice"),  # mathematical fraktur
    ("bobⅱ", "bobii"),  # small Roman numeral two
    ("BOBⅡ", "bobii"),  # Roman numeral two
    ("ﬁona", "fiona"),  # the fi ligature
]


@pytest.mark.parametrize(("spelling", "account"), SPELLINGS)
def test_every_spelling_the_directory_matches_shares_the_accounts_throttle_key(spelling: str, account: str) -> None:
    assert directory.username_key(spelling) == directory.username_key(account)
    assert throttle.login_failures(LoginSettings(), spelling, None)[0].name == \
        throttle.login_failures(LoginSettings(), account, None)[0].name


ONE_ADDRESS = [
    ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped IPv6
    ("::ffff:cb00:7107", "203.0.113.7"),  # the same, in hex
    ("2001:db8:1::1", "2001:db8:1::/64"),
    ("2001:db8:1:0:ffff:ffff:ffff:ffff", "2001:db8:1::/64"),  # the last address of the same /64
    ("2001:0db8:0001:0000:0000:0000:0000:0002", "2001:db8:1::/64"),
]


@pytest.mark.parametrize(("address", "key"), ONE_ADDRESS)
def test_every_ip_counter_counts_the_normalised_address(address: str, key: str) -> None:
    assert throttle.ip_key(address) == key
    login = {c.name for c in throttle.login_failures(LoginSettings(), "alice", address)}
    sms = {c.name for c in throttle.sms_sends(SmsSettings(), "u-1", "+14155550123", address, "US")}
    assert f"login:ip:{key}" in login
    assert f"sms:ip:{key}" in sms


def test_the_next_ipv6_64_and_another_ipv4_address_are_other_budgets() -> None:
    assert throttle.ip_key("2001:db8:2::1") != throttle.ip_key("2001:db8:1::1")
    assert throttle.ip_key("203.0.113.8") != throttle.ip_key("203.0.113.7")


def test_text_that_is_no_address_shares_one_budget() -> None:
    assert throttle.ip_key("not-an-ip") == throttle.ip_key("also not one")


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def service(store: str, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, store, login={"failures_per_username": 3})


def login(service: LoginService, username: str, password: str = PASSWORD, ip: str = US_IP) -> int:
    response = service.post("/v1/login", {"username": username, "password": password, "client_id": "app-1",
                                          "context": {"ip": ip, "device_id": "dev-1"}})
    return response.status_code


def test_guesses_under_other_spellings_use_up_the_accounts_budget(service: LoginService) -> None:
    service.create_user()
    assert [login(service, name, "wrong") for name in ("ａｌｉｃｅ", "𝐚𝐥𝐢𝐜𝐞", "ＡＬＩＣＥ")] == [401, 401, 401]
    assert login(service, "alice") == 429


def test_a_locked_account_stays_locked_under_another_spelling(service: LoginService) -> None:
    service.create_user()
    assert [login(service, "alice", "wrong") for _ in range(3)] == [401, 401, 401]
    assert login(service, "𝐚𝐥𝐢𝐜𝐞") == 429
    assert login(service, "ａｌｉｃｅ") == 429


def test_roman_numerals_in_a_username_share_its_budget(service: LoginService) -> None:
    service.create_user("bobii")
    assert [login(service, name, "wrong") for name in ("bobⅱ", "BOBⅡ", "bobⅰⅰ")] == [401, 401, 401]
    assert login(service, "bobii") == 429


def test_a_success_still_clears_the_usernames_failures(service: LoginService) -> None:
    service.create_user()
    assert [login(service, "alice", "wrong") for _ in range(2)] == [401, 401]
    assert login(service, "alice") == 200
    assert [login(service, "alice", "wrong") for _ in range(3)] == [401, 401, 401]
    assert login(service, "alice", "wrong") == 429


@pytest.fixture
def counted(store: str, tmp_path: Path, loop_thread: LoopThread
            ) -> Iterator[tuple[LoginService, CountingPasswordHasher]]:
    hasher = CountingPasswordHasher()
    for service in start_service(tmp_path, loop_thread, store, passwords=hasher,
                                 login={"failures_per_username": 10, "failures_per_ip": 10}):
        yield service, hasher


def concurrent_logins(service: LoginService, usernames: list[str], ip: str = US_IP) -> list[int]:
    bodies = [{"username": name, "password": "wrong", "client_id": "app-1", "context": {"ip": ip}}
              for name in usernames]
    return sorted(r.status_code for r in service.client.post_concurrently("/v1/login", bodies, auth()))


def test_thirty_concurrent_guesses_at_one_username_check_at_most_ten_passwords(
    counted: tuple[LoginService, CountingPasswordHasher],
) -> None:
    service, hasher = counted
    service.create_user()
    statuses = concurrent_logins(service, ["alice"] * 30)
    assert statuses == [401] * 10 + [429] * 20
    assert hasher.verifications == 10


def test_thirty_concurrent_guesses_from_one_address_check_at_most_ten_passwords(
    counted: tuple[LoginService, CountingPasswordHasher],
) -> None:
    service, hasher = counted
    statuses = concurrent_logins(service, [f"user{n}" for n in range(30)])
    assert statuses == [401] * 10 + [429] * 20
    assert hasher.verifications == 10


@pytest.fixture
def per_ip(store: str, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, store, login={"failures_per_ip": 3})


def test_an_ipv4_address_written_as_mapped_ipv6_shares_its_budget(per_ip: LoginService) -> None:
    tries = [login(per_ip, f"user{n}", "wrong", ip) for n, ip in
             enumerate(["203.0.113.7", "::ffff:203.0.113.7", "::ffff:cb00:7107", "203.0.113.7"])]
    assert tries == [401, 401, 401, 429]


def test_addresses_of_one_ipv6_64_share_a_budget_and_the_next_64_has_its_own(per_ip: LoginService) -> None:
    tries = [login(per_ip, f"user{n}", "wrong", ip) for n, ip in
             enumerate(["2001:db8:1::1", "2001:db8:1::2", "2001:db8:1:0:abcd::9", "2001:db8:1::ffff"])]
    assert tries == [401, 401, 401, 429]
    assert login(per_ip, "user9", "wrong", "2001:db8:2::1") == 401


def test_successful_logins_do_not_use_up_the_addresses_budget(per_ip: LoginService) -> None:
    per_ip.create_user()
    assert [login(per_ip, "alice") for _ in range(5)] == [200] * 5
    assert [login(per_ip, f"user{n}", "wrong") for n in range(4)] == [401, 401, 401, 429]


@pytest.fixture
def sms_per_ip(store: str, tmp_path: Path, loop_thread: LoopThread) -> Iterator[LoginService]:
    yield from start_service(tmp_path, loop_thread, store, sms={"sends_per_ip_per_hour": 3})


def test_sms_sends_from_one_address_written_other_ways_share_its_budget(sms_per_ip: LoginService) -> None:
    service = sms_per_ip
    service.create_user()
    phone = "+14155550123"
    first = service.first_login_enrolling_sms(phone=phone)  # the enrollment code: one send from US_IP
    statuses = []
    for n, ip in enumerate(["::ffff:203.0.113.7", "::ffff:cb00:7107", "203.0.113.7"]):
        challenge = service.post("/v1/login", {"username": "alice", "password": PASSWORD, "client_id": "app-1",
                                               "context": {"ip": US_IP, "device_id": f"new-{n}"}}).json()
        sent = service.post("/v1/mfa/challenge", {"challenge_id": challenge["challenge_id"],
                                                  "factor_id": first["factor_id"], "context": {"ip": ip}})
        statuses.append(sent.status_code)
    assert statuses == [200, 200, 429]
