"""GeoIP lookups: country and, where the database has them, city, coordinates, subdivision and time zone of an IP address."""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Protocol

import geoip2.database
import geoip2.errors

logger = logging.getLogger(__name__)

# geoip2 refuses a reader method whose name is not in the database type string, so the
# method is chosen once, here; any other type fails at startup, not on the first login.
CITY_TYPES = frozenset({"GeoIP2-City", "GeoLite2-City", "DBIP-City-Lite"})
COUNTRY_TYPES = frozenset({"GeoIP2-Country", "GeoLite2-Country", "DBIP-Country-Lite"})
# MaxMind-format databases keep their IPv4 tree here, so an address in it would get an IPv4
# answer without passing the public-address check as IPv4; nothing real connects from it.
_IPV4_COMPATIBLE = IPv6Network("::/96")


@dataclass(frozen=True, slots=True)
class GeoFacts:
    """What the database says about one address; None where it says nothing.

    `country` is ISO 3166 alpha-2 in upper case; `accuracy_radius` is in kilometres (MaxMind's unit).
    `country_name` and `city` are the English names. `continent` is the two-letter code (EU, NA,
    AS, AF, OC, SA, AN). `subdivision` is the ISO 3166-2 code of the most specific subdivision
    without its country prefix, as the databases store it ("IL" for US-IL, "75" for the Paris
    department rather than its region "IDF"); a subdivision with a name but no code (DB-IP Lite)
    is None, because a name would never equal the code a rule compares with. `time_zone` is the
    IANA name ("Europe/Berlin"). Country databases have no city, coordinates, subdivision or
    time zone.
    """

    country: str | None
    city: str | None
    latitude: float | None
    longitude: float | None
    accuracy_radius: int | None
    country_name: str | None = None
    continent: str | None = None
    subdivision: str | None = None
    time_zone: str | None = None

    def to_plain(self) -> dict[str, str | float | int | None]:
        return {"country": self.country, "city": self.city, "latitude": self.latitude,
                "longitude": self.longitude, "accuracy_radius": self.accuracy_radius,
                "country_name": self.country_name, "continent": self.continent,
                "subdivision": self.subdivision, "time_zone": self.time_zone}


class GeoLocator(Protocol):
    def lookup(self, ip: str) -> GeoFacts | None:
        """Facts for `ip`; None when it is malformed, not a public address, or not in the database."""
        ...

    def close(self) -> None: ...


CACHE_SIZE = 8192


class MaxMindLocator:
    """A Country or City `.mmdb` file in MaxMind format (MaxMind or DB-IP), read through geoip2.

    `allow_networks` exempts networks from the public-address check, for tests and development
    only: their data sits on the documentation ranges (RFC 5737, RFC 3849), which `ipaddress`
    does not count as global. Raises FileNotFoundError for a missing file and ValueError for an
    unsupported database type. The caller closes the locator.
    """

    def __init__(self, path: str, *, allow_networks: tuple[IPv4Network | IPv6Network, ...] = ()) -> None:
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "GeoIP database not found", path)
        self._reader = geoip2.database.Reader(path)
        metadata = self._reader.metadata()
        self._read: Callable[[IPv4Address | IPv6Address], GeoFacts]
        if metadata.database_type in CITY_TYPES:
            self._read = self._read_city
        elif metadata.database_type in COUNTRY_TYPES:
            self._read = self._read_country
        else:
            self._reader.close()
            supported = ", ".join(sorted(CITY_TYPES | COUNTRY_TYPES))
            raise ValueError(f"unsupported GeoIP database type {metadata.database_type!r} in {path}; "
                             f"supported: {supported}")
        # The reader raises, rather than answering None, for IPv6 in an IPv4-only database.
        self._has_ipv6 = metadata.ip_version == 6
        self._allow_networks = allow_networks
        # geoip2 builds model objects for every lookup (about 25 us with the address checks);
        # the database does not change while open, and logins repeat addresses (offices,
        # carrier NAT), so recent answers are kept. Bounded: at most a few MB.
        self.lookup = functools.lru_cache(maxsize=CACHE_SIZE)(self._lookup)  # type: ignore[method-assign]

    def lookup(self, ip: str) -> GeoFacts | None:
        return self._lookup(ip)

    def _lookup(self, ip: str) -> GeoFacts | None:
        address = _public_address(ip, self._allow_networks)
        if address is None or (address.version == 6 and not self._has_ipv6):
            return None
        try:
            return self._read(address)
        except geoip2.errors.AddressNotFoundError:
            return None

    def close(self) -> None:
        self.lookup.cache_clear()  # type: ignore[attr-defined]
        self._reader.close()

    def _read_city(self, address: IPv4Address | IPv6Address) -> GeoFacts:
        record = self._reader.city(address)
        location = record.location
        return GeoFacts(_country_code(record.country.iso_code), record.city.name,
                        location.latitude, location.longitude, location.accuracy_radius,
                        record.country.name, record.continent.code,
                        record.subdivisions.most_specific.iso_code, location.time_zone)

    def _read_country(self, address: IPv4Address | IPv6Address) -> GeoFacts:
        record = self._reader.country(address)
        return GeoFacts(_country_code(record.country.iso_code), None, None, None, None,
                        record.country.name, record.continent.code)


class NoGeoLocator:
    """No database configured: every address is unknown."""

    def lookup(self, ip: str) -> GeoFacts | None:
        return None

    def close(self) -> None:
        return None


def open_locator(path: str | None, *,
                 allow_networks: tuple[IPv4Network | IPv6Network, ...] = ()) -> GeoLocator:
    """The locator for `path`, or a NoGeoLocator (with a warning) when no path is configured.

    A configured path that is missing or holds an unsupported database raises (see
    MaxMindLocator): startup must fail rather than quietly make every country None.
    """
    if not path:
        logger.warning("no GeoIP database configured: context.connection.ip_country is None for every login")
        return NoGeoLocator()
    return MaxMindLocator(path, allow_networks=allow_networks)


def _public_address(ip: str, allow_networks: tuple[IPv4Network | IPv6Network, ...]
                    ) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, IPv6Address):
        # Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d, and databases not built by
        # MaxMind do not alias that range to their IPv4 tree: look up the IPv4 address itself.
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _IPV4_COMPATIBLE:
            return None
    if any(address in network for network in allow_networks):
        return address
    # ipaddress counts multicast as global; no login comes from a group address.
    if not address.is_global or address.is_multicast:
        return None
    return address


def _country_code(iso_code: str | None) -> str | None:
    if iso_code is None or len(iso_code) != 2 or not (iso_code.isascii() and iso_code.isalpha()):
        return None
    code = iso_code.upper()
    # ISO 3166 reserves ZZ for "unknown"; a rule must see None, not a country it might allow.
    return None if code == "ZZ" else code
