"""Users' app_metadata and user_metadata as rules change them: what a change may hold, the 16 KiB
bound, and how a login's changes merge into what is stored.

One definition for every step a change passes: the rule's call (engine/rule_api.py, inside
sandbox workers, so this module imports only the standard library and the sandbox), the parse
of the sandbox's reply (engine/outcome.py) and the save (engine/stores/sqlite.py).

Sizes are of the compact JSON encoding (`{"a":1}`) in UTF-8 bytes. A dict's encoding is `{`,
its entries `"key":value` joined by `,`, and `}`, so the size of a metadata object is kept
per entry and changes cost what they change, not the size of the whole object.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sandbox.plain import freeze, thaw
from sandbox.redaction import NO_REDACTION, Redactor, redact_plain
from sandbox.text import valid_unicode

KINDS = ("app_metadata", "user_metadata")
MAX_BYTES = 16_384  # per metadata object of a user, and per kind of one evaluation's changes
MAX_KEY_LENGTH = 200
MAX_DEPTH = 8  # lists and objects inside one value
# Exact in every JSON reader (JavaScript's too).
MAX_INTEGER = 2**53 - 1


def check_key(key: object) -> str:
    """Raises TypeError or ValueError unless `key` can name a metadata entry."""
    if type(key) is not str:
        raise TypeError(f"metadata keys are strings of 1 to {MAX_KEY_LENGTH} characters, not {type(key).__name__}")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise ValueError(f"metadata keys are strings of 1 to {MAX_KEY_LENGTH} characters")
    if not valid_unicode(key):
        raise ValueError("metadata keys must be valid Unicode (it has a lone surrogate)")
    return key


def plain_value(value: object, depth: int = MAX_DEPTH) -> Any:
    """A plain copy of `value` (read-only mappings and tuples from `user` become dicts and lists);
    raises TypeError for what JSON cannot hold, ValueError for what is out of bounds."""
    kind = type(value)
    if value is None or kind is bool or kind is str and valid_unicode(value):  # type: ignore[arg-type]
        return value
    if kind is str:
        raise ValueError("metadata text must be valid Unicode (it has a lone surrogate)")
    if kind is int:
        if not -MAX_INTEGER <= value <= MAX_INTEGER:  # type: ignore[operator]
            raise ValueError("metadata integers must lie within +-(2**53 - 1)")
        return value
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise ValueError("metadata numbers must be finite")
        return value
    if kind not in (list, tuple, dict, MappingProxyType):
        raise TypeError(f"metadata values must be plain JSON data, not {kind.__name__}")
    if depth <= 0:
        raise ValueError(f"metadata values nest at most {MAX_DEPTH} lists and objects deep")
    if kind in (list, tuple):
        return [plain_value(item, depth - 1) for item in value]  # type: ignore[attr-defined]
    items = value.items()  # type: ignore[attr-defined]
    if any(type(key) is not str for key, _ in items):
        raise TypeError("metadata objects need string keys")
    return {plain_value(key, depth): plain_value(item, depth - 1) for key, item in items}


def size(metadata: Mapping[str, Any]) -> int:
    """Bytes of `metadata` as compact JSON in UTF-8."""
    if not metadata:
        return 2  # "{}": every evaluation that changes nothing asks, and json.dumps costs about 3 us
    return len(_encode(dict(metadata)))


def merge(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`stored` with `changes` applied key by key; None deletes the key."""
    merged = dict(stored)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _entry_size(key: str, value: Any) -> int:
    return len(_encode(key)) + 1 + len(_encode(value))


class _Sized:
    """A JSON object whose encoded size is kept entry by entry."""

    __slots__ = ("entries", "sizes", "total")

    def __init__(self, entries: dict[str, Any], sizes: dict[str, int], total: int) -> None:
        self.entries = entries
        self.sizes = sizes
        self.total = total  # the entries' sizes: the object takes total + commas + 2 braces

    @classmethod
    def of(cls, entries: Mapping[str, Any]) -> _Sized:
        sizes = {key: _entry_size(key, thaw(value)) for key, value in entries.items()}
        return cls(dict(entries), sizes, sum(sizes.values()))

    def copy(self) -> _Sized:
        return _Sized(dict(self.entries), dict(self.sizes), self.total)

    def size_with(self, key: str, entry_size: int | None) -> int:
        """The encoded size once `key` takes an entry of `entry_size` bytes (None: is removed)."""
        total = self.total - self.sizes.get(key, 0) + (entry_size or 0)
        count = len(self.sizes) - (key in self.sizes) + (entry_size is not None)
        return total + max(count - 1, 0) + 2

    def put(self, key: str, value: Any, entry_size: int | None) -> None:
        self.total -= self.sizes.pop(key, 0)
        self.entries.pop(key, None)
        if entry_size is not None:
            self.entries[key], self.sizes[key] = value, entry_size
            self.total += entry_size


class MetadataChanges:
    """The changes rules asked for in one evaluation, pending until the login completes.

    `user` is the rule API's read-only user: after each change its `app_metadata` or
    `user_metadata` shows the stored value with every change so far applied, so the rule
    itself and the rules after it read what they set (as an Auth0 rule reads the `user` an
    earlier rule changed). Both bounds are checked at each call: the user's metadata with the
    changes applied, and the changes themselves (deletions of keys that were never stored
    cost nothing in the first but still travel to the save).
    """

    __slots__ = ("_user", "_kinds", "_stored", "_redactor")

    def __init__(self, user: object, redactor: Redactor = NO_REDACTION) -> None:
        self._user = user
        self._redactor = redactor  # secret settings: taken out of keys and values before the bounds
        # Per kind, once a rule changes it: (the changes, the user's metadata with them applied,
        # the read-only view of it the user shows). Copied on write, never changed in place, so
        # that a checkpoint (`state`) is the dict itself: the pipeline takes one before every
        # rule, and rules set metadata rarely.
        self._kinds: dict[str, tuple[_Sized, _Sized, Mapping[str, Any]]] = {}
        self._stored: dict[str, Any] = {}  # per kind, once changed: the user's view before any change

    def set(self, kind: str, key: object, value: object) -> None:
        """Raises TypeError or ValueError (the calling rule fails) for a bad key or value, or for
        metadata that would outgrow MAX_BYTES; nothing is changed then."""
        key = check_key(self._redactor(key) if type(key) is str else key)
        plain = plain_value(value)
        if self._redactor:
            plain = redact_plain(plain, self._redactor)
        changes, merged, _ = self._kinds.get(kind) or self._start(kind)
        stored_size = None if plain is None else _entry_size(key, plain)
        merged_size = merged.size_with(key, stored_size)
        if merged_size > MAX_BYTES:
            raise ValueError(f"{kind} would take {merged_size} bytes as JSON, more than {MAX_BYTES}")
        change_size = _entry_size(key, plain)
        if changes.size_with(key, change_size) > MAX_BYTES:
            raise ValueError(f"the {kind} changes of one evaluation would take more than {MAX_BYTES} bytes as JSON")
        changes, merged = changes.copy(), merged.copy()
        changes.put(key, plain, change_size)
        merged.put(key, freeze(plain), stored_size)
        view = MappingProxyType(dict(merged.entries))
        self._kinds = {**self._kinds, kind: (changes, merged, view)}
        object.__setattr__(self._user, kind, view)

    def _start(self, kind: str) -> tuple[_Sized, _Sized, Mapping[str, Any]]:
        # Sized on first use only: an evaluation that sets nothing never encodes the user's metadata.
        stored: Mapping[str, Any] = getattr(self._user, kind)
        self._stored[kind] = stored
        return _Sized(dict(), dict(), 0), _Sized.of(stored), stored

    def state(self) -> object:
        """What to come back to if the next rule fails (never changed in place: no copy)."""
        return self._kinds

    def load(self, state: object) -> None:
        saved: dict[str, tuple[_Sized, _Sized, Mapping[str, Any]]] = state  # type: ignore[assignment]
        for kind in self._kinds.keys() - saved.keys():
            object.__setattr__(self._user, kind, self._stored[kind])
        self._kinds = saved
        for kind, (_, _, view) in saved.items():
            object.__setattr__(self._user, kind, view)

    def plain(self) -> dict[str, dict[str, Any]]:
        """{"app_metadata": {key: value or None}, "user_metadata": {...}}: both kinds, always."""
        return {kind: dict(self._kinds[kind][0].entries) if kind in self._kinds else {} for kind in KINDS}
