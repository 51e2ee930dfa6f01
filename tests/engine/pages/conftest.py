"""Browser tests (`@pytest.mark.browser`) drive Debian's Chromium with Playwright against a live
uvicorn. They take minutes, so `./dev test` skips them unless BROWSER_TESTS=1, which CI
(.ci/run) sets after installing Chromium; with BROWSER_TESTS=1 a missing browser or Playwright
is a failure, not a skip. Also the `browser` fixture every pages module shares (on its own
`service` fixture)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.pages.harness import PageBrowser, PagesService

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BROWSER_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="browser test: set BROWSER_TESTS=1 (as .ci/run does) to run it")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _browser_requirements(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("browser") is None:
        return
    missing = [what for what, present in (
        (f"Chromium at {CHROMIUM}", Path(CHROMIUM).exists()),
        ("the playwright package", importlib.util.find_spec("playwright") is not None)) if not present]
    if missing:
        pytest.fail(f"BROWSER_TESTS=1 but {' and '.join(missing)} missing: run .ci/run, or apt-get install -y "
                    "chromium and ./dev test (which installs playwright)")


@pytest.fixture
def browser(service: PagesService) -> Iterator[PageBrowser]:
    """A page browser on the module's `service` fixture."""
    opened = PageBrowser(service)
    yield opened
    opened.close()
