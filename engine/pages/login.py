"""The login pages: start, password, factor choice, code entry (SMS, app, recovery code), resend.

    GET  /login?client_id&redirect_uri&state[&code_challenge&code_challenge_method=S256][&ui_locales]
    POST /login              username, password        -> Flow.login
    GET  /login/factor       the offered factors, the default first and chosen
    POST /login/factor       factor_id                 -> Flow.challenge (SMS: the code is sent)
    GET  /login/code         the code field of the chosen factor (or a recovery code)
    POST /login/code         code[, remember]          -> Flow.verify
    POST /login/resend                                 -> Flow.challenge again (its cooldown)
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import Response

from engine import formats
from engine.authcodes import S256_CHALLENGE
from engine.errors import (
    AccessDenied,
    CountryNotAllowed,
    FactorUnavailable,
    InvalidChallenge,
    InvalidCode,
    InvalidCredentials,
    InvalidRequest,
    TooManyAttempts,
)
from engine.flow import LoginRequest
from engine.http import schema
from engine.offers import RECOVERY_FACTOR_ID
from engine.pages.context import DEVICE_COOKIE, PageCall
from engine.pages.session import set_cookie
from engine.pages import i18n
from engine.pages.render import go
from engine.pages.steps import REMEMBER_COOKIE, after_answer, step_up

DEVICE_SECONDS = 400 * 86_400  # the longest a browser keeps a cookie (RFC 6265bis)
MAX_STATE_LENGTH = 512
_START_PARAMETERS = ("client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "ui_locales",
                     "action")
MAX_CODE_LENGTH = 32  # as /v1/mfa/verify's `code`


async def start(call: PageCall) -> Response:
    """Only a registered client sending one of its registered redirect URIs, matched exactly,
    gets a sign-in form; anything else gets an error page and is never redirected anywhere."""
    query = call.request.query_params
    if not query and call.session is not None and call.data.get("step") == "password":
        return _password_page(call)
    # Read now, through the one registry (config.yaml, then the directory): a client deleted
    # through any instance's admin API is refused here at once.
    client = await call.services.clients.find(query.get("client_id", ""))
    action = query.get("action")
    if any(len(query.getlist(name)) > 1 for name in _START_PARAMETERS) or client is None \
            or query.get("redirect_uri") not in client.redirect_uris or not _valid_state(query.get("state")) \
            or (action is not None and (formats.ACTION.fullmatch(action) is None or action == "login")):
        return call.message("title_bad_request", [call.t("bad_client")], 400)
    challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
    if (challenge is None and (client.public or method is not None)) or (
            challenge is not None and (method != "S256" or S256_CHALLENGE.fullmatch(challenge) is None)):
        return call.message("title_bad_request", [call.t("pkce_required")], 400)
    call.session = call.pages.sessions.new({
        "client_id": query["client_id"], "client_name": client.name, "redirect_uri": query["redirect_uri"],
        "state": query.get("state"),
        "code_challenge": challenge, "locale": i18n.from_ui_locales(query.get("ui_locales")), "step": "password",
        "action": action})
    signed_in = await call.pages.accounts.current(call.request, call.secure, client_id=query["client_id"]) \
        if action else None
    if signed_in is not None:
        # A step-up of the browser's signed-in login: the rules decide what it needs now.
        return await step_up(call, signed_in, reused=True)
    return await call.offer(_password_page(call))  # stored at the first step the user passes


def _valid_state(state: str | None) -> bool:
    """The application's opaque state comes back as it was sent: one printable token."""
    return state is None or (0 < len(state) <= MAX_STATE_LENGTH and formats.is_identifier(state))


def _password_page(call: PageCall, status: int = 200, **values: Any) -> Response:
    return call.render("password.html", status, **{"username": "", "username_error": None,
                                                   "password_error": None} | values)


async def password(call: PageCall) -> Response:
    if call.data.get("step") != "password":
        return await call.expired()
    if not await call.client_registered():
        return await call.client_gone()
    username, typed = call.form.get("username", "").strip(), call.form.get("password", "")
    if not username or not typed:
        return _password_page(call, 400, username=username,
                              username_error=None if username else call.t("error_username_required"),
                              password_error=None if typed else call.t("error_password_required"))
    device_id = call.device_id
    new_device = device_id is None
    if device_id is None:
        device_id = "dev_" + secrets.token_urlsafe(16)
    try:
        body = schema.parse(schema.LOGIN, {"username": username, "password": typed, "client_id": call.data["client_id"],
                                           "context": call.flow_context(device_id)})
    except InvalidRequest:
        return _password_page(call, 401, username=username, error=call.t("error_credentials"))
    remember_token = call.cookie(REMEMBER_COOKIE) or None
    try:
        answer = await call.services.flow.login(LoginRequest(body["username"], body["password"], body["client_id"],
                                                             body["context"], remember_token))
    except InvalidCredentials:
        return _password_page(call, 401, username=username, error=call.t("error_credentials"))
    except TooManyAttempts as exc:
        return await call.locked(exc.retry_after)
    except AccessDenied as exc:
        return await call.end(call.message("title_denied", [call.t("denied_body", reason=exc.reason)], 403))
    response = await after_answer(call, answer)
    if new_device:
        set_cookie(response, DEVICE_COOKIE, device_id, DEVICE_SECONDS, call.secure)
    return response




def _offers(call: PageCall) -> list[dict[str, Any]]:
    labels = {"otp": lambda offer: call.t("factor_otp"), "recovery": lambda offer: call.t("factor_recovery"),
              "sms": lambda offer: call.t("factor_sms", phone=offer.get("phone", ""))}
    return [offer | {"label": labels[offer["type"]](offer)} for offer in call.data.get("offers", ())]


async def factor_page(call: PageCall) -> Response:
    if not call.data.get("challenge_id"):
        return await call.expired()
    return call.render("factor.html", offers=_offers(call))


async def choose_factor(call: PageCall, error_status: int = 400) -> Response:
    data = call.data
    offered = {offer["id"]: offer for offer in data.get("offers", ())}
    chosen = offered.get(call.form.get("factor_id", ""))
    if not data.get("challenge_id") or chosen is None:
        return await call.expired()
    if chosen["type"] == RECOVERY_FACTOR_ID:
        data.update(step="code", factor_id=RECOVERY_FACTOR_ID, factor_type=RECOVERY_FACTOR_ID)
        return await call.save(go("/login/code"))
    return await _send(call, chosen, retry=False)


async def _send(call: PageCall, chosen: dict[str, Any], retry: bool) -> Response:
    data = call.data
    now = call.services.clock.now().timestamp()
    try:
        started = await call.services.flow.challenge(data["challenge_id"], chosen["id"], call.ip, data["client_id"])
    except InvalidChallenge:
        return await call.expired()
    except TooManyAttempts as exc:
        cooling = data.get("factor_id") == chosen["id"] and now - float(data.get("sent_at") or 0) < \
            call.services.settings.sms.resend_cooldown_seconds
        if retry or cooling:
            return _code_page(call, 429, notice=call.t("resend_too_soon", seconds=exc.retry_after))
        return call.render("factor.html", 429, offers=_offers(call),
                           error=call.t("sms_limit", minutes=max(1, -(-int(exc.retry_after or 60) // 60))))
    except (FactorUnavailable, CountryNotAllowed):
        return call.render("factor.html", 503, offers=_offers(call), error=call.t("factor_unavailable"))
    data.update(step="code", factor_id=started.factor_id, factor_type=started.type, phone=chosen.get("phone"),
                sent_at=now if started.sent else None)
    return await call.save(go("/login/code"))


def _code_page(call: PageCall, status: int = 200, **values: Any) -> Response:
    data = call.data
    offers = data.get("offers", ())
    return call.render("code.html", status, **{
        "recovery": data.get("factor_type") == RECOVERY_FACTOR_ID, "factor_type": data.get("factor_type"),
        "phone": data.get("phone") or "", "cooldown": call.services.settings.sms.resend_cooldown_seconds,
        "remember_days": call.services.settings.mfa.remember_browser.days if data.get("remember") else 0,
        "can_choose": len(offers) > 1,
        "recovery_offered": any(offer["type"] == RECOVERY_FACTOR_ID for offer in offers),
        "notice": None, "error": None} | values)


async def code_page(call: PageCall) -> Response:
    if call.data.get("step") != "code":
        return await call.expired()
    return _code_page(call)


async def verify(call: PageCall) -> Response:
    data = call.data
    if data.get("step") != "code":
        return await call.expired()
    code = call.form.get("code", "").strip()
    if not code:
        return _code_page(call, 400, error=call.t("error_code_required"))
    if len(code) > MAX_CODE_LENGTH:  # never a code (the API refuses it too): no attempt is spent
        return _code_page(call, 401, error=call.t("error_code", attempts=await _attempts_left(call) or 0))
    remember = call.form.get("remember") == "1" and bool(data.get("remember"))
    try:
        answer = await call.services.flow.verify(data["challenge_id"], data["factor_id"], code, data["client_id"],
                                                 remember_browser=remember, ip=call.ip)
    except InvalidCode:
        left = await _attempts_left(call)
        if left is None:
            return await call.expired()
        return _code_page(call, 401, error=call.t("error_code", attempts=left))
    except TooManyAttempts as exc:
        return await call.locked(exc.retry_after)
    return await after_answer(call, answer)


async def _attempts_left(call: PageCall) -> int | None:
    """Wrong codes this login may still try; None once its challenge is gone (expired, used up)."""
    challenge = await call.services.store.get(call.data["challenge_id"], call.services.clock.now().timestamp())
    if challenge is None:
        return None
    return max(call.services.settings.mfa.max_attempts - challenge.attempts, 0)


async def resend(call: PageCall) -> Response:
    data = call.data
    offered = {offer["id"]: offer for offer in data.get("offers", ())}
    if data.get("step") != "code" or data.get("factor_type") != "sms" or data.get("factor_id") not in offered:
        return await call.expired()
    return await _send(call, offered[data["factor_id"]], retry=True)

