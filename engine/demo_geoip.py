"""GeoIP databases on the documentation ranges, written with mmdb-writer: the demo default and test fixtures."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from mmdb_writer import MMDBWriter
from netaddr import IPSet


class CityEntry(NamedTuple):
    """One network of a City database; None (or no subdivisions) leaves that part of the record out."""

    iso_code: str
    city: str | None
    latitude: float | None
    longitude: float | None
    accuracy_radius: int | None
    subdivisions: tuple[str, ...] = ()  # ISO 3166-2 codes without the country, largest first
    time_zone: str | None = None



DEFAULT_COUNTRIES: Mapping[str, str] = MappingProxyType({
    "203.0.113.0/24": "US",
    "198.51.100.0/24": "DE",
    "192.0.2.0/25": "CA",
    "2001:db8:1::/48": "FR",
})
DEFAULT_CITIES: Mapping[str, CityEntry] = MappingProxyType({
    "203.0.113.0/24": CityEntry("US", "Springfield", 39.8, -89.65, 50, ("IL",), "America/Chicago"),
    "198.51.100.0/24": CityEntry("DE", "Berlin", 52.52, 13.405, 20, ("BE",), "Europe/Berlin"),
    "192.0.2.0/25": CityEntry("CA", "Toronto", 43.65, -79.38, 10, ("ON",), "America/Toronto"),
    "2001:db8:1::/48": CityEntry("FR", "Paris", 48.857, 2.352, 100, ("IDF", "75"), "Europe/Paris"),
})
# 192.0.2.128/25 and the rest of 2001:db8::/32 are deliberately left out: addresses there are unknown.
UNKNOWN_IPV4 = "192.0.2.200"
UNKNOWN_IPV6 = "2001:db8:2::1"

_COUNTRY_NAMES = {"US": "United States", "DE": "Germany", "CA": "Canada", "FR": "France"}
_CONTINENTS = {"US": ("NA", "North America"), "CA": ("NA", "North America"),
               "DE": ("EU", "Europe"), "FR": ("EU", "Europe")}


def write_country_db(path: str | os.PathLike[str], database_type: str = "GeoLite2-Country",
                     entries: Mapping[str, str] = DEFAULT_COUNTRIES, *, ip_version: int = 6) -> None:
    """Write a Country database: {network: iso_code}."""
    _write(path, database_type, {network: _country_record(iso) for network, iso in entries.items()}, ip_version)


def write_city_db(path: str | os.PathLike[str], database_type: str = "GeoLite2-City",
                  entries: Mapping[str, CityEntry] = DEFAULT_CITIES, *, ip_version: int = 6) -> None:
    """Write a City database: {network: CityEntry}."""
    _write(path, database_type, {network: _city_record(CityEntry(*entry)) for network, entry in entries.items()},
           ip_version)


def _write(path: str | os.PathLike[str], database_type: str, records: Mapping[str, dict[str, Any]],
           ip_version: int) -> None:
    # An IPv6 database keeps IPv4 networks at ::a.b.c.d/96+n, as MaxMind's own databases do;
    # mmdb-writer refuses IPv4 networks in an IPv6 database without ipv4_compatible.
    writer = MMDBWriter(ip_version=ip_version, ipv4_compatible=ip_version == 6, database_type=database_type,
                        languages=["en"], description="mfa-engine test database")
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(os.fspath(path))


def _country_record(iso_code: str) -> dict[str, Any]:
    # Countries the writer has no name or continent for are written without them, as a
    # database that lacks these fields would be.
    record: dict[str, Any] = {"country": {"iso_code": iso_code}}
    if iso_code in _COUNTRY_NAMES:
        record["country"]["names"] = {"en": _COUNTRY_NAMES[iso_code]}
    if iso_code in _CONTINENTS:
        code, name = _CONTINENTS[iso_code]
        record["continent"] = {"code": code, "names": {"en": name}}
    return record


def _city_record(entry: CityEntry) -> dict[str, Any]:
    record = _country_record(entry.iso_code)
    if entry.city is not None:
        record["city"] = {"names": {"en": entry.city}}
    if entry.subdivisions:
        record["subdivisions"] = [{"iso_code": code} for code in entry.subdivisions]
    location: dict[str, Any] = {}
    if entry.latitude is not None and entry.longitude is not None:
        # float(): mmdb-writer encodes a Python int as an integer type, so a whole-degree
        # coordinate would come back as int where MaxMind's databases hold a double.
        location = {"latitude": float(entry.latitude), "longitude": float(entry.longitude)}
        if entry.accuracy_radius is not None:
            location["accuracy_radius"] = entry.accuracy_radius
    if entry.time_zone is not None:
        location["time_zone"] = entry.time_zone
    if location:
        record["location"] = location
    return record


def write_demo_database(path: str | os.PathLike[str]) -> None:
    """The database `./dev serve` uses: a City database with the default entries."""
    write_city_db(path)
