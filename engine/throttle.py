"""The counters that throttle logins and SMS sends, named once.

Login: failed passwords per username and per IP (a success clears the username's).
SMS: sends per user, per phone number, per IP and per destination country, per hour:
SMS pumping fraud runs up a bill by sending codes to premium numbers from many IPs.
"""

from __future__ import annotations

from engine.config import LoginSettings, SmsSettings
from engine.stores.challenges import Counter

HOUR = 3600


def login_failures(settings: LoginSettings, username: str, ip: str | None) -> list[Counter]:
    counters = [Counter(f"login:user:{username.casefold()}", settings.failures_per_username,
                        settings.failure_window_seconds)]
    if ip:
        counters.append(Counter(f"login:ip:{ip}", settings.failures_per_ip, settings.failure_window_seconds))
    return counters


def sms_sends(settings: SmsSettings, user_id: str, phone: str, ip: str | None, country: str | None) -> list[Counter]:
    counters = [
        Counter(f"sms:user:{user_id}", settings.sends_per_user_per_hour, HOUR),
        Counter(f"sms:phone:{phone}", settings.sends_per_phone_per_hour, HOUR),
        Counter(f"sms:country:{country or 'unknown'}", settings.sends_per_country_per_hour, HOUR),
    ]
    if ip:
        counters.append(Counter(f"sms:ip:{ip}", settings.sends_per_ip_per_hour, HOUR))
    return counters
