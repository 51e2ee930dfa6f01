"""Composition root: builds stores, gateways, geo reader, sandbox executor and pipeline from Settings.

The only module that names concrete implementations; nothing imports it but the CLI and
tests. `create_app` compiles the rule set before returning, so a broken rule set stops
startup instead of surfacing on the first login.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from engine.audit_trail import AuditTrail
from engine.clock import Clock, SystemClock
from engine.config import ConfigError, Settings
from engine.crypto import DEV_KEY_FILE, Keyring
from engine.decisions import DecisionRecorder
from engine.enrollment import Enrollment
from engine.errors import EngineError
from engine.fairness import FairShares
from engine.flow import Flow
from engine.geo import GeoLocator, open_locator
from engine.http.bodies import BodyDeadline
from engine.http.errors import ErrorBoundary, handle_engine_error, handle_http_exception
from engine.http.request_log import RequestLog
from engine.http.routes import ROUTES
from engine.pages.routes import PAGE_ROUTES, build_pages
from engine.metrics import Metrics
from engine.passwords import PasswordHasher
from engine.pipeline import Executor, Pipeline
from engine.rule_follower import RuleFollower
from engine.rule_host import host_for
from engine.rule_ops import RuleOps, load_folder
from engine.rule_settings import SettingsVault
from engine import rule_watch, tasks
from engine.services import Services
from engine.sessions import Sessions
from engine.sms.console import ConsoleGateway
from engine.sms.gateway import SmsGateway
from engine.sms.sender import SmsSender
from engine.sms.twilio import TwilioGateway
from engine.sms.webhook import WebhookGateway
from engine.stores.challenges import ChallengeStore
from engine.stores.decisions import DecisionLog
from engine.stores.directory import UserDirectory
from engine.stores.memory import MemoryChallengeStore
from engine.stores.memory_decisions import MemoryDecisionLog
from engine.stores.redis_decisions import RedisDecisionLog
from engine.stores.redis_rule_sync import RedisRuleSync
from engine.stores.redis_store import RedisChallengeStore
from engine.stores.rule_sync import LocalRuleSync, RuleSync
from engine.stores import postgres, sqlite
from engine.stores.migrations import Migrated
from engine.stores.postgres import PostgresDirectory
from engine.stores.sqlite import SqliteDirectory
from engine.tokens import TokenIssuer
from sandbox.affinity import release_thread
from sandbox.inprocess import InProcessRunner
from sandbox.pool import WorkerPool

log = logging.getLogger("engine.app")


def build_executor(settings: Settings, metrics: Metrics) -> Executor:
    limits = settings.sandbox.limits()
    host, host_path = host_for(settings.environment)
    if settings.sandbox.isolation == "inprocess":
        return InProcessRunner(host, limits)
    return WorkerPool(host_path, limits, size=settings.sandbox.workers,
                      queue_timeout_ms=settings.sandbox.queue_timeout_ms, cpu_affinity=settings.sandbox.cpu_affinity,
                      on_kill=metrics.worker_killed, on_queue_wait=metrics.observe_queue_wait)


def build_geo(settings: Settings) -> GeoLocator:
    database = settings.geoip.database
    allow = tuple(ipaddress.ip_network(network) for network in settings.geoip.allow_networks)
    return open_locator(str(settings.path(database)) if database else None, allow_networks=allow)


def build_keyring(settings: Settings) -> Keyring:
    try:
        return Keyring.configured(settings.secrets.key, settings.path(DEV_KEY_FILE), settings.secrets.previous_keys)
    except ValueError as exc:  # the message names the setting, never its value
        raise ConfigError(str(exc)) from None


def build_directory(settings: Settings, keyring: Keyring) -> UserDirectory:
    """The configured directory, migrated. Raises SchemaTooNew; DirectoryUnavailable (PostgreSQL)."""
    directory = settings.directory
    if directory.url.startswith(postgres.SCHEMES):
        return PostgresDirectory(directory.url, keyring, max_connections=directory.max_connections,
                                 timeout_seconds=directory.timeout_ms / 1000)
    # release_thread: the writer thread starts from the loop thread, which sandbox.cpu_affinity may pin.
    return SqliteDirectory(_sqlite_path(settings), keyring, on_writer_start=release_thread)


def migrate_directory(settings: Settings) -> tuple[str, Migrated]:
    """`mfa-engine db migrate`: the configured directory's backend and what its migrations did."""
    directory = settings.directory
    if directory.url.startswith(postgres.SCHEMES):
        return PostgresDirectory.backend, postgres.migrate(directory.url, directory.timeout_ms / 1000)
    return SqliteDirectory.backend, sqlite.migrate(_sqlite_path(settings))


def _sqlite_path(settings: Settings) -> str:
    location = settings.directory.url.removeprefix("sqlite:///")
    if location == ":memory:":
        return location
    path = settings.path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def build_store(settings: Settings) -> ChallengeStore:
    if settings.store.redis_url:
        return RedisChallengeStore(settings.store.redis_url, timeout_ms=settings.store.timeout_ms)
    return MemoryChallengeStore()


def build_decision_log(settings: Settings) -> DecisionLog:
    decisions = settings.decisions
    if settings.store.redis_url:
        return RedisDecisionLog(settings.store.redis_url, ttl_seconds=decisions.ttl_seconds,
                                timeout_ms=settings.store.timeout_ms)
    return MemoryDecisionLog(ttl_seconds=decisions.ttl_seconds, max_records=decisions.max_in_memory)


def build_rule_sync(settings: Settings) -> RuleSync:
    if settings.store.redis_url:
        return RedisRuleSync(settings.store.redis_url, timeout_ms=settings.store.timeout_ms)
    return LocalRuleSync()


def build_gateway(settings: Settings) -> SmsGateway:
    sms = settings.sms
    if sms.gateway == "twilio":
        return TwilioGateway(sms.twilio.account_sid, sms.twilio.auth_token, sms.twilio.from_number,
                             sms.twilio.base_url, sms.twilio.timeout_ms)
    if sms.gateway == "webhook":
        return WebhookGateway(sms.webhook.url, sms.webhook.secret)
    return ConsoleGateway(json_lines=settings.logging.format == "json")


def build_tokens(settings: Settings) -> TokenIssuer:
    tokens = settings.tokens
    if not tokens.signing_key:
        return TokenIssuer.development(tokens.issuer, tokens.audience, tokens.ttl_seconds)
    def read(key: str) -> str:
        return settings.path(key.removeprefix("file:")).read_text(encoding="utf-8") if key.startswith("file:") else key

    try:
        return TokenIssuer(tokens.issuer, tokens.audience, tokens.ttl_seconds, tokens.algorithm,
                           read(tokens.signing_key), previous_keys=[read(key) for key in tokens.previous_signing_keys])
    except ValueError as exc:  # the message names the setting, never its value
        raise ConfigError(str(exc)) from None


def build_passwords(settings: Settings) -> PasswordHasher:
    login = settings.login
    # argon2 runs its own `parallelism` lanes: a pool of CPUs / lanes threads keeps a burst
    # of logins from starving the event loop and bounds memory to that many hashes at once
    # (bench/passwords.py: a 52 ms loop stall on the shared executor, 10 ms on this one).
    threads = max(1, (os.cpu_count() or 1) // login.password_parallelism)
    # release_thread: its threads start from the loop thread, which sandbox.cpu_affinity may pin.
    executor = ThreadPoolExecutor(threads, thread_name_prefix="argon2", initializer=release_thread)
    return PasswordHasher(login.password_time_cost, login.password_memory_kib, login.password_parallelism,
                          executor=executor)


async def close_in_time(timeout_seconds: float,
                        stages: Sequence[Mapping[str, Callable[[], Awaitable[None]]]]) -> None:
    """Close the components stage by stage, the components of one stage together, all within one
    deadline: a backend that hangs or fails on close (a frozen Redis) is logged and skipped, so a
    SIGTERM always ends the process, and it cannot keep the others of its stage open."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds

    async def close_one(name: str, close: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                await close()
        except TimeoutError:
            log.warning("shutdown_close_timeout component=%s", name)
        except Exception as exc:
            log.warning("shutdown_close_failed component=%s type=%s", name, type(exc).__name__)

    for stage in stages:
        await asyncio.gather(*(close_one(name, close) for name, close in stage.items()))


@dataclass(frozen=True, slots=True)
class Overrides:
    """Components tests replace at the process edge (the SMS provider, the clock) or share."""

    geo: GeoLocator | None = None
    executor: Executor | None = None
    clock: Clock | None = None
    gateway: SmsGateway | None = None
    store: ChallengeStore | None = None
    passwords: PasswordHasher | None = None
    decisions: DecisionLog | None = None


def create_app(settings: Settings, **overrides: object) -> Starlette:
    """Raises engine.pipeline.RuleSetRejected for a rule set that does not compile."""
    given = Overrides(**overrides)  # type: ignore[arg-type]
    keyring = build_keyring(settings)
    vault = SettingsVault(keyring)  # rule settings are sealed at rest like TOTP secrets
    snapshot = load_folder(settings.path(settings.rules.dir), settings, vault)
    metrics = Metrics.from_environment()
    request_log = RequestLog()
    executor = given.executor or build_executor(settings, metrics)
    geo = given.geo or build_geo(settings)
    clock = given.clock or SystemClock()
    directory = build_directory(settings, keyring)
    store = given.store or build_store(settings)
    gateway = given.gateway or build_gateway(settings)
    tokens = build_tokens(settings)
    passwords = given.passwords or build_passwords(settings)
    pipeline = Pipeline(snapshot.rule_set, executor, FairShares(settings.sandbox.max_concurrent_per_user,
                                                       settings.sandbox.max_concurrent_per_client,
                                                       settings.sandbox.max_concurrent_per_address),
                        on_trace=metrics.observe_trace)
    audit = AuditTrail(directory, clock, settings.audit)
    sessions = Sessions(tokens, directory, settings.tokens.ttl_seconds, audit)
    decision_log = given.decisions or build_decision_log(settings)
    # The memory log answers in this process, never waiting: only a log doing I/O is bounded.
    in_process = isinstance(decision_log, MemoryDecisionLog)
    decisions = DecisionRecorder(decision_log, timeout_ms=None if in_process else settings.store.timeout_ms)
    sms_sender = SmsSender(gateway, store, keyring, settings.sms, settings.mfa.issuer_name, metrics)
    flow = Flow(settings, pipeline, geo, clock, directory=directory, store=store, passwords=passwords,
                keyring=keyring, sessions=sessions, sms_sender=sms_sender, decisions=decisions, metrics=metrics,
                audit=audit)
    enrollment = Enrollment(flow, directory, store, keyring, tokens, sessions, sms_sender, settings.mfa, clock, audit)
    rule_sync = build_rule_sync(settings)
    rules = RuleOps(settings, pipeline, executor, geo, clock, snapshot, rule_sync, vault, audit=audit)
    rules.record_startup()
    follower = RuleFollower(rules)
    services = Services(settings, flow, enrollment, pipeline, executor, geo, directory, store, passwords, tokens,
                        keyring, gateway, sms_sender, clock, tuple(key.encode() for key in settings.api.keys),
                        decisions=decisions, rules=rules, audit=audit)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        request_log.start()
        metrics.start()
        await executor.start()
        await follower.start()  # the shared rule set (Redis) wins over the folder before serving
        background = [asyncio.create_task(audit.run_expiry())]
        if settings.rules.watch:
            background.append(asyncio.create_task(rule_watch.reload_on_change(rules)))
        try:
            yield
        finally:
            await tasks.stop(*background)
            await close_in_time(settings.http.shutdown_timeout_seconds, (
                {"sandbox": executor.close},  # first: processes of ours that must not outlive the service
                {"rule_follower": follower.close},  # before the rule store it reads
                {"rule_sync": rule_sync.close, "sms_gateway": gateway.close, "store": store.close,
                 "decisions": decision_log.close, "directory": directory.close}))
            geo.close()
            metrics.close()
            request_log.close()

    pages = build_pages(settings, services)  # before serving: branding that cannot be served stops startup
    app = Starlette(
        routes=[*ROUTES, *PAGE_ROUTES],
        lifespan=lifespan,
        # ErrorBoundary is outermost: it sees whatever the exception handlers did not render.
        middleware=[Middleware(ErrorBoundary, request_log=request_log),
                    Middleware(BodyDeadline, timeout_ms=settings.http.body_timeout_ms)],
        exception_handlers={EngineError: handle_engine_error, HTTPException: handle_http_exception},
    )
    app.state.services = services
    app.state.pages = pages
    app.state.metrics = metrics
    app.state.request_log = request_log
    return app
