"""Self-service: GET /account/security shows the signed-in user's second factors and recovery codes;
POST /account/security asks for one change (add an authenticator or a phone, new recovery codes,
remove a factor). Every change first goes through Flow.step_up for the action `account_security`
with the browser's signed-in token, exactly like an application's step-up, and is applied
(engine/pages/account_changes.py) only once that step-up has passed. `account_security` is always
a sensitive action (engine/triggers.py ALWAYS_SENSITIVE), so each change needs a factor passed
within `mfa.triggers.sensitive_actions.within_minutes`, whatever the rules and the policy say."""

from __future__ import annotations

from starlette.responses import Response

from engine.pages import account_changes, i18n
from engine.pages.context import PageCall
from engine.pages.steps import step_up
from engine.signals import mask_phone


async def overview(call: PageCall) -> Response:
    signed_in = await call.pages.accounts.current(call.request, call.secure)
    if signed_in is None:
        return call.message("title_account", [call.t("account_sign_in_first")], 401, alert=False)
    if call.session is None or call.data.get("step") != "account":
        call.session = call.pages.sessions.new({"client_id": "", "redirect_uri": "", "step": "account",
                                                "locale": i18n.from_ui_locales(call.request.query_params.get(
                                                    "ui_locales"))})
    user_id = str(signed_in["user_id"])
    factors = await call.services.directory.list_factors(user_id)
    listed = [{"id": factor.factor_id, "label": call.t("factor_otp") if factor.type == "otp" else
               call.t("factor_sms", phone=mask_phone(factor.phone_number) or "")} for factor in factors]
    codes_left = await call.services.directory.recovery_codes_left(user_id)
    enabled = call.services.settings.mfa.factors
    return await call.keep(call.render("account.html", factors=listed, codes_left=codes_left,
                                       can_add_otp="otp" in enabled, can_add_sms="sms" in enabled))


async def change(call: PageCall) -> Response:
    signed_in = await call.pages.accounts.current(call.request, call.secure)
    if call.data.get("step") != "account" or signed_in is None:
        return await call.expired()
    op = call.form.get("op", "")
    if op not in account_changes.OPERATIONS:
        return await call.expired()
    call.data.update({account_changes.PENDING: {"op": op, "factor_id": call.form.get("factor_id", "")[:128],
                                                "phone": call.form.get("phone", "").strip()[:32] or None}},
                     action=account_changes.ACTION, stepped_up=False)
    return await step_up(call, signed_in, reused=True)
