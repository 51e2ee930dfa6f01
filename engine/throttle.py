"""The counters that throttle logins and SMS sends, named once.

Login: password attempts per username and per IP, counted (ChallengeStore.take) before the
password is checked, so that concurrent guesses cannot all pass a limit none has reached
yet; a success clears the username's and gives back the IP's.
SMS: sends per user, per phone number, per IP and per destination country, per hour:
SMS pumping fraud runs up a bill by sending codes to premium numbers from many IPs.

Every key is normalised so that one account or one client has one budget, however it is
written: usernames by the directory's own username_key, addresses by ip_key.
"""

from __future__ import annotations

import ipaddress

from engine.config import LoginSettings, SmsSettings
from engine.stores.challenges import Counter
from engine.stores.directory import username_key

HOUR = 3600
# Text that does not parse as an address: all of it shares one budget, rather than each
# spelling getting its own.
UNPARSED_IP = "unparsed"


def ip_key(ip: str) -> str:
    """The client an address stands for: an IPv4-mapped IPv6 address is its IPv4 address, and
    IPv6 is counted per /64, the block one subscriber is usually given (per /128, one host
    would hold 2**64 budgets)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return UNPARSED_IP
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))


def login_failures(settings: LoginSettings, username: str, ip: str | None) -> list[Counter]:
    """The username's counter first, then the IP's when there is one."""
    counters = [Counter(f"login:user:{username_key(username)}", settings.failures_per_username,
                        settings.failure_window_seconds)]
    if ip:
        counters.append(Counter(f"login:ip:{ip_key(ip)}", settings.failures_per_ip, settings.failure_window_seconds))
    return counters


def sms_sends(settings: SmsSettings, user_id: str, phone: str, ip: str | None, country: str | None) -> list[Counter]:
    counters = [
        Counter(f"sms:user:{user_id}", settings.sends_per_user_per_hour, HOUR),
        Counter(f"sms:phone:{phone}", settings.sends_per_phone_per_hour, HOUR),
        Counter(f"sms:country:{country or 'unknown'}", settings.sends_per_country_per_hour, HOUR),
    ]
    if ip:
        counters.append(Counter(f"sms:ip:{ip_key(ip)}", settings.sends_per_ip_per_hour, HOUR))
    return counters
