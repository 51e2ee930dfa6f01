"""The reasons ledger: it covers every builtin, never contradicts itself, and names only real things."""

from __future__ import annotations

import builtins
import datetime
import importlib
import ipaddress
import re
import types

import pytest

from sandbox import ledger
from sandbox.guards import AccessPolicy, Guards
from sandbox.limits import Limits

# One instance of every type the ledger lets rules read attributes of.
SAMPLES: dict[type, object] = {
    type(sample): sample for sample in (
        "text", 1, True, 1.5, [1], (1,), {1}, frozenset({1}), {"k": 1}, types.MappingProxyType({"k": 1}),
        {"k": 1}.keys(), {"k": 1}.items(), {"k": 1}.values(), range(3),
        re.compile("a"), re.match("a", "a"),
        datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC), datetime.date(2026, 11, 27), datetime.time(10, 0),
        datetime.timedelta(hours=1), datetime.UTC, datetime.date(2026, 11, 27).isocalendar(),
        ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1"),
        ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_interface("192.0.2.1/24"), ipaddress.ip_interface("2001:db8::1/64"),
    )
}
ALLOW_LISTS: dict[str, frozenset[str]] = {
    **{f"instances of {kind.__name__}": names for kind, names in ledger.ATTRIBUTES.items()},
    **{f"class {kind.__name__}": names for kind, names in ledger.CLASS_ATTRIBUTES.items()},
    "exceptions": ledger.EXCEPTION_ATTRIBUTES,
    **{f"module {name}": frozenset(members) for name, members in ledger.MODULE_MEMBERS.items()},
}


@pytest.mark.parametrize("name", sorted(dir(builtins)))
def test_every_builtin_is_allowed_or_denied_with_a_reason(name: str) -> None:
    reason = ledger.ALLOWED_BUILTINS.get(name) or ledger.DENIED_BUILTINS.get(name)
    assert reason and reason.strip()


def test_no_builtin_is_both_allowed_and_denied() -> None:
    assert set(ledger.ALLOWED_BUILTINS) & set(ledger.DENIED_BUILTINS) == set()


def test_every_ledger_entry_has_a_non_empty_reason() -> None:
    entries = {**ledger.ALLOWED_BUILTINS, **ledger.DENIED_BUILTINS, **ledger.DENIED_ATTRIBUTES}
    assert [name for name, reason in entries.items() if not reason.strip()] == []


def test_rules_receive_exactly_the_allowed_builtins_and_no_denied_one() -> None:
    table = Guards(AccessPolicy(), Limits()).builtins

    # __import__ is there for datetime's C code only; the compiler refuses the name in rules.
    assert set(table) - {"__import__"} == {name for name in ledger.ALLOWED_BUILTINS if hasattr(builtins, name)}
    assert set(table) & set(ledger.DENIED_BUILTINS) == {"__import__"}


def test_the_internal_import_hands_out_only_what_datetime_needs() -> None:
    internal_import = Guards(AccessPolicy(), Limits()).builtins["__import__"]
    assert internal_import("time").__name__ == "time"
    for name in ("os", "sys", "importlib", "builtins", "_strptime.os"):
        with pytest.raises(ImportError, match="is not available to rules"):
            internal_import(name)
    with pytest.raises(ImportError):
        internal_import("time", None, None, (), 1)


@pytest.mark.parametrize("allow_list", sorted(ALLOW_LISTS))
def test_no_denied_attribute_appears_in_an_allow_list(allow_list: str) -> None:
    assert ALLOW_LISTS[allow_list] & ledger.DENIED_ATTRIBUTES.keys() == set()


@pytest.mark.parametrize("allow_list", sorted(ALLOW_LISTS))
def test_no_allow_list_names_a_private_attribute(allow_list: str) -> None:
    assert {name for name in ALLOW_LISTS[allow_list] if name.startswith("_")} == set()


@pytest.mark.parametrize("module_name", sorted(ledger.MODULE_MEMBERS))
def test_every_module_facade_member_is_the_module_s_own_or_a_stand_in_of_the_same_name(module_name: str) -> None:
    module = importlib.import_module(module_name)
    members = ledger.MODULE_MEMBERS[module_name]

    assert {name for name in members if not hasattr(module, name)} == set()
    stand_ins = {name for name in members if getattr(module, name) is not members[name]}
    # Flag constants are handed out as plain ints of the same value (no enum pseudo-members).
    constants = {name for name in stand_ins if type(members[name]) is int and members[name] == getattr(module, name)}
    assert {name for name in stand_ins - constants
            if getattr(members[name], "__module__", None) != "sandbox.facades" or members[name].__name__ != name} == set()


def test_the_facades_that_reach_a_stdlib_cache_hand_out_only_stand_ins() -> None:
    # re and ipaddress keep process-wide caches keyed by their arguments (ledger.STDLIB_CACHES).
    assert {name for name in ("compile", "match", "fullmatch", "search", "findall", "finditer", "split")
            if ledger.MODULE_MEMBERS["re"][name] is getattr(re, name)} == set()
    assert {name for name in ("ip_address", "ip_network", "ip_interface", "IPv4Network", "IPv6Network")
            if ledger.MODULE_MEMBERS["ipaddress"][name] is getattr(ipaddress, name)} == set()


@pytest.mark.parametrize("module_name", sorted(ledger.MODULE_MEMBERS))
def test_no_facade_hands_out_a_whole_module(module_name: str) -> None:
    members = ledger.MODULE_MEMBERS[module_name]
    assert {name for name, value in members.items() if isinstance(value, types.ModuleType)} == set()


def test_every_type_with_readable_attributes_has_a_sample() -> None:
    assert set(ledger.ATTRIBUTES) == set(SAMPLES)


@pytest.mark.parametrize("kind", list(ledger.ATTRIBUTES), ids=lambda kind: kind.__name__)
def test_every_readable_attribute_exists_on_its_type(kind: type) -> None:
    sample = SAMPLES[kind]
    assert {name for name in ledger.ATTRIBUTES[kind] if not hasattr(sample, name)} == set()


@pytest.mark.parametrize("kind", list(ledger.CLASS_ATTRIBUTES), ids=lambda kind: kind.__name__)
def test_every_class_attribute_exists_on_its_class(kind: type) -> None:
    assert {name for name in ledger.CLASS_ATTRIBUTES[kind] if not hasattr(kind, name)} == set()


def test_rules_own_only_the_mutable_containers_they_build_never_the_frozen_host_ones() -> None:
    assert ledger.RULE_OWNED_CONTAINERS == {dict, list, set}
    assert {types.MappingProxyType, tuple, frozenset} <= ledger.ITERABLE


def test_allocating_and_clock_methods_are_denied_by_name() -> None:
    # Each of these allocates by an argument, or reads the clock, on some allowed type.
    assert {"center", "ljust", "rjust", "zfill", "expandtabs", "translate", "now", "utcnow",
            "today"} <= ledger.DENIED_ATTRIBUTES.keys()


def test_formatting_and_substitution_are_reachable_only_through_their_bounded_guards() -> None:
    guards = Guards(AccessPolicy(), Limits())
    bound = {(str, "format"), (str, "format_map"), (re.Pattern, "sub"), (re.Pattern, "subn")}

    assert {name for kind, name in bound if name not in ledger.ATTRIBUTES[kind]} == set()
    assert bound <= guards._bounded_methods.keys()
    assert ledger.MODULE_MEMBERS["re"]["sub"] is not re.sub and ledger.MODULE_MEMBERS["re"]["subn"] is not re.subn


def _stdlib_caches() -> set[str]:
    """Every cache in the modules the facades reach: lru_caches, cached_properties, *cache* names."""
    import _strptime
    import functools
    import inspect
    import math
    import time

    found = set()
    for module in (re, ipaddress, _strptime, datetime, time, math):
        for name, value in vars(module).items():
            if hasattr(value, "cache_info") or (isinstance(value, dict) and "cache" in name.lower()):
                found.add(f"{module.__name__}.{name}")
            if not inspect.isclass(value):
                continue
            for attribute, member in vars(value).items():
                target = member.fget if isinstance(member, property) else member
                if (hasattr(target, "cache_info") or isinstance(member, functools.cached_property)
                        or (isinstance(member, dict) and "cache" in attribute.lower())):
                    found.add(f"{module.__name__}.{name}.{attribute}")
        if module is _strptime:
            found.add("_strptime._TimeRE_cache")
    return found


def test_every_stdlib_cache_the_facades_reach_is_in_the_ledger_with_its_reason() -> None:
    caches = _stdlib_caches()

    assert {"re._cache", "ipaddress._BaseV4._netmask_cache", "_strptime._regex_cache"} <= caches
    assert caches - ledger.STDLIB_CACHES.keys() == set()
    assert [name for name, reason in ledger.STDLIB_CACHES.items() if not reason.strip()] == []


def test_every_bounded_method_readable_on_its_class_is_bounded_there_too() -> None:
    # `str.format(template, ...)` through the class must not reach the unguarded method.
    guards = Guards(AccessPolicy(), Limits())
    unbounded = {(kind, name) for kind, name in guards._bounded_methods
                 if name in ledger.CLASS_ATTRIBUTES.get(kind, frozenset())
                 and (kind, name) not in guards._bounded_class_methods}
    assert unbounded == set()
