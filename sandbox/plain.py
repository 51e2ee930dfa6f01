"""Plain data (str, int, float, bool, None, lists, dicts) made read-only and back."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def freeze(value: Any) -> Any:
    """Deep read-only copy: dicts become mapping proxies, lists tuples; a rule cannot write through it."""
    kind = type(value)
    if kind is dict:
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if kind is list or kind is tuple:
        return tuple([freeze(item) for item in value])  # a list comprehension: no generator to resume per item
    return value


def thaw(value: Any) -> Any:
    """Deep plain copy of frozen data, ready to cross the process boundary."""
    kind = type(value)
    if kind is dict or kind is MappingProxyType or kind not in _NOT_MAPPINGS and isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [thaw(item) for item in value]
    return value


# Types that are surely no Mapping, so that most values skip isinstance's walk of the ABC registry.
_NOT_MAPPINGS = frozenset({str, int, float, bool, type(None), list, tuple})
