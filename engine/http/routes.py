"""The route table: every endpoint of the service, in one place."""

from __future__ import annotations

from starlette.routing import Route

from engine.http import endpoints

ROUTES = [
    Route("/v1/evaluate", endpoints.evaluate, methods=["POST"], name="evaluate"),
    Route("/healthz", endpoints.healthz, methods=["GET"], name="healthz"),
]
