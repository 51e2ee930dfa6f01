"""The pages' client address behind trusted proxies, through the real HTTP stack (red-team
findings): every X-Forwarded-For line is read (a proxy that adds a line of its own leaves the
client's forged one first), and a hop written with a port still names its address."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from engine.config import HttpSettings
from tests.conftest import LoopThread
from tests.engine.pages.harness import PageBrowser, start_pages_service, text_of
from tests.engine.pages.test_login_pages import PASSWORD, START

SHOW_IP = '''"""Refuse everyone, naming the address the engine saw."""

def rule(user, context):
    context.deny("seen from " + str(context.connection.ip))
'''


@pytest.mark.parametrize(("lines", "seen"), [
    # The client's forged line first, the proxy's own line (the real client) second.
    ([("x-forwarded-for", "198.51.100.77"), ("x-forwarded-for", "203.0.113.5")], "203.0.113.5"),
    ([("x-forwarded-for", "203.0.113.5:4711")], "203.0.113.5"),
])
def test_the_pages_see_the_address_the_trusted_proxy_wrote(tmp_path: Path, loop_thread: LoopThread,
                                                          lines: list[tuple[str, str]], seen: str) -> None:
    for service in start_pages_service(tmp_path, loop_thread, "memory", rules={"10-ip": SHOW_IP},
                                       http=HttpSettings(trusted_proxies=("127.0.0.0/8",))):
        service.create_user()
        browser = PageBrowser(service)
        browser.get(START)
        found = re.search(r'name="csrf" value="([^"]+)"', browser.last.text)
        assert found is not None
        page = browser.post("/login", {"csrf": found.group(1), "username": "alice", "password": PASSWORD},
                            headers=httpx.Headers(lines))
        assert f"seen from {seen}" in text_of(page.text)
        browser.close()
