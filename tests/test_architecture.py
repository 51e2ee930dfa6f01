"""The direction of imports (docs/architecture.md): checked from the source, so it cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def starts_with_any(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("path", modules("sandbox"), ids=lambda p: p.name)
def test_the_sandbox_never_imports_the_engine_or_any_service(path: Path) -> None:
    forbidden = ("engine", "starlette", "uvicorn", "redis", "geoip2", "httpx", "yaml")
    assert not [name for name in imports_of(path) if starts_with_any(name, forbidden)]


@pytest.mark.parametrize("module", ["rule_api.py", "rule_host.py", "metadata.py"])
def test_what_workers_load_imports_only_the_standard_library_and_the_sandbox(module: str) -> None:
    # It runs inside worker processes, which must stay small and hold no clients.
    allowed = ("__future__", "json", "math", "operator", "collections", "datetime", "types", "typing", "urllib.parse",
                   "ipaddress", "re", "sandbox",
               "engine.rule_api", "engine.metadata")
    imported = imports_of(ROOT / "engine" / module)
    assert imported
    assert [name for name in imported if not starts_with_any(name, allowed)] == []


# The hosted pages (engine/pages/) are a second face of the HTTP layer, beside engine/http/.
WEB = ("http", "pages")


@pytest.mark.parametrize("path", [p for p in modules("engine") if not set(WEB) & set(p.parts) and p.name not in
                                  {"app.py", "cli.py", "users_cli.py"}], ids=lambda p: p.name)
def test_only_the_http_layer_and_the_composition_root_know_starlette(path: Path) -> None:
    assert not [name for name in imports_of(path) if starts_with_any(name, ("starlette", "uvicorn"))]


@pytest.mark.parametrize("path", modules("engine") + modules("sandbox"), ids=lambda p: p.name)
def test_nothing_imports_the_composition_root_but_the_cli(path: Path) -> None:
    if path.name in {"cli.py", "users_cli.py", "keys_cli.py"}:
        return
    assert "engine.app" not in imports_of(path)


@pytest.mark.parametrize("path", [p for p in modules("engine") if not set(WEB) & set(p.parts) and p.name != "app.py"],
                         ids=lambda p: p.name)
def test_the_core_never_imports_the_http_layer(path: Path) -> None:
    assert not [name for name in imports_of(path) if starts_with_any(name, ("engine.http", "engine.pages"))]


@pytest.mark.parametrize("path", modules("engine/http"), ids=lambda p: p.name)
def test_the_json_api_does_not_import_the_pages(path: Path) -> None:
    assert not [name for name in imports_of(path) if starts_with_any(name, ("engine.pages",))]
