"""GET /docs: the API document (engine/http/openapi.py) as one readable HTML page, written on the server.

Written from the document itself, so the page shows what /openapi.json says and nothing else. It
loads nothing: no script, no font, no stylesheet from anywhere; its one style element is allowed
by its hash in a Content-Security-Policy that allows nothing else (no 'unsafe-inline'). Every
text from the document is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2125}
h1{margin-bottom:0}h2{margin-top:2.5rem;border-bottom:1px solid #ccd}h3{margin:2rem 0 .3rem}
code,.path{font-family:ui-monospace,monospace}.method{display:inline-block;min-width:4.2rem;font-weight:bold}
.get{color:#0b6b2e}.post{color:#0a4f9e}.put,.patch{color:#8a5300}.delete{color:#a3161b}
section.op{border-top:1px solid #e3e5e8;padding-top:.4rem}ul.schema{margin:.2rem 0;padding-left:1.2rem}
.note{color:#555}.status{font-weight:bold}nav ul{columns:2}a{color:#0a4f9e}
""".strip()
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": f"default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
}
_METHODS = ("get", "post", "put", "patch", "delete")
_REF = "#/components/schemas/"


def render(document: Mapping[str, Any]) -> str:
    info = document["info"]
    operations = [(path, method, operation) for path, item in document["paths"].items()
                  for method, operation in item.items() if method in _METHODS]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(info['title'])} API</title>",
             f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_STYLE}</style></head><body>",
             f"<h1>{escape(info['title'])} API <small class=note>{escape(info['version'])}</small></h1>",
             f"<p>{escape(info.get('description', ''))}</p>",
             "<p class=note>The machine-readable document: <a href='/openapi.json'>/openapi.json</a> "
             "(OpenAPI 3.1).</p>", _contents(document, operations)]
    for tag in document.get("tags", []):
        parts.append(f"<h2 id='tag-{escape(tag['name'])}'>{escape(tag['name'].capitalize())}</h2>"
                     f"<p class=note>{escape(tag.get('description', ''))}</p>")
        parts.extend(_operation(path, method, operation, document) for path, method, operation in operations
                     if tag["name"] in operation.get("tags", []))
    parts.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3>{_schema(schema)}")
    parts.append("</body></html>")
    return "".join(parts)


def _contents(document: Mapping[str, Any], operations: list[tuple[str, str, Mapping[str, Any]]]) -> str:
    items = "".join(f"<li><a href='#{_anchor(operation)}'><span class='method {method}'>{method.upper()}</span> "
                    f"<span class=path>{escape(path)}</span></a></li>" for path, method, operation in operations)
    return f"<nav><ul>{items}</ul></nav>"


def _anchor(operation: Mapping[str, Any]) -> str:
    return "op-" + escape(str(operation.get("operationId", "")))


def _operation(path: str, method: str, operation: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    security = [name for requirement in operation.get("security", []) for name in requirement]
    parts = [f"<section class=op id='{_anchor(operation)}'><h3><span class='method {method}'>{method.upper()}</span>"
             f" <span class=path>{escape(path)}</span></h3><p>{escape(operation.get('summary', ''))}</p>",
             "<p class=note>Authorization: " + (", ".join(
                 f"Bearer &lt;{escape(_scheme_note(document, name))}&gt;" for name in security) or "none") + "</p>"]
    parameters = operation.get("parameters", [])
    if parameters:
        parts.append("<p>Parameters:</p><ul class=schema>" + "".join(
            f"<li><code>{escape(p['name'])}</code> ({escape(p['in'])}{', required' if p.get('required') else ''}) "
            f"{_summary(p.get('schema', {}))} <span class=note>{escape(p.get('description', ''))}</span></li>"
            for p in parameters) + "</ul>")
    body = operation.get("requestBody")
    if body is not None:
        schema = body["content"]["application/json"]["schema"]
        parts.append(f"<p>Request body (application/json): {_summary(schema)}</p>" + _schema(_resolved(schema, document)))
    parts.append("<p>Responses:</p><ul class=schema>")
    for status, response in operation["responses"].items():
        parts.append(f"<li><span class=status>{escape(status)}</span> {_response(response, document)}</li>")
    parts.append("</ul></section>")
    return "".join(parts)


def _resolved(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].removeprefix(_REF)]  # type: ignore[no-any-return]
    return schema


def _scheme_note(document: Mapping[str, Any], name: str) -> str:
    description = document["components"]["securitySchemes"][name].get("description", name)
    return str(description).rstrip(".")


def _response(response: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    text = escape(response.get("description", ""))
    for media_type, content in response.get("content", {}).items():
        text += f" <span class=note>({escape(media_type)})</span> {_summary(content.get('schema', {}))}"
    return text


def _schema(schema: Mapping[str, Any]) -> str:
    """A schema as a nested list: each property with its type, bounds and notes."""
    if "$ref" in schema:
        return f"<p>{_summary(schema)}</p>"
    if "properties" in schema:
        required = set(schema.get("required", []))
        items = "".join(
            f"<li><code>{escape(name)}</code>{' <b>required</b>' if name in required else ''}: "
            f"{_summary(child)}{_nested(child)}</li>" for name, child in schema["properties"].items())
        return f"<ul class=schema>{items}</ul>"
    return f"<p>{_summary(schema)}</p>"


def _nested(schema: Mapping[str, Any]) -> str:
    inner = schema.get("items", schema)
    for alternative in inner.get("anyOf", []):
        if "properties" in alternative:
            inner = alternative
    return _schema(inner) if "properties" in inner else ""


def _summary(schema: Mapping[str, Any]) -> str:
    """One line: the type (a link for a named schema), its bounds and its description."""
    if "$ref" in schema:
        name = escape(schema["$ref"].removeprefix(_REF))
        return f"<a href='#schema-{name}'>{name}</a>"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(_summary(part) for part in schema[key])
    if "allOf" in schema:  # a named schema narrowed by a part without a type (an error's codes): the name says it
        return " and ".join(_summary(part) for part in schema["allOf"] if "$ref" in part or "type" in part)
    kind = schema.get("type", "any JSON")
    words = [escape(" or ".join(kind) if isinstance(kind, list) else str(kind))]
    if "items" in schema:
        words.append("of " + _summary(schema["items"]))
    words.extend(escape(f"{label} {schema[key]}") for key, label in (
        ("minLength", "min length"), ("maxLength", "max length"), ("minimum", "from"), ("maximum", "to"),
        ("maxItems", "at most"), ("maxProperties", "at most"), ("format", "format"), ("default", "default"))
        if key in schema)
    if "enum" in schema:
        words.append("one of " + ", ".join(f"<code>{escape(_json(value))}</code>" for value in schema["enum"]))
    if "pattern" in schema:
        words.append(f"matching <code>{escape(schema['pattern'])}</code>")
    if "description" in schema:
        words.append(f"<span class=note>— {escape(schema['description'])}</span>")
    return " ".join(words)


def _json(value: object) -> str:
    return "null" if value is None else str(value)
