"""Remembered browsers: the token a verify hands out when the user asks, and the check a later login makes.

A remember token is `<browser_id>.<mac>`: `browser_id` names a row of the directory's
remembered_browsers, and `mac` is `Keyring.mac("remember-browser", browser_id, user_id,
device_id)`. So a token is bound to the user and the device it was issued for, cannot be
altered, and is never stored (a copy of the database does not hold one). A login accepts it only
when the MAC matches that login's user and device and the directory still holds the row
unexpired (one conditional UPDATE, which also records its use): deleting the row revokes it at
once on every instance that shares the directory. Nothing is cached. A verify hands out a token
only while the user's credentials (password, MFA epoch, active factors) are as its login found
them: a change that revoked every remembered browser also voids logins pending across it.

Whether a login may remember its browser, or be let through by a remembered one (`may_remember`):
`mfa.remember_browser.days` > 0; the rules allowed it (`enable(allow_remember_browser=True)`,
and no later `enable()` refused it: rule_api.Multifactor); no rule failed (a fail-closed
requirement is met by a factor now, never by a browser); and the policy is not `required`, unless
`mfa.remember_browser.allowed_in_required`; and, for the login that presents a token, no built-in
trigger fired (they are risks of that login). A remembered login is a password login: its token's
`amr` is `["pwd"]` and its `acr` `"pwd"` (no factor was passed in it), its answer says
`remembered_browser: true`, and its decision record says `allow` for the reason `remembered_browser`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.config import MfaSettings
from engine.crypto import Keyring
from engine.outcome import Outcome
from engine.policy import Decision
from engine.sessions import STEP_UP, Authenticated
from engine.stores.directory import FactorRecord, RememberedBrowser, UserDirectory, UserRecord

log = logging.getLogger("engine.remembered")

# secrets.token_urlsafe(16) behind its prefix, then the hex HMAC-SHA256.
TOKEN = re.compile(r"(rmb_[A-Za-z0-9_-]{22})\.([0-9a-f]{64})")
MAC_PURPOSE = "remember-browser"
# The user's credentials as a login found them (user_state): a verify hands out a token only if
# they are the same then, so a change that revoked every remembered browser (a new password, a
# factor removed, an MFA reset) also voids the offers of logins pending across it.
STATE_PURPOSE = "remember-browser-state"
# The reason a decision record gives for a login a remembered browser let through.
REASON = "remembered_browser"
# In a login challenge's data: present when the login may remember its browser, with the label
# (user agent) the admin listing shows.
DATA_KEY = "remember_browser"
# One row per user and device; past this many devices, the oldest is forgotten.
MAX_PER_USER = 50
DAY_SECONDS = 86_400
# A requirement of the built-in triggers, in Decision.required_by ("trigger:new_country").
TRIGGER_LAYER = "trigger:"


class RememberedBrowsers:
    def __init__(self, directory: UserDirectory, keyring: Keyring, mfa: MfaSettings) -> None:
        self.directory = directory
        self.keyring = keyring
        self.mfa = mfa

    def may_remember(self, outcome: Outcome) -> bool:
        settings = self.mfa.remember_browser
        if settings.days == 0 or not outcome.allow_remember_browser or outcome.failed_rules:
            return False
        return self.mfa.policy != "required" or settings.allowed_in_required

    def offer(self, outcome: Outcome, context: Mapping[str, Any], state: Callable[[], str]) -> dict[str, Any]:
        """What a login's challenge data carries so that its verify may remember the browser:
        nothing when remembering is not allowed, or the login named no device to bind to.
        `state`: user_state as the login found the user, computed only when it is offered."""
        if context.get("device_id") is None or not self.may_remember(outcome):
            return {}
        return {DATA_KEY: {"user_agent": context.get("user_agent"), "state": state()}}

    def user_state(self, user: UserRecord, password_hash: str, factors: list[FactorRecord]) -> str:
        """A MAC of what revokes remembered browsers when it changes: the password hash, the MFA
        epoch and the active factors (never stored as they are)."""
        active = sorted(factor.factor_id for factor in factors if factor.status == "active")
        return self.keyring.mac(STATE_PURPOSE, user.user_id, password_hash, str(user.mfa_epoch), *active)

    async def _state_now(self, user_id: str) -> str | None:
        user = await self.directory.get_user(user_id)
        found = None if user is None else await self.directory.find_login(user.username)
        if found is None or found[0].user_id != user_id:
            return None
        return self.user_state(found[0], found[1], await self.directory.list_factors(user_id))

    async def skip_factor(self, token: str | None, user_id: str, device_id: str | None, outcome: Outcome,
                          decision: Decision, now: datetime) -> str | None:
        """The id of the remembered browser that lets this login skip the factor its decision
        asks for, or None. Only a plain factor requirement of the rules or the policy is skipped:
        not an enrollment, nor a factor the user must pass before enrolling another
        (verify_then_enroll), nor one a fired trigger asks for (a new country, impossible travel:
        risk seen in this login, which a factor passed earlier on this browser does not answer)."""
        if (token is None or decision.decision != "mfa" or decision.enrollment_required or decision.enroll_after
                or any(layer.startswith(TRIGGER_LAYER) for layer in decision.required_by)
                or not self.may_remember(outcome)):
            return None
        browser_id = await self.accept(token, user_id, device_id, now)
        if browser_id is None:
            log.info("remember_token_refused user_id=%s", user_id)
        return browser_id

    async def accept(self, token: str, user_id: str, device_id: str | None, now: datetime) -> str | None:
        """The browser id, when `token` was issued to this user on this device and is neither
        revoked nor expired; its use is recorded. None for anything else, malformed included."""
        matched = TOKEN.fullmatch(token)
        if matched is None or device_id is None:
            return None
        browser_id, mac = matched.groups()
        if not self.keyring.matches(mac, MAC_PURPOSE, browser_id, user_id, device_id):  # any key: rotation
            return None
        if not await self.directory.use_remembered_browser(browser_id, user_id, device_id, now):
            return None
        return browser_id

    async def attach(self, done: Authenticated, login: Mapping[str, Any], client_id: str, now: datetime) -> Authenticated:
        """`done` (a verify's completed login) with a remember token, when its login's challenge
        data (`login`) allows one; else `done` as it is."""
        offered = login.get(DATA_KEY)
        device_id = login.get("device_id")
        # A step-up proves a factor for one action; it never remembers a browser.
        if not isinstance(offered, Mapping) or not isinstance(device_id, str) or login.get(STEP_UP):
            return done
        if offered.get("state") is None or offered.get("state") != await self._state_now(done.user_id):
            log.info("remember_browser_refused reason=user_changed user_id=%s", done.user_id)
            return done
        days = self.mfa.remember_browser.days
        browser = RememberedBrowser(browser_id="rmb_" + secrets.token_urlsafe(16), user_id=done.user_id,
                                    device_id=device_id, user_agent=offered.get("user_agent"), client_id=client_id,
                                    created_at=now, expires_at=now + timedelta(days=days))
        if not await self.directory.remember_browser(browser, MAX_PER_USER):
            return done  # the user was deleted meanwhile
        log.info("browser_remembered user_id=%s browser_id=%s days=%d", done.user_id, browser.browser_id, days)
        token = f"{browser.browser_id}.{self._mac(browser.browser_id, done.user_id, device_id)}"
        return dataclasses.replace(done, remember_token=token, remember_token_expires_in=days * DAY_SECONDS)

    def _mac(self, browser_id: str, user_id: str, device_id: str) -> str:
        return self.keyring.mac(MAC_PURPOSE, browser_id, user_id, device_id)


def skipped(decision: Decision) -> Decision:
    """The decision of a login a remembered browser let through: allowed, for that reason; the
    rest of the record (who required the factor) stays."""
    return dataclasses.replace(decision, decision="allow", reason=REASON, factors=(), default_source=None)
