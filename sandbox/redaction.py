"""Redaction of known secret strings from the text a program hands back, in every form Python's
text functions write them, applied before any cut or size check.

A host that hands its programs secrets (engine/rule_host.py: secret rule settings) gives its
binding a `Redactor`; the runner and the host apply it where program text enters the result (log
lines, error messages, the host's own free text). Two rules make it hold against a caller who
chooses the length of the text around a secret:

- redact first, cut after: a cut inside a secret would leave all but its last characters, which no
  longer match. `bounded` renders `margin` characters past the cut, replaces every secret whose
  first character lies before the cut (whole, even when it runs past), and never splits a marker;
- size checks see the redacted text, so a short secret that expands ("e" -> "[redacted]") is
  refused by the same bounds, never let past them.

It matches text: a program that slices, re-cases or encodes a secret defeats it (docs/rules.md).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

REDACTED = "[redacted]"


class Redactor:
    """Replaces each secret of `secrets` (and its repr, ascii, JSON and re.escape forms) by REDACTED.
    Without secrets every method returns its text unchanged at no cost."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[object] = ()) -> None:
        self._secrets: tuple[str, ...] = tuple(sorted({secret for secret in secrets if isinstance(secret, str) and secret}))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def needles(self) -> tuple[str, ...]:
        """Every form of every secret, longest first (computed once per set of secrets)."""
        return _needles(self._secrets) if self._secrets else ()

    @property
    def margin(self) -> int:
        """How far past a cut a secret that starts before it can reach."""
        needles = self.needles
        return len(needles[0]) if needles else 0

    def __call__(self, text: str) -> str:
        """`text` with every occurrence of a secret's form replaced (overlapping ones as one run)."""
        if not self._secrets or not text:
            return text
        return self._replace(text, len(text))

    def bounded(self, render: Callable[[int], str], max_chars: int) -> str:
        """At most `max_chars` characters of the redacted text `render(n)` begins (`render(n)` is the
        text's first n characters): a secret the cut would split is replaced whole, or dropped."""
        if not self._secrets:
            return render(max_chars)
        return self.cut(self._replace(render(max_chars + self.margin), max_chars), max_chars)

    def cut(self, text: str, max_chars: int) -> str:
        """`text[:max_chars]` of redacted text, moved back to the start of a marker it would split."""
        if len(text) <= max_chars:
            return text
        if self._secrets:
            marker = text.find(REDACTED, max(max_chars - len(REDACTED) + 1, 0), max_chars + len(REDACTED) - 1)
            if 0 <= marker < max_chars:
                return text[:marker]
        return text[:max_chars]

    def _replace(self, text: str, settled: int) -> str:
        """`text` redacted; past `settled`, only runs that begin before it are kept (the rest of the
        text may be an unfinished secret and is dropped)."""
        runs = self._runs(text)
        if not runs and settled >= len(text):
            return text
        parts: list[str] = []
        position = 0
        for start, end in runs:
            if start >= settled:
                break
            parts.append(text[position:start])
            parts.append(REDACTED)
            position = end
        if position < settled:
            parts.append(text[position:settled])
        return "".join(parts)

    def _runs(self, text: str) -> list[tuple[int, int]]:
        """Merged spans of every occurrence (overlapping ones too) of every form, except those lying
        wholly inside a marker already there: redacting twice changes nothing."""
        spans: list[tuple[int, int]] = []
        for needle in self.needles:
            start = text.find(needle)
            while start >= 0:
                spans.append((start, start + len(needle)))
                start = text.find(needle, start + 1)
        if not spans:
            return []
        markers = _markers(text)
        if markers:
            spans = [span for span in spans if not _inside(span, markers)]
        spans.sort()
        runs: list[tuple[int, int]] = []
        for start, end in spans:
            if runs and start <= runs[-1][1]:
                if end > runs[-1][1]:
                    runs[-1] = (runs[-1][0], end)
            else:
                runs.append((start, end))
        return runs


NO_REDACTION = Redactor()


def _markers(text: str) -> list[int]:
    starts: list[int] = []
    start = text.find(REDACTED)
    while start >= 0:
        starts.append(start)
        start = text.find(REDACTED, start + 1)
    return starts


def _inside(span: tuple[int, int], markers: list[int]) -> bool:
    index = bisect.bisect_right(markers, span[0]) - 1
    return index >= 0 and span[1] <= markers[index] + len(REDACTED)


@functools.lru_cache(maxsize=8)  # one set of secrets per rule-set version: computed once, not per evaluation
def _needles(secrets: tuple[str, ...]) -> tuple[str, ...]:
    forms: set[str] = set()
    for secret in secrets:
        first = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], re.escape(secret),
                 *_quoted(secret)}
        forms |= first
        forms |= {twice for form in first for twice in _quoted(form)}  # repr(repr(s)), a pattern's repr...
    return tuple(sorted((form for form in forms if form), key=lambda form: (-len(form), form)))


def _quoted(text: str) -> set[str]:
    """What repr() and ascii() write between the quotes: with ' left as it is (the double-quoted
    form) and escaped as \\' (the single-quoted form, when the text around has both kinds)."""
    return {repr(text)[1:-1], repr(text + '"')[1:-2], ascii(text)[1:-1], ascii(text + '"')[1:-2]}


def redact_plain(value: Any, redactor: Redactor) -> Any:
    """Plain data with `redactor`'s secrets taken out of its text and its string keys; lists and
    tuples come back as lists, dicts and mapping proxies as dicts, everything else as it is."""
    kind = type(value)
    if kind is str:
        return redactor(value)
    if kind in (list, tuple):
        return [redact_plain(item, redactor) for item in value]
    if kind in (dict, MappingProxyType):
        return {redactor(key) if type(key) is str else key: redact_plain(item, redactor)
                for key, item in value.items()}
    return value
