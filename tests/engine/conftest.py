"""Engine fixtures: GeoIP databases holding the default documentation-range entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.demo_geoip import write_city_db, write_country_db


@pytest.fixture
def country_db(tmp_path: Path) -> str:
    """Path of a GeoLite2-Country database with engine.demo_geoip.DEFAULT_COUNTRIES."""
    path = str(tmp_path / "GeoLite2-Country.mmdb")
    write_country_db(path)
    return path


@pytest.fixture
def city_db(tmp_path: Path) -> str:
    """Path of a GeoLite2-City database with engine.demo_geoip.DEFAULT_CITIES."""
    path = str(tmp_path / "GeoLite2-City.mmdb")
    write_city_db(path)
    return path
