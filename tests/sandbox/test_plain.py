"""sandbox.plain: freeze makes plain data read-only, thaw makes it plain again."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from sandbox.plain import freeze, thaw


class _Pairs(Mapping[str, Any]):
    """A Mapping that is neither a dict nor a mapping proxy."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


PLAIN = {"text": "é", "int": 2**53, "float": 0.1, "bool": True, "none": None,
         "list": [1, [2, {"a": ()}]], "empty": {}, "nested": {"b": [{"c": "d"}]}}


def test_freeze_makes_dicts_mapping_proxies_and_lists_tuples() -> None:
    frozen = freeze(PLAIN)

    assert type(frozen) is MappingProxyType
    assert frozen["list"] == (1, (2, MappingProxyType({"a": ()})))
    assert type(frozen["nested"]["b"][0]) is MappingProxyType


def test_thaw_gives_back_the_plain_data_that_was_frozen() -> None:
    thawed = thaw(freeze(PLAIN))

    assert thawed == {**PLAIN, "list": [1, [2, {"a": []}]]}
    assert type(thawed) is dict and type(thawed["nested"]["b"][0]) is dict


@pytest.mark.parametrize("mapping", [_Pairs({"a": (1,)}), MappingProxyType({"a": (1,)}), {"a": (1,)}])
def test_thaw_copies_every_kind_of_mapping_into_a_dict(mapping: Mapping[str, Any]) -> None:
    thawed = thaw(mapping)

    assert thawed == {"a": [1]} and type(thawed) is dict and thawed is not mapping


@pytest.mark.parametrize("value", ["text", 1, 1.5, True, None, b"bytes", frozenset({1})])
def test_thaw_keeps_what_is_no_container(value: object) -> None:
    assert thaw(value) is value
