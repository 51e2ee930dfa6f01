"""Reading a page's form (application/x-www-form-urlencoded), bounded in size and fields.

The pages' forms are small and flat: a field given twice, a body larger than FORM_MAX_BYTES or
text that is not UTF-8 is a refused form, never a guess."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_MAX_BYTES = 8192
FORM_MAX_FIELDS = 16


class BadForm(Exception):
    """The body is not one of the pages' forms."""


async def read_form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise BadForm("not a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise BadForm("too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=FORM_MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm("not a form") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise BadForm("a field given twice")
        form[name] = value
    return form
