"""GET /metrics: the Prometheus exposition (engine/metrics.py), behind its own bearer token.

`metrics.token` empty (the default): the endpoint does not exist (404, as any unknown path).
Otherwise only `Authorization: Bearer <metrics.token>` reads it (401 else): the counts tell
how many logins fail and which rules run, which is not for everyone. Neither the API keys
nor the admin token open it, so a scraper holds no credential that could change anything.
"""

from __future__ import annotations

import asyncio
import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import NotFound, Unauthorized
from engine.http.auth import presented_bearer
from engine.metrics import Metrics
from engine.services import Services


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.settings.metrics.token
    if not token:
        raise NotFound("no such endpoint")
    presented = presented_bearer(request)
    if not hmac.compare_digest(presented or b"", token.encode()) or presented is None:
        raise Unauthorized("a valid metrics token is required (Authorization: Bearer <metrics.token>)")
    collected: Metrics = request.app.state.metrics
    collected.flush()  # on the loop, which owns the batches; the files are read on a thread
    return Response(await asyncio.to_thread(collected.exposition), media_type=CONTENT_TYPE_LATEST)
