"""Composition root: builds stores, geo reader, sandbox executor and pipeline from Settings.

The only module that names concrete implementations; nothing imports it but the CLI and
tests. `create_app` compiles the rule set before returning, so a broken rule set stops
startup instead of surfacing on the first login.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from engine.clock import Clock, SystemClock
from engine.config import Settings
from engine.errors import EngineError
from engine.flow import Flow
from engine.geo import GeoLocator, open_locator
from engine.http.errors import handle_engine_error, handle_http_exception, handle_unexpected
from engine.http.routes import ROUTES
from engine.pipeline import Executor, Pipeline, load_rule_set
from engine.rule_host import HOST, HOST_PATH
from engine.services import Services
from sandbox.inprocess import InProcessRunner
from sandbox.pool import WorkerPool


def build_executor(settings: Settings) -> Executor:
    limits = settings.sandbox.limits()
    if settings.sandbox.isolation == "inprocess":
        return InProcessRunner(HOST, limits)
    return WorkerPool(HOST_PATH, limits, size=settings.sandbox.workers,
                      queue_timeout_ms=settings.sandbox.queue_timeout_ms)


def build_geo(settings: Settings) -> GeoLocator:
    database = settings.geoip.database
    allow = tuple(ipaddress.ip_network(network) for network in settings.geoip.allow_networks)
    return open_locator(str(settings.path(database)) if database else None, allow_networks=allow)


def create_app(
    settings: Settings, *, geo: GeoLocator | None = None, executor: Executor | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """Raises engine.pipeline.RuleSetRejected for a rule set that does not compile."""
    rule_set = load_rule_set(settings.path(settings.rules.dir), settings.rules, settings.sandbox.limits())
    executor = executor or build_executor(settings)
    geo = geo or build_geo(settings)
    pipeline = Pipeline(rule_set, executor)
    flow = Flow(pipeline, geo, clock or SystemClock(), settings.mfa)
    services = Services(settings, flow, pipeline, executor, geo, tuple(key.encode() for key in settings.api.keys))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await executor.start()
        try:
            yield
        finally:
            await executor.close()
            geo.close()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={EngineError: handle_engine_error, HTTPException: handle_http_exception,
                            Exception: handle_unexpected},
    )
    app.state.services = services
    return app
