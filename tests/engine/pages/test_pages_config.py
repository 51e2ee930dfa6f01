"""The hosted pages' settings: clients, branding and http.trusted_proxies, read as strictly as the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ClientSettings, ConfigError, Settings, load_settings


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ=environ or {})


def test_a_client_reads_with_its_name_redirect_uris_and_public_flag(tmp_path: Path) -> None:
    settings = load(tmp_path, "clients: {demo: {name: Demo App, redirect_uris: ['https://app.example.com/callback'],"
                              " public: false}, cli: {redirect_uris: ['http://127.0.0.1:8765/cb'], public: true}}\n")
    assert settings.clients["demo"] == ClientSettings("Demo App", ("https://app.example.com/callback",), False)
    assert settings.clients["cli"].public is True


def test_clients_can_come_from_the_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, "", {"MFA_CLIENTS": '{"demo": {"redirect_uris": ["https://a.example/cb"]}}'})
    assert settings.clients["demo"].redirect_uris == ("https://a.example/cb",)


@pytest.mark.parametrize(("text", "message"), [
    ("clients: {demo: {name: x}}\n", "clients.demo.redirect_uris: at least one is required"),
    ("clients: {demo: {redirect_uris: ['http://app.example.com/cb']}}\n", "clients.demo.redirect_uris: each must"),
    ("clients: {demo: {redirect_uris: ['https://app.example.com/cb#x']}}\n", "clients.demo.redirect_uris: each must"),
    ("clients: {demo: {redirect_uris: ['https://u:p@app.example.com/cb']}}\n", "clients.demo.redirect_uris: each"),
    ("clients: {demo: {redirect_uris: ['javascript:alert(1)']}}\n", "clients.demo.redirect_uris: must be an http"),
    ("clients: {demo: {redirect_uris: ['https://例え.jp/cb']}}\n", "clients.demo.redirect_uris: each must"),
    ("clients: {demo: {redirect_uris: ['https://a.example;x/cb']}}\n", "clients.demo.redirect_uris: each must"),
    ("clients: {demo: {redirect_uris: ['https://a.example/cb'], colour: red}}\n", "clients.demo.colour: unknown key"),
    ("clients: {'bad id': {redirect_uris: ['https://a.example/cb']}}\n", "clients: keys must be client ids"),
    ("clients: [demo]\n", "clients: must be a mapping"),
    ("branding: {primary_color: red}\n", "branding.primary_color: must be a colour like #1d4ed8"),
    ("branding: {primary_color: '#12345;'}\n", "branding.primary_color: must be a colour"),
    ("branding: {texts: {de: {title: [x]}}}\n", "branding.texts.de: must be a mapping of strings to strings"),
    ("branding: {support_url: 'javascript:x'}\n", "branding.support_url: must be an http"),
    ("http: {trusted_proxies: [10.0.0.0/33]}\n", "http.trusted_proxies: items must be networks in CIDR notation"),
])
def test_bad_page_settings_stop_startup_with_their_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        load(tmp_path, text)


def test_branding_and_trusted_proxies_read(tmp_path: Path) -> None:
    settings = load(tmp_path, "branding: {product_name: Acme, primary_color: '#aa0000', texts: {de: {title_password:"
                              " Willkommen}}}\nhttp: {trusted_proxies: [10.0.0.0/8, '2001:db8::/32']}\n")
    assert settings.branding.product_name == "Acme"
    assert settings.branding.texts == {"de": {"title_password": "Willkommen"}}
    assert settings.http.trusted_proxies == ("10.0.0.0/8", "2001:db8::/32")
