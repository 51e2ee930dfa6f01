"""A synchronous httpx client on the ASGI app, with the app's lifespan running around it.

The app lives on the shared event-loop thread (tests/conftest.py), as it would under
uvicorn: worker pools and their pipe readers belong to that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.conftest import LoopThread
from tests.engine import api_conformance


class ServiceClient:
    def __init__(self, app: Starlette, loop: LoopThread) -> None:
        self.app = app
        self._loop = loop
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engine.test")
        self._lifespan: contextlib.AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)

    def __enter__(self) -> ServiceClient:
        self._loop.call(self._lifespan.__aenter__())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call(self._client.aclose())
        self._loop.call(self._lifespan.__aexit__(None, None, None))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        content = kwargs.get("content")
        if content is not None and not isinstance(content, bytes | str):
            kwargs["content"] = _async_chunks(content)
        response = self._loop.call(self._client.request(method, url, **kwargs))
        # Every answer of every test is read against the API document (tests/engine/api_conformance.py).
        api_conformance.document().check(method, response.request.url.path, response)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def post_concurrently(self, url: str, bodies: list[Any], headers: dict[str, str]) -> list[httpx.Response]:
        """Send every body at once on the app's loop: races are real, not interleaved by the test."""
        async def send_all() -> list[httpx.Response]:
            return list(await asyncio.gather(*(self._client.post(url, json=body, headers=headers)
                                               for body in bodies)))
        return self._loop.call(send_all())


async def _async_chunks(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@contextlib.contextmanager
def serve(app: Starlette, loop: LoopThread) -> Iterator[ServiceClient]:
    with ServiceClient(app, loop) as client:
        yield client
