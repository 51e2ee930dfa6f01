"""Endpoints of the login: /v1/login, /v1/mfa/challenge, /v1/mfa/verify, enrollment, recovery codes, step-up."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine.errors import InvalidRequest, NotFound
from engine.flow import LoginRequest
from engine.http import schema
from engine.http.auth import require_bearer
from engine.http.bodies import read_json
from engine.http.render import json_response
from engine.services import Services


async def _body(request: Request, check: schema.Check) -> tuple[Services, dict[str, Any]]:
    services: Services = request.app.state.services
    require_bearer(request, services.api_keys)
    return services, schema.parse(check, await read_json(request, services.settings.http.max_body_bytes))


async def login(request: Request) -> Response:
    services, body = await _body(request, schema.LOGIN)
    context = body.get("context", {})
    # The remember token is checked by the flow, never handed to the rules or their trace.
    remember_token = context.pop("remember_token", None)
    result = await services.flow.login(
        LoginRequest(body["username"], body["password"], body["client_id"], context, remember_token))
    return json_response(result.to_plain())


async def challenge(request: Request) -> Response:
    services, body = await _body(request, schema.CHALLENGE)
    started = await services.flow.challenge(body["challenge_id"], body["factor_id"],
                                            body.get("context", {}).get("ip"), body.get("client_id"))
    return json_response(started.to_plain())


async def verify(request: Request) -> Response:
    services, body = await _body(request, schema.VERIFY)
    done = await services.flow.verify(body["challenge_id"], body["factor_id"], body["code"], body.get("client_id"),
                                      remember_browser=body.get("remember_browser", False),
                                      ip=body.get("context", {}).get("ip"))
    return json_response(done.to_plain())


async def step_up(request: Request) -> Response:
    services: Services = request.app.state.services
    require_bearer(request, services.api_keys)
    body = await read_json(request, services.settings.http.max_body_bytes)
    return json_response((await services.flow.step_up(schema.parse_step_up(body))).to_plain())


async def enroll(request: Request) -> Response:
    services, body = await _body(request, schema.ENROLL)
    factor = "otp" if body["factor"] == "totp" else body["factor"]
    if factor == "sms" and "phone_number" not in body:
        raise InvalidRequest("is required to enroll a phone", field="phone_number")
    principal = await services.enrollment.principal(body.get("enrollment_token"), body.get("user_token"))
    started = await services.enrollment.start(principal, factor, body.get("phone_number"),
                                              body.get("context", {}).get("ip"))
    return json_response(started)


async def confirm(request: Request) -> Response:
    services, body = await _body(request, schema.CONFIRM)
    return json_response(await services.enrollment.confirm(body["enrollment_id"], body["code"]))


async def recovery_codes(request: Request) -> Response:
    services, body = await _body(request, schema.USER_TOKEN)
    principal = await services.enrollment.principal(None, body["user_token"])
    await services.enrollment.require_second_factor_if_enrolled(principal)
    codes = await services.enrollment.replace_recovery_codes(principal.user_id, field="user_token")
    return json_response({"recovery_codes": codes})


async def jwks(request: Request) -> Response:
    services: Services = request.app.state.services
    keys = services.tokens.jwks()
    if keys is None:
        raise NotFound("tokens are signed with a shared secret (HS256): there is no public key to publish")
    return json_response(keys)
