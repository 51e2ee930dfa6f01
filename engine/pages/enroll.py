"""The enrollment pages of a login that must enrol a second factor first, through engine/enrollment.py.

    GET  /login/enroll           the types this login may enrol (its enrollment token's)
    POST /login/enroll           factor=otp: the QR code, the secret as text, the code to confirm;
                                 factor=sms: the phone number form
    GET|POST /login/enroll/phone the phone number -> Enrollment.start sends the code
    GET  /login/enroll/code      the SMS code field
    POST /login/enroll/confirm   code -> Enrollment.confirm: the login's token; the first factor's
                                 recovery codes are shown once, then POST /login/continue
    POST /login/continue         back to the application

The TOTP secret is shown once, in the answer that created it, and never kept in the page
session; a wrong confirmation code shows the code field again (or start over for a new QR).
The recovery codes are not kept either: only the finished login's token waits in the session
for the user to continue.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from engine.enrollment import Principal
from engine.errors import CountryNotAllowed, FactorUnavailable, InvalidCode, InvalidRequest, InvalidToken, \
    TooManyAttempts
from engine.factors import totp
from engine.pages.context import PageCall
from engine.pages.render import data_uri, go, text_download
from engine.pages.steps import login_done, token_answer

ENROLLABLE = ("otp", "sms")


def _choices(call: PageCall) -> list[str]:
    allowed = call.data.get("factors_allowed") or ()
    return [factor for factor in ENROLLABLE if factor in allowed and factor in call.services.settings.mfa.factors]


async def _principal(call: PageCall) -> Principal | None:
    token = call.data.get("enrollment_token")
    if not token:
        return None
    try:
        return await call.services.enrollment.principal(token, None)
    except InvalidToken:
        return None


async def choose_page(call: PageCall) -> Response:
    if call.data.get("step") != "enroll":
        return await call.expired()
    return call.render("enroll.html", factors=_choices(call))


async def choose(call: PageCall) -> Response:
    factor = call.form.get("factor", "")
    if factor not in _choices(call) or call.data.get("step") not in ("enroll", "enroll_otp"):
        return await call.expired()
    if factor == "sms":
        call.data.update(step="enroll_phone")
        return await call.save(go("/login/enroll/phone"))
    principal = await _principal(call)
    if principal is None:
        return await call.expired()
    try:
        started = await call.services.enrollment.start(principal, "otp", None, call.ip)
    except (InvalidToken, InvalidRequest):
        return await call.expired()
    call.data.update(step="enroll_otp", enrollment_id=started["enrollment_id"])
    qr = data_uri("image/svg+xml", totp.qr_svg(started["otpauth_uri"]).encode("utf-8"))
    return await call.save(call.render("enroll_otp.html", qr_src=qr, secret=started["secret"]))


async def phone_page(call: PageCall) -> Response:
    if call.data.get("step") != "enroll_phone":
        return await call.expired()
    return call.render("enroll_phone.html", phone="")


async def phone(call: PageCall) -> Response:
    if call.data.get("step") != "enroll_phone":
        return await call.expired()
    number = call.form.get("phone", "").strip()
    principal = await _principal(call)
    if principal is None:
        return await call.expired()
    try:
        started = await call.services.enrollment.start(principal, "sms", number[:32] or None, call.ip)
    except InvalidToken:
        return await call.expired()
    except InvalidRequest:
        return call.render("enroll_phone.html", 400, phone=number[:32], error=call.t("error_phone"))
    except CountryNotAllowed:
        return call.render("enroll_phone.html", 400, phone=number[:32], error=call.t("error_phone_country"))
    except TooManyAttempts as exc:
        return call.render("enroll_phone.html", 429, phone=number[:32],
                           error=call.t("sms_limit", minutes=max(1, -(-int(exc.retry_after or 60) // 60))))
    except FactorUnavailable:
        return call.render("enroll_phone.html", 503, phone=number[:32], error=call.t("factor_unavailable"))
    call.data.update(step="enroll_sms_code", enrollment_id=started["enrollment_id"], phone=started["phone"])
    return await call.save(go("/login/enroll/code"))


async def code_page(call: PageCall) -> Response:
    if call.data.get("step") != "enroll_sms_code":
        return await call.expired()
    return call.render("enroll_sms_code.html", phone=call.data.get("phone") or "")


async def confirm(call: PageCall) -> Response:
    data = call.data
    step = data.get("step")
    if step not in ("enroll_otp", "enroll_sms_code"):
        return await call.expired()
    code = call.form.get("code", "").strip()
    if not code or len(code) > 32:
        return _confirm_page(call, 400, call.t("error_code_required"))
    try:
        body = await call.services.enrollment.confirm(data["enrollment_id"], code)
    except InvalidCode:
        left = await _attempts_left(call)
        if left is None:
            return await call.expired()
        return _confirm_page(call, 401, call.t("error_code", attempts=left))
    except InvalidToken:
        return await call.expired()
    if data.get("self_service"):
        data.update(step="account", self_service=False)
        if body.get("recovery_codes"):
            codes = list(body["recovery_codes"])
            return await call.save(call.render("recovery_codes.html", codes=codes, download_href=text_download(codes),
                                               done_href="/account/security"))
        return await call.save(go("/account/security"))
    if "token" not in body:
        return await call.expired()
    answer = token_answer(body)
    if not body.get("recovery_codes"):
        return await login_done(call, answer)
    data.update(step="codes", answer=answer)
    codes = list(body["recovery_codes"])
    return await call.save(call.render("recovery_codes.html", codes=codes, download_href=text_download(codes)))


def _confirm_page(call: PageCall, status: int, error: str) -> Response:
    if call.data.get("step") == "enroll_otp":
        return call.render("enroll_otp.html", status, qr_src=None, secret="", error=error)
    return call.render("enroll_sms_code.html", status, phone=call.data.get("phone") or "", error=error)


async def _attempts_left(call: PageCall) -> int | None:
    pending = await call.services.store.get(call.data["enrollment_id"], call.services.clock.now().timestamp())
    if pending is None:
        return None
    return max(call.services.settings.mfa.max_attempts - pending.attempts, 0)


async def proceed(call: PageCall) -> Response:
    answer: dict[str, Any] | None = call.data.get("answer")
    if call.data.get("step") != "codes" or answer is None:
        return await call.expired()
    return await login_done(call, answer)
