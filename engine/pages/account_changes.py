"""The self-service changes of /account/security, applied once their step-up has passed.

Each goes through the use case the API or the admin API already has: a new authenticator or
phone through Enrollment (a user token; a user with factors needs one whose login passed a
factor), new recovery codes through Enrollment.new_recovery_codes (as /v1/mfa/recovery-codes),
a removal through UserAdmin.delete_factor (which also revokes the user's remembered browsers).
`answer` is the token body the step-up ended with (the fresher one when it asked for a factor);
it becomes the browser's signed-in login."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from engine import triggers
from engine.audit import Actor
from engine.errors import Conflict, CountryNotAllowed, FactorUnavailable, InvalidRequest, InvalidToken, NotFound, \
    TooManyAttempts
from engine.factors import totp
from engine.pages.context import PageCall
from engine.pages.render import data_uri, go, text_download

PENDING = "account_change"  # in the page session: the change waiting for its step-up
ACTION = triggers.ACCOUNT_SECURITY  # the step-up's action: always a sensitive one
OPERATIONS = ("add_otp", "add_sms", "recovery_codes", "remove")


async def apply(call: PageCall, answer: dict[str, Any]) -> Response:
    data = call.data
    change = data.pop(PENDING)
    data.update(step="account", action=None, stepped_up=False)
    try:
        response = await _apply(call, change, answer)
    except InvalidToken:
        response = call.render("account_done.html", 403, message=call.t("account_needs_factor"))
    except (InvalidRequest, NotFound, Conflict, CountryNotAllowed):  # NotFound: a factor already gone
        response = call.render("account_done.html", 400, message=call.t("account_refused"))
    except (TooManyAttempts, FactorUnavailable):
        response = call.render("account_done.html", 503, message=call.t("factor_unavailable"))
    # Self-service names no application: the fresher login serves no application's step-up.
    await call.pages.accounts.open(call.request, response, answer, call.secure, "")
    return await call.save(response)


async def _apply(call: PageCall, change: dict[str, Any], answer: dict[str, Any]) -> Response:
    services, user_id = call.services, str(answer["user_id"])
    # As the API's enrollment: a user with factors changes them only with a login that passed one.
    principal = await services.enrollment.principal(None, answer["token"])
    await services.enrollment.require_second_factor_if_enrolled(principal)
    if change["op"] == "remove":
        # The user's own change, from their address: the audit trail must not say an admin made it.
        await services.users.delete_factor(user_id, change["factor_id"], actor=Actor.USER, ip=call.ip)
        return go("/account/security")
    if change["op"] == "recovery_codes":
        codes = await services.enrollment.replace_recovery_codes(user_id)
        return call.render("recovery_codes.html", codes=codes, download_href=text_download(codes),
                           done_href="/account/security")
    if change["op"] == "add_otp":
        started = await services.enrollment.start(principal, "otp", None, call.ip)
        call.data.update(step="enroll_otp", enrollment_id=started["enrollment_id"], self_service=True)
        qr = data_uri("image/svg+xml", totp.qr_svg(started["otpauth_uri"]).encode("utf-8"))
        return call.render("enroll_otp.html", qr_src=qr, secret=started["secret"])
    started = await services.enrollment.start(principal, "sms", change["phone"], call.ip)
    call.data.update(step="enroll_sms_code", enrollment_id=started["enrollment_id"], phone=started["phone"],
                     self_service=True)
    return go("/login/enroll/code")
