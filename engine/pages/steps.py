"""Where a flow's answer takes the browser: a finished login back to its application with an
authorization code, a challenge to the factor choice, an enrollment to its page.

Every answer comes from engine/flow.py or engine/enrollment.py, exactly as the JSON API gets it;
this module only records, in the page session, what the next page needs to continue."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from engine import remembered, triggers
from engine.errors import AccessDenied, InvalidToken
from engine.flow import EnrollmentRequired, MfaRequired, StepUpOk
from engine.http import schema
from engine.pages.context import PageCall
from engine.pages import account_changes
from engine.pages.render import go, with_headers
from engine.pages.session import set_cookie
from engine.sessions import Authenticated

REMEMBER_COOKIE = "mfa-remember"
# What a token body is made of (Authenticated.to_plain), as enrollment's confirm merges it into its own.
ANSWER_FIELDS = ("status", "user_id", "token", "token_type", "expires_in", "amr", "return_to", "required_by",
                 "remembered_browser", "remember_token", "remember_token_expires_in", "decision_id")


async def after_answer(call: PageCall, answer: Authenticated | MfaRequired | EnrollmentRequired) -> Response:
    if isinstance(answer, Authenticated):
        return await login_done(call, answer.to_plain())
    data = call.data
    if isinstance(answer, MfaRequired):
        for stale in ("factor_id", "factor_type", "phone", "sent_at"):
            data.pop(stale, None)
        data.update(step="factor", challenge_id=answer.challenge_id,
                    offers=[offer.to_plain(index == 0) for index, offer in enumerate(answer.offers)],
                    remember=await _may_remember(call, answer.challenge_id))
        return await call.save(go("/login/factor"))
    data.update(step="enroll", enrollment_token=answer.enrollment_token, factors_allowed=list(answer.factors_allowed))
    return await call.save(go("/login/enroll"))


async def login_done(call: PageCall, answer: dict[str, Any]) -> Response:
    """A login of this page session is done (password, factor or enrollment): the step-up of the
    link's `&action=` first, if it has not run, so its rules are never skipped."""
    if call.data.get("action") and not call.data.get("stepped_up"):
        return await step_up(call, answer)
    return await finish(call, answer)


async def _may_remember(call: PageCall, challenge_id: str) -> bool:
    """Whether the flow offered this login a remembered browser (the rules allowed it): the
    checkbox is shown only then; the verify decides again either way."""
    challenge = await call.services.store.get(challenge_id, call.services.clock.now().timestamp())
    return challenge is not None and remembered.DATA_KEY in challenge.data \
        and call.services.settings.mfa.remember_browser.days > 0


async def step_up(call: PageCall, signed_in: dict[str, Any], *, reused: bool = False) -> Response:
    """The login's `action` through Flow.step_up with the signed-in token: nothing more to pass
    (back to the application with that token), or a challenge or enrollment like a login's,
    whose verify issues the fresher token. Once per page session: the fresher token finishes."""
    data = call.data
    data["stepped_up"] = True
    context = call.flow_context(call.device_id)
    if data["client_id"]:  # self-service (/account/security) has no client
        context["client_id"] = data["client_id"]
    body = {"user_token": signed_in["token"], "action": data["action"], "context": context}
    try:
        result = await call.services.flow.step_up(schema.parse_step_up(body))
    except InvalidToken:
        # The signed-in token no longer stands (expired, user reset): the password, then the step-up.
        data.update(step="password", stepped_up=False)
        response = go("/login")
        await call.pages.accounts.close(call.request, response, call.secure)
        return await call.save(response)
    except AccessDenied as exc:
        return await call.end(call.message("title_denied", [call.t("denied_body", reason=exc.reason)], 403))
    if isinstance(result, StepUpOk):
        if reused and not triggers.is_sensitive(call.services.settings.mfa.triggers, data["action"]):
            # The browser's earlier login (`reused`), and nothing asked for a factor or checked its
            # freshness: the application's login link with any `&action=` must not become a login
            # with neither password nor factor (red-team finding). A sign-in, with the action in
            # context. (A login this page session has just made finishes: it passed what it needed.)
            data.update(step="password", stepped_up=False)
            return await call.keep(go("/login"))
        return await finish(call, signed_in)
    return await after_answer(call, result)


def token_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The token body within enrollment's confirm answer (which also names the factor and codes)."""
    return {key: body[key] for key in ANSWER_FIELDS if key in body}


async def finish(call: PageCall, answer: dict[str, Any]) -> Response:
    """Back to the application: its registered redirect URI with a one-time code and its state (or,
    for a self-service change that has just passed its step-up, the change itself)."""
    data = call.data
    if data.get(account_changes.PENDING):
        return await account_changes.apply(call, answer)
    if not await call.client_registered():
        return await call.client_gone()
    code = await call.pages.codes.issue(answer["user_id"], data["client_id"], data["redirect_uri"],
                                        data.get("code_challenge"), answer)
    query = {"code": code} | ({"state": data["state"]} if data.get("state") else {})
    separator = "&" if "?" in data["redirect_uri"] else "?"
    response = with_headers(RedirectResponse(data["redirect_uri"] + separator + urlencode(query), 303),
                            data["redirect_uri"])
    if answer.get("remember_token"):
        set_cookie(response, REMEMBER_COOKIE, answer["remember_token"], int(answer["remember_token_expires_in"]),
                   call.secure)
    await call.pages.accounts.open(call.request, response, answer, call.secure, data["client_id"] or "")
    return await call.end(response)
