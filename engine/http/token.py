"""POST /v1/token: an application exchanges the hosted pages' authorization code for its login's token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine.authcodes import AuthorizationCodes
from engine.http import schema
from engine.http.auth import require_bearer
from engine.http.bodies import read_json
from engine.http.render import json_response
from engine.services import Services


async def token(request: Request) -> Response:
    services: Services = request.app.state.services
    require_bearer(request, services.api_keys)
    body = schema.parse(schema.BODIES["token"], await read_json(request, services.settings.http.max_body_bytes))
    codes = AuthorizationCodes(services.store, services.clock, services.clients)
    return json_response(await codes.redeem(body["code"], body["client_id"], body["redirect_uri"],
                                            body.get("code_verifier")))
