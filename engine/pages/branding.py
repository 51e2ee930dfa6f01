"""How the pages look: the Jinja2 environment (built-in templates, or a theme's from
`branding.templates_dir` first), the theme stylesheet from the branding colours, and the
static files the pages may serve (a fixed list: no path from a request reaches the disk)."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from engine.config import Settings
from engine.pages import i18n

BUILT_IN = Path(__file__).resolve().parent
STATIC_PREFIX = "/login/static/"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Branding:
    product_name: str
    logo_src: str | None  # an https URL, or the pages' own copy of logo_file
    logo_origin: str | None  # for img-src, when the logo is elsewhere
    support_url: str | None
    has_custom_css: bool
    texts: dict[str, dict[str, str]]
    templates: jinja2.Environment
    static: dict[str, StaticFile]


def build(settings: Settings) -> Branding:
    """Raises ValueError (i18n.UnknownText, OSError for a missing file) for branding that cannot be served."""
    branding = settings.branding
    static = {name: _read(BUILT_IN / "static" / name) for name in ("pages.css", "pages.js")}
    static["theme.css"] = StaticFile(_theme(branding.primary_color, branding.background_color).encode(), "text/css")
    logo_src, logo_origin = None, None
    if branding.logo_file:
        logo = settings.path(branding.logo_file)
        static["logo"] = _read(logo)
        logo_src = STATIC_PREFIX + "logo"
    elif branding.logo_url:
        parts = urlsplit(branding.logo_url)
        logo_src, logo_origin = branding.logo_url, f"{parts.scheme}://{parts.netloc}"
    if branding.custom_css:
        static["custom.css"] = StaticFile(settings.path(branding.custom_css).read_bytes(), "text/css")
    folders = [str(settings.path(branding.templates_dir))] if branding.templates_dir else []
    loader = jinja2.FileSystemLoader([*folders, str(BUILT_IN / "templates")])
    templates = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                                   trim_blocks=True, lstrip_blocks=True)
    return Branding(branding.product_name, logo_src, logo_origin, branding.support_url or None,
                    bool(branding.custom_css), i18n.catalogues(branding.texts), templates, static)


def _read(path: Path) -> StaticFile:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".svg":
        media_type = "image/svg+xml"
    return StaticFile(path.read_bytes(), media_type)


def _theme(primary: str, background: str) -> str:
    """The branding colours as CSS variables; both were checked to be #rrggbb (formats.COLOUR)."""
    return f":root {{ --primary: {primary}; --background: {background}; }}\n"
