"""Password hashing with argon2id, run off the event loop, at the same cost for unknown users.

Outcomes are values: verify answers False for a wrong password, an unknown user (no hash),
a malformed hash and an over-long password, and never raises. Passwords and hashes are
never logged.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

import argon2
from argon2.exceptions import Argon2Error, VerifyMismatchError

# Bounds the cost of one hash: argon2 first hashes the whole password, so a megabyte
# password would cost more than the memory-hard part (a denial of service on login).
MAX_PASSWORD_CHARS = 1024

T = TypeVar("T")


class PasswordHasher:
    """argon2id with the given cost (defaults: OWASP's 3 passes over 64 MiB, 4 lanes).

    Each hash or verify runs on `executor` (the event loop's default executor when None).
    Every hash in flight holds `memory_kib` of memory, so a small dedicated executor bounds
    the memory that a burst of logins can take.
    """

    __slots__ = ("_argon2", "_executor", "_dummy_hash", "_dummy_lock")

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4, *,
                 executor: Executor | None = None) -> None:
        self._argon2 = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                             parallelism=parallelism, type=argon2.Type.ID)
        self._executor = executor
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    async def hash(self, password: str) -> str:
        """The encoded argon2id hash ("$argon2id$v=19$m=...") with a fresh salt.

        Raises ValueError for a password over MAX_PASSWORD_CHARS characters.
        """
        if len(password) > MAX_PASSWORD_CHARS:
            raise ValueError(f"a password may be at most {MAX_PASSWORD_CHARS} characters")
        return await self._off_loop(self._argon2.hash, password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """True only if `password` matches `encoded`. `encoded=None` (no such user) and a
        malformed hash still run one full argon2 verification, then answer False."""
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        return await self._off_loop(self._verify, encoded, password)

    def needs_rehash(self, encoded: str) -> bool:
        """True if `encoded` was made with other parameters (or cannot be read): after a
        successful verify, store a new hash of the password."""
        try:
            return self._argon2.check_needs_rehash(encoded)
        except ValueError:
            return True

    async def _off_loop(self, function: Callable[..., T], *args: object) -> T:
        # Tens of milliseconds of CPU: on the loop it would stall every other request.
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _verify(self, encoded: str | None, password: str) -> bool:
        if encoded is None:
            self._spend_one_verification(password)
            return False
        try:
            return self._argon2.verify(encoded, password)
        except VerifyMismatchError:
            return False
        except (Argon2Error, ValueError):
            # A malformed hash fails while parsing, in microseconds: pay the usual cost.
            self._spend_one_verification(password)
            return False

    def _spend_one_verification(self, password: str) -> None:
        """An unknown user costs what a wrong password costs: no username oracle by timing."""
        try:
            self._argon2.verify(self._dummy(), password)
        except VerifyMismatchError:
            pass

    def _dummy(self) -> str:
        """A hash of a random password with our parameters, made once on first need
        (on a worker thread, so the lock never blocks the event loop)."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(32))
            return self._dummy_hash
