"""The pages' client address (X-Forwarded-For only behind trusted proxies) and language choice."""

from __future__ import annotations

import pytest

from engine.pages import i18n
from engine.pages.client_ip import client_ip, networks

PROXIES = networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(("peer", "header", "seen"), [
    ("203.0.113.9", None, "203.0.113.9"),
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),              # an untrusted peer's header is ignored
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),       # what the client wrote, left of it, is not read
    ("10.0.0.5", "198.51.100.1, 10.1.2.3", "198.51.100.1"),      # proxies of ours are skipped, right to left
    ("10.0.0.5", "10.1.2.3", "10.0.0.5"),                        # only proxies: the request began inside
    ("10.0.0.5", "not-an-address", "10.0.0.5"),                  # no address in the hop: the proxy's stands in
    ("10.0.0.5", "203.0.113.5:4711", "203.0.113.5"),             # a port after the address (Azure, IIS ARR)
    ("10.0.0.5", "[2001:db8:1::7]:443", "2001:db8:1::7"),
    ("10.0.0.5", "198.51.100.1, 10.1.2.3:8080", "198.51.100.1"),  # a proxy of ours with a port is still ours
    ("10.0.0.5", "6.6.6.6, 203.0.113.5", "203.0.113.5"),         # two header lines, joined: the last is the proxy's
    ("::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"),         # IPv4-mapped peers are their IPv4 address
    ("2001:db8:ffff::1", "2001:db8:1::7", "2001:db8:1::7"),
    (None, "198.51.100.1", None),
])
def test_the_client_is_the_socket_or_the_nearest_untrusted_forwarded_hop(peer: str | None, header: str | None,
                                                                       seen: str | None) -> None:
    assert client_ip(peer, header, PROXIES) == seen


@pytest.mark.parametrize(("header", "locale"), [
    ("de-DE,de;q=0.9,en;q=0.8", "de"), ("en-US,en;q=0.9,de;q=0.8", "en"), ("fr, de;q=0.5", "de"),
    ("de;q=0, en;q=0.1", "en"), ("fr", "en"), ("", "en"), (None, "en"), ("de;q=0.5, en;q=0.5", "de"),
    ("x" * 10_000, "en"), ("de;q=banana", "en"),
])
def test_accept_language_picks_the_preferred_supported_language(header: str | None, locale: str) -> None:
    assert i18n.from_accept_language(header) == locale


def test_ui_locales_names_languages_in_order_of_preference() -> None:
    assert i18n.from_ui_locales("fr-CA de-AT en") == "de"
    assert i18n.from_ui_locales("fr") is None
    assert i18n.from_ui_locales(None) is None


def test_every_language_has_every_text_and_the_same_placeholders() -> None:
    for locale, texts in i18n.CATALOGUES.items():
        assert texts.keys() == i18n.EN.keys(), locale
        for key, text in texts.items():
            assert sorted(i18n._PLACEHOLDER.findall(text)) == sorted(i18n._PLACEHOLDER.findall(i18n.EN[key])), key


def test_texts_are_filled_without_str_format() -> None:
    assert i18n.fill("{client.__class__} {client}", {"client": "Demo"}) == "{client.__class__} Demo"
