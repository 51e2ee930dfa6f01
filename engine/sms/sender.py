"""Sending a one-time code by SMS: country allow-list, send limits, cooldown, then the gateway."""

from __future__ import annotations

import logging
from datetime import datetime

import phonenumbers

from engine import throttle
from engine.config import SmsSettings
from engine.crypto import Keyring
from engine.errors import CountryNotAllowed, FactorUnavailable, InvalidChallenge, TooManyAttempts
from engine.factors import sms
from engine.metrics import Metrics
from engine.sms.gateway import GatewayError, SmsGateway, SmsMessage
from engine.stores.challenges import ChallengeStore

log = logging.getLogger("engine.sms")


def phone_country(phone: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None


def check_country(settings: SmsSettings, phone: str) -> str | None:
    """The phone's country; raise CountryNotAllowed outside `sms.allowed_countries` (when set)."""
    country = phone_country(phone)
    if settings.allowed_countries and country not in settings.allowed_countries:
        raise CountryNotAllowed("SMS to this phone number's country is not enabled")
    return country


class SmsSender:
    def __init__(self, gateway: SmsGateway, store: ChallengeStore, keyring: Keyring, settings: SmsSettings,
                 issuer_name: str, metrics: Metrics) -> None:
        self.gateway = gateway
        self.metrics = metrics
        self.store = store
        self.keyring = keyring
        self.settings = settings
        self.issuer_name = issuer_name

    def check_country(self, phone: str) -> str | None:
        return check_country(self.settings, phone)

    async def send_code(self, challenge_id: str, factor_id: str, user_id: str, phone: str, ip: str | None,
                        now: datetime) -> None:
        """Raises CountryNotAllowed, TooManyAttempts (limits, cooldown), InvalidChallenge, FactorUnavailable."""
        country = self.check_country(phone)
        timestamp = now.timestamp()
        wait = await self.store.take(throttle.sms_sends(self.settings, user_id, phone, ip, country), timestamp)
        if wait:
            raise TooManyAttempts(wait, "too many codes sent; try again later")
        code = sms.new_code()
        stored = await self.store.put_code(
            challenge_id, factor_id, sms.code_hash(self.keyring.mac, challenge_id, factor_id, code), timestamp,
            code_ttl_seconds=self.settings.code_ttl_seconds, cooldown_seconds=self.settings.resend_cooldown_seconds,
        )
        if stored.status == "cooldown":
            raise TooManyAttempts(stored.retry_after, "a code was sent moments ago; wait before asking again")
        if stored.status == "missing":
            raise InvalidChallenge("the challenge is unknown, expired or does not offer this factor")
        body = sms.message_body(code, self.issuer_name, self.settings.code_ttl_seconds)
        try:
            await self.gateway.send(SmsMessage(to=phone, body=body, code=code, user_id=user_id))
        except GatewayError as exc:
            # Forget the unsent code and its cooldown: the user may retry or pick another factor.
            await self.store.drop_code(challenge_id, factor_id)
            self.metrics.sms_failures.inc(self.gateway.name, country or "unknown")
            log.warning("sms_send_failed gateway=%s user_id=%s error=%s", self.gateway.name, user_id, exc)
            raise FactorUnavailable("the SMS could not be sent; try again or use another factor") from exc
        self.metrics.sms_sent.inc(self.gateway.name, country or "unknown")
        log.info("sms_sent gateway=%s user_id=%s country=%s", self.gateway.name, user_id, country)
