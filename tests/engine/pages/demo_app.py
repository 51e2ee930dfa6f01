"""A small application in front of the hosted pages, as a real one would be: /start sends the
browser to /login with a state and a PKCE challenge; /callback checks the state and exchanges
the code server-side at /v1/token with its API key and the verifier, then shows who signed in."""

from __future__ import annotations

import html
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.authcodes import s256
from tests.engine.service import API_KEY


class DemoApp:
    def __init__(self) -> None:
        self.engine_url = ""  # set once the engine listens
        self.own_url = ""
        self.pending: dict[str, str] = {}  # state -> PKCE verifier
        self.signed_in: list[dict[str, Any]] = []  # every /v1/token answer
        self.app = Starlette(routes=[Route("/start", self.start), Route("/callback", self.callback)])

    @property
    def redirect_uri(self) -> str:
        return self.own_url + "/callback"

    async def start(self, request: Request) -> Response:
        state, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
        self.pending[state] = verifier
        query = {"client_id": "demo", "redirect_uri": self.redirect_uri, "state": state,
                 "code_challenge": s256(verifier), "code_challenge_method": "S256"}
        if request.query_params.get("ui_locales"):
            query["ui_locales"] = request.query_params["ui_locales"]
        return RedirectResponse(f"{self.engine_url}/login?{urlencode(query)}", 302)

    async def callback(self, request: Request) -> Response:
        verifier = self.pending.pop(request.query_params.get("state", ""), None)
        if verifier is None:
            return HTMLResponse("<h1>Unknown state</h1>", 400)
        async with httpx.AsyncClient(base_url=self.engine_url) as client:
            answer = await client.post("/v1/token", headers={"Authorization": f"Bearer {API_KEY}"},
                                       json={"code": request.query_params.get("code", ""), "client_id": "demo",
                                             "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        if answer.status_code != 200:
            return HTMLResponse(f"<h1>Exchange refused</h1><p>{html.escape(answer.text)}</p>", 400)
        self.signed_in.append(answer.json())
        amr = " ".join(answer.json()["amr"])
        return HTMLResponse(f"<!doctype html><title>Demo App</title><h1 id='welcome'>Signed in</h1>"
                            f"<p id='amr'>{html.escape(amr)}</p>")
