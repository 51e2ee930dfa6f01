"""GeoIP lookups against real databases written with mmdb-writer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from engine.geo import CACHE_SIZE, GeoFacts, GeoLocator, MaxMindLocator, NoGeoLocator, open_locator
from engine.demo_geoip import UNKNOWN_IPV4, UNKNOWN_IPV6, CityEntry, write_city_db, write_country_db

Networks = tuple[IPv4Network | IPv6Network, ...]
DOCUMENTATION: Networks = tuple(
    ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))
OpenLocator = Callable[..., GeoLocator]

SPRINGFIELD = GeoFacts("US", "Springfield", 39.8, -89.65, 50, "United States", "NA", "IL", "America/Chicago")
BERLIN = GeoFacts("DE", "Berlin", 52.52, 13.405, 20, "Germany", "EU", "BE", "Europe/Berlin")
TORONTO = GeoFacts("CA", "Toronto", 43.65, -79.38, 10, "Canada", "NA", "ON", "America/Toronto")
# Two levels of subdivision (region IDF, department 75): the most specific one is kept.
PARIS = GeoFacts("FR", "Paris", 48.857, 2.352, 100, "France", "EU", "75", "Europe/Paris")
# What a Country database says: no city, coordinates, subdivision or time zone.
COUNTRY_ONLY = {
    "US": GeoFacts("US", None, None, None, None, "United States", "NA"),
    "DE": GeoFacts("DE", None, None, None, None, "Germany", "EU"),
    "CA": GeoFacts("CA", None, None, None, None, "Canada", "NA"),
    "FR": GeoFacts("FR", None, None, None, None, "France", "EU"),
}


@pytest.fixture
def locator_for() -> Iterator[OpenLocator]:
    """open_locator(path) letting the documentation ranges through; closes what it opened."""
    opened: list[GeoLocator] = []

    def open_(path: str | None, allow_networks: Networks = DOCUMENTATION) -> GeoLocator:
        locator = open_locator(path, allow_networks=allow_networks)
        opened.append(locator)
        return locator

    yield open_
    for locator in opened:
        locator.close()


@pytest.mark.parametrize(("ip", "country"), [
    ("203.0.113.7", "US"), ("198.51.100.250", "DE"), ("192.0.2.1", "CA"), ("192.0.2.127", "CA"),
    ("2001:db8:1::42", "FR"), ("2001:db8:1:ffff:ffff:ffff:ffff:ffff", "FR"),
])
def test_a_country_database_gives_only_the_country_of_ipv4_and_ipv6_addresses(
        locator_for: OpenLocator, country_db: str, ip: str, country: str) -> None:
    assert locator_for(country_db).lookup(ip) == COUNTRY_ONLY[country]


@pytest.mark.parametrize(("ip", "facts"), [
    ("203.0.113.7", SPRINGFIELD), ("198.51.100.9", BERLIN), ("192.0.2.64", TORONTO), ("2001:db8:1:2::3", PARIS),
])
def test_a_city_database_gives_country_city_and_coordinates_of_ipv4_and_ipv6_addresses(
        locator_for: OpenLocator, city_db: str, ip: str, facts: GeoFacts) -> None:
    assert locator_for(city_db).lookup(ip) == facts


@pytest.mark.parametrize("database_type", ["GeoIP2-Country", "GeoLite2-Country", "DBIP-Country-Lite"])
def test_every_supported_country_database_type_is_read_with_the_country_reader(
        locator_for: OpenLocator, tmp_path: Path, database_type: str) -> None:
    path = str(tmp_path / "country.mmdb")
    write_country_db(path, database_type)
    locator = locator_for(path)
    assert isinstance(locator, MaxMindLocator)
    assert locator.lookup("203.0.113.7") == COUNTRY_ONLY["US"]
    assert locator.lookup("2001:db8:1::1") == COUNTRY_ONLY["FR"]


@pytest.mark.parametrize("database_type", ["GeoIP2-City", "GeoLite2-City", "DBIP-City-Lite"])
def test_every_supported_city_database_type_is_read_with_the_city_reader(
        locator_for: OpenLocator, tmp_path: Path, database_type: str) -> None:
    path = str(tmp_path / "city.mmdb")
    write_city_db(path, database_type)
    locator = locator_for(path)
    assert locator.lookup("198.51.100.9") == BERLIN
    assert locator.lookup("2001:db8:1::1") == PARIS


def test_a_city_record_without_city_location_subdivision_or_time_zone_still_gives_the_country(
        locator_for: OpenLocator, tmp_path: Path) -> None:
    path = str(tmp_path / "city.mmdb")
    write_city_db(path, entries={"203.0.113.0/24": CityEntry("US", None, None, None, None),
                                 "198.51.100.0/24": CityEntry("DE", None, 51.0, 9.0, 1000)})
    locator = locator_for(path)
    assert locator.lookup("203.0.113.7") == COUNTRY_ONLY["US"]
    assert locator.lookup("198.51.100.7") == GeoFacts("DE", None, 51.0, 9.0, 1000, "Germany", "EU")


def test_a_time_zone_without_coordinates_is_still_given(locator_for: OpenLocator, tmp_path: Path) -> None:
    # DB-IP's and MaxMind's records may carry location.time_zone alone.
    path = str(tmp_path / "city.mmdb")
    write_city_db(path, "DBIP-City-Lite",
                  entries={"203.0.113.0/24": CityEntry("US", None, None, None, None, time_zone="America/New_York")})
    assert locator_for(path).lookup("203.0.113.7") == GeoFacts(
        "US", None, None, None, None, "United States", "NA", None, "America/New_York")


def test_a_database_without_names_or_continents_leaves_them_none(locator_for: OpenLocator, tmp_path: Path) -> None:
    # The writer knows names and continents of US, DE, CA and FR only: NL is written bare.
    country_path, city_path = str(tmp_path / "country.mmdb"), str(tmp_path / "city.mmdb")
    write_country_db(country_path, entries={"203.0.113.0/24": "NL"})
    write_city_db(city_path, entries={"203.0.113.0/24": CityEntry("NL", "Amsterdam", 52.37, 4.9, 5)})
    assert locator_for(country_path).lookup("203.0.113.7") == GeoFacts("NL", None, None, None, None)
    assert locator_for(city_path).lookup("203.0.113.7") == GeoFacts("NL", "Amsterdam", 52.37, 4.9, 5)


@pytest.mark.parametrize("database", ["country_db", "city_db"])
def test_repeated_lookups_of_one_address_are_answered_from_the_cache(
        locator_for: OpenLocator, request: pytest.FixtureRequest, database: str) -> None:
    locator = locator_for(request.getfixturevalue(database))
    assert isinstance(locator, MaxMindLocator)
    first = locator.lookup("203.0.113.7")
    assert locator.lookup("203.0.113.7") is first
    info = locator.lookup.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses, info.maxsize) == (1, 1, CACHE_SIZE)


@pytest.mark.parametrize("ip", [UNKNOWN_IPV4, "192.0.2.128", UNKNOWN_IPV6, "2001:db8::1"])
@pytest.mark.parametrize("database", ["country_db", "city_db"])
def test_an_address_the_database_does_not_hold_is_unknown(
        locator_for: OpenLocator, request: pytest.FixtureRequest, database: str, ip: str) -> None:
    assert locator_for(request.getfixturevalue(database)).lookup(ip) is None


def test_documentation_ranges_are_unknown_unless_allowed_because_ipaddress_does_not_count_them_global(
        locator_for: OpenLocator, country_db: str) -> None:
    assert locator_for(country_db, allow_networks=()).lookup("203.0.113.7") is None
    assert locator_for(country_db, allow_networks=()).lookup("2001:db8:1::42") is None


NON_PUBLIC = {
    "10.0.0.1": "10.0.0.0/8",
    "192.168.1.10": "192.168.0.0/16",
    "127.0.0.1": "127.0.0.0/8",
    "169.254.10.20": "169.254.0.0/16",
    "0.0.0.0": "0.0.0.0/8",
    "224.0.0.1": "224.0.0.0/4",
    "239.255.255.250": "224.0.0.0/4",
    "240.0.0.1": "240.0.0.0/4",
    "100.64.0.1": "100.64.0.0/10",
    "::ffff:10.0.0.1": "10.0.0.0/8",
    "::ffff:127.0.0.1": "127.0.0.0/8",
    "fd00::1": "fc00::/7",
    "fe80::1": "fe80::/10",
    "ff02::1": "ff00::/8",
    "ff0e::1": "ff00::/8",
}


@pytest.fixture
def non_public_db(tmp_path: Path) -> str:
    path = str(tmp_path / "non-public.mmdb")
    write_country_db(path, entries={network: "NL" for network in sorted(set(NON_PUBLIC.values()))})
    return path


@pytest.mark.parametrize(("ip", "network"), NON_PUBLIC.items(), ids=list(NON_PUBLIC))
def test_private_loopback_link_local_reserved_and_multicast_addresses_are_unknown_even_when_the_database_has_them(
        locator_for: OpenLocator, non_public_db: str, ip: str, network: str) -> None:
    assert locator_for(non_public_db).lookup(ip) is None
    # The same database does answer once the network is allowed: the None above is the check's.
    allowed = locator_for(non_public_db, allow_networks=(ip_network(network),))
    assert allowed.lookup(ip) == GeoFacts("NL", None, None, None, None)


@pytest.mark.parametrize("ip", ["::", "::1", "::203.0.113.7", "::ffff:0:0"])
def test_addresses_in_the_ipv4_compatible_range_are_unknown_although_the_database_keeps_ipv4_there(
        locator_for: OpenLocator, country_db: str, ip: str) -> None:
    assert locator_for(country_db, allow_networks=DOCUMENTATION + (ip_network("::/96"),)).lookup(ip) is None


@pytest.mark.parametrize("database", ["country_db", "city_db"])
def test_an_ipv4_mapped_ipv6_address_is_looked_up_as_its_ipv4_address(
        locator_for: OpenLocator, request: pytest.FixtureRequest, database: str) -> None:
    locator = locator_for(request.getfixturevalue(database))
    assert locator.lookup("::ffff:203.0.113.7") == locator.lookup("203.0.113.7")
    assert locator.lookup("::ffff:203.0.113.7") is not None
    assert locator.lookup(f"::ffff:{UNKNOWN_IPV4}") is None


def test_an_ipv6_address_against_an_ipv4_only_database_is_unknown(locator_for: OpenLocator, tmp_path: Path) -> None:
    path = str(tmp_path / "ipv4-only.mmdb")
    write_country_db(path, entries={"203.0.113.0/24": "US"}, ip_version=4)
    locator = locator_for(path)
    assert locator.lookup("2001:db8:1::42") is None
    assert locator.lookup("203.0.113.7") == COUNTRY_ONLY["US"]


@pytest.mark.parametrize("ip", [
    "", " ", "not-an-ip", "203.0.113", "203.0.113.7.1", "203.0.113.256", "0203.0.113.7", " 203.0.113.7",
    "203.0.113.7:443", "203.0.113.0/24", "[2001:db8:1::1]", "2001:db8:1::g", "2001:db8:1:::1", "localhost",
])
def test_a_malformed_address_is_unknown(locator_for: OpenLocator, city_db: str, ip: str) -> None:
    assert locator_for(city_db).lookup(ip) is None


@pytest.mark.parametrize(("stored", "expected"), [("us", "US"), ("ZZ", None), ("USA", None), ("1A", None)])
def test_country_codes_are_upper_case_alpha_2_or_none(
        locator_for: OpenLocator, tmp_path: Path, stored: str, expected: str | None) -> None:
    path = str(tmp_path / "country.mmdb")
    write_country_db(path, entries={"203.0.113.0/24": stored})
    facts = locator_for(path).lookup("203.0.113.7")
    assert facts is not None and facts.country == expected


@pytest.mark.parametrize("path", [None, ""])
def test_without_a_database_every_address_is_unknown_and_a_warning_says_so(
        locator_for: OpenLocator, caplog: pytest.LogCaptureFixture, path: str | None) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.geo"):
        locator = locator_for(path)
    assert isinstance(locator, NoGeoLocator)
    assert locator.lookup("203.0.113.7") is None
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("engine.geo", logging.WARNING,
         "no GeoIP database configured: context.connection.ip_country is None for every login")]


def test_a_configured_database_that_does_not_exist_stops_startup(tmp_path: Path) -> None:
    path = str(tmp_path / "GeoLite2-City.mmdb")
    with pytest.raises(FileNotFoundError, match="GeoLite2-City.mmdb") as raised:
        open_locator(path)
    assert raised.value.filename == path


@pytest.mark.parametrize("database_type", ["GeoIP2-ISP", "GeoLite2-ASN", "GeoIP2-Anonymous-IP", "GeoIP"])
def test_an_unsupported_database_type_is_refused_when_opened(tmp_path: Path, database_type: str) -> None:
    path = str(tmp_path / "other.mmdb")
    write_country_db(path, database_type)
    with pytest.raises(ValueError, match=f"unsupported GeoIP database type '{database_type}'"):
        open_locator(path, allow_networks=DOCUMENTATION)


def test_geo_facts_become_the_plain_data_rules_receive(locator_for: OpenLocator, city_db: str) -> None:
    facts = locator_for(city_db).lookup("203.0.113.7")
    assert facts is not None
    assert facts.to_plain() == {"country": "US", "city": "Springfield", "latitude": 39.8,
                                "longitude": -89.65, "accuracy_radius": 50, "country_name": "United States",
                                "continent": "NA", "subdivision": "IL", "time_zone": "America/Chicago"}


def test_country_facts_become_plain_data_with_none_where_the_database_says_nothing(
        locator_for: OpenLocator, country_db: str) -> None:
    facts = locator_for(country_db).lookup("198.51.100.7")
    assert facts is not None
    assert facts.to_plain() == {"country": "DE", "city": None, "latitude": None, "longitude": None,
                                "accuracy_radius": None, "country_name": "Germany", "continent": "EU",
                                "subdivision": None, "time_zone": None}


def test_a_subdivision_without_an_iso_code_is_none_not_its_name(locator_for: OpenLocator, tmp_path: Path) -> None:
    # DB-IP Lite names subdivisions without codes; a name would not compare with the codes
    # MaxMind gives ("Illinois" vs "IL"), so rules see None and decide what unknown means.
    path = str(tmp_path / "dbip-city.mmdb")
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="DBIP-City-Lite", languages=["en"])
    writer.insert_network(IPSet(["203.0.113.0/24"]), {
        "country": {"iso_code": "US", "names": {"en": "United States"}}, "continent": {"code": "NA"},
        "subdivisions": [{"names": {"en": "Illinois"}}], "city": {"names": {"en": "Springfield"}},
        "location": {"latitude": 39.8, "longitude": -89.65, "time_zone": "America/Chicago"}})
    writer.to_db_file(path)
    assert locator_for(path).lookup("203.0.113.7") == GeoFacts(
        "US", "Springfield", 39.8, -89.65, None, "United States", "NA", None, "America/Chicago")
