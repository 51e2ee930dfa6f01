"""The server never takes the client's address from X-Forwarded-For on its own: uvicorn's
proxy_headers (on by default, trusting 127.0.0.1 or $FORWARDED_ALLOW_IPS) would let a client behind
a same-host proxy choose the address per-IP limits and GeoIP see. Only the hosted pages read the
header, from http.trusted_proxies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.engine.live_process import REPO, free_port

PROBE = textwrap.dedent("""
    import sys
    import uvicorn
    from engine.cli import serving_options
    from engine.config import load_settings

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = (scope["client"] or ("none", 0))[0].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **serving_options(load_settings(None, environ={})))
""")


@pytest.mark.slow
@pytest.mark.parametrize("allowed", ["", "*"])
def test_the_served_app_sees_the_socket_peer_whatever_x_forwarded_for_says(allowed: str) -> None:
    port = free_port()
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    if allowed:
        environ["FORWARDED_ALLOW_IPS"] = allowed  # how container images often set uvicorn up
    else:
        environ.pop("FORWARDED_ALLOW_IPS", None)
    process = subprocess.Popen([sys.executable, "-c", PROBE, str(port)], cwd=REPO, env=environ,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "6.6.6.6",
                                                                         "Forwarded": "for=6.6.6.6"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the probe server did not start"
                time.sleep(0.1)
        assert answer.text == "127.0.0.1"
    finally:
        process.terminate()
        process.wait(10)
