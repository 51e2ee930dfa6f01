"""The run-time guards RestrictedPython's compiled code calls, and the globals a rule runs in.

RestrictedPython rewrites `a.b` to `_getattr_(a, "b")`, `a[k]` to `_getitem_(a, k)`,
`for x in y` to `for x in _getiter_(y)`, `a[k] = v` and `a.b = v` to `_write_(a)...`;
our compiler adds `_tick_()`, `_mul_`, `_pow_`, `_lshift_`, `_mod_`, `_format_` (every
f-string field), `_import_` (every import statement), and the growth checks of growth.py
(`_add_`, `_or_`, `_xor_`, `_join_fields_`, `_splat_`, `_merge_`, `_write_slice_`). This module implements them
from the tables in ledger.py plus the host's AccessPolicy, and keeps them lean: they run
on every attribute access of every rule.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import importlib
import itertools
import operator
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from sandbox import facades, ledger, text
from sandbox.errors import SizeExceeded
from sandbox.facades import Facade
from sandbox.formatting import TextFormatter
from sandbox.growth import Growth
from sandbox.limits import Limits
from sandbox.pacing import Pacer
from sandbox.redaction import NO_REDACTION, Redactor


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """What the host's own objects expose to rules (the sandbox knows no host types).

    readable: attribute names rules may read, per exact type.
    subscriptable / iterable: types that support `obj[key]` / `for x in obj`.
    writable: types whose instances validate their own `obj[key] = v` and `obj.name = v`.
    """

    readable: Mapping[type, frozenset[str]] = field(default_factory=dict)
    subscriptable: frozenset[type] = frozenset()
    iterable: frozenset[type] = frozenset()
    writable: frozenset[type] = frozenset()


class Guards:
    """Guard functions bound to one host policy and one set of limits.

    Build once per (policy, limits); `fresh_globals` then costs one dict copy per rule run.
    """

    def __init__(self, policy: AccessPolicy, limits: Limits) -> None:
        self.limits = limits
        self._attributes: dict[type, frozenset[str]] = {**ledger.ATTRIBUTES, **policy.readable}
        self._subscriptable = ledger.SUBSCRIPTABLE | policy.subscriptable
        self._iterable = ledger.ITERABLE | policy.iterable
        self._writable = ledger.RULE_OWNED_CONTAINERS | policy.writable
        # The sandbox's own loops charge the running program's budget (fresh_globals points it there).
        self._pacer = Pacer()
        self._growth = Growth(limits, self.getiter, self._pacer)
        # Methods whose result can outgrow the limits in one C call, by (type, name); on
        # instances they are bound to the instance, on classes they are taken as they are.
        self._bounded_methods: dict[tuple[type, str], Callable[..., Any]] = {
            (str, "join"): self._join,
            (str, "replace"): self._replace,
            **{(kind, "strftime"): _strftime for kind in (datetime.datetime, datetime.date, datetime.time)},
            (datetime.datetime, "strptime"): _strptime,
            (re.Pattern, "findall"): self._pattern_findall,
            (re.Pattern, "finditer"): self._pattern_finditer,
            (re.Pattern, "split"): facades.bounded_split,
            (re.Pattern, "sub"): self._pattern_sub,
            (re.Pattern, "subn"): self._pattern_subn,
            (str, "format"): self._format,
            (str, "format_map"): self._format_map,
            (list, "extend"): self._growth.extend,
            **{(kind, name): self._growth.checked_method(name) for kind, name in _READING_METHODS},
        }
        self._bounded_class_methods: dict[tuple[type, str], Callable[..., Any]] = {
            **{(kind, "strftime"): functools.partial(_strftime_of, kind)
               for kind in (datetime.datetime, datetime.date, datetime.time)},
            (datetime.datetime, "strptime"): functools.partial(_strptime, datetime.datetime),
            (str, "format"): functools.partial(_unbound_str, self._format),
            (str, "format_map"): functools.partial(_unbound_str, self._format_map),
        }
        # Reprs that are neutral by contract: the host's own types, and the facades.
        self._safe_repr = frozenset(policy.readable) | {Facade}
        self.builtins = self._build_builtins()
        self.getattr = self._make_getattr()
        self._formatter = TextFormatter(self.format_field, self.getitem, limits.max_string_length,
                                        limits.max_sequence_items, self._pacer)
        # One facade per module, bound to these limits: pre-imported names and import
        # statements (`_import_`) hand out these very objects.
        self._facades = {name: Facade(name, {**members, **self._limited_members(name)})
                         for name, members in ledger.MODULE_MEMBERS.items()}
        self.static_globals: dict[str, object] = {
            "__builtins__": self.builtins,
            "__name__": "rule",
            "_getattr_": self.getattr,
            "_getitem_": self.getitem,
            "_getiter_": self.getiter,
            "_write_": self.write,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,  # called with _getiter_ by the compiled code
            "_unpack_sequence_": guarded_unpack_sequence,
            "_inplacevar_": self.inplacevar,
            "_apply_": _apply,
            "_mul_": self.mul,
            "_pow_": self.pow,
            "_lshift_": self.lshift,
            "_mod_": self.mod,
            "_format_": self.format_field,
            "_add_": self._growth.add,
            "_or_": self._growth.union,
            "_xor_": self._growth.difference,
            "_join_fields_": self._growth.join_fields,
            "_splat_": self._growth.splat,
            "_merge_": self._growth.merge,
            "_write_slice_": self.write_slice,
            "_import_": self.import_name,
            **self._facades,
        }

    def _limited_members(self, module: str) -> dict[str, object]:
        if module != "re":
            return {}
        return dict(facades.paced_members(self.limits.max_string_length, self.limits.max_sequence_items,
                                          self._pacer))

    def import_name(self, module: str, name: str | None = None) -> object:
        """What `import module` or `from module import name` binds; the compiler has already
        refused every other module and name, this refuses them again."""
        facade = self._facades.get(module)
        if facade is None or (name is not None and name not in facade.members):
            raise ImportError(f"{module if name is None else module + '.' + name} is not available to rules")
        return facade if name is None else facade.members[name]

    def globals_for(self, tick: Callable[[], bool], print_factory: Callable[..., object]) -> dict[str, object]:
        """Fresh globals for one run of one rule: nothing a rule writes survives the run."""
        return self.fresh_globals(self.evaluation_globals(tick, print_factory))

    def evaluation_globals(self, tick: Callable[[], bool], print_factory: Callable[..., object]) -> dict[str, object]:
        """What the globals of every rule of one evaluation start from: never handed to a rule
        itself, only copied by `fresh_globals`."""
        start = self.static_globals.copy()  # a copy of a whole dict is one memcpy, a merge is not
        start["_tick_"] = tick
        start["_print_"] = print_factory
        return start

    def fresh_globals(self, start: dict[str, object]) -> dict[str, object]:
        """Fresh globals for one run of one rule, copied from `evaluation_globals`."""
        self._pacer.start(start["_tick_"])  # type: ignore[arg-type]
        return start.copy()

    # -- access ------------------------------------------------------------------------

    def _make_getattr(self) -> Callable[[object, str], object]:
        # The hot path of every rule: plain instance attributes by exact type, two probes of
        # cached hashes (a (type, name) tuple would be built and hashed on every read); facades,
        # classes, exceptions and size-bounded methods take the general path.
        plain = {kind: frozenset(name for name in names if (kind, name) not in self._bounded_methods)
                 for kind, names in self._attributes.items()}
        plain_of, nothing, general = plain.get, frozenset[str](), self._getattr_general

        def guarded_getattr(obj: object, name: str) -> object:
            if name in plain_of(type(obj), nothing):
                return getattr(obj, name)
            return general(obj, name)

        return guarded_getattr

    def _getattr_general(self, obj: object, name: str) -> object:
        kind = type(obj)
        if kind is Facade:
            members = obj.members  # type: ignore[attr-defined]
            if name in members:
                return members[name]
            raise AttributeError(f"module {obj.name} has no member {name!r} available to rules")  # type: ignore[attr-defined]
        stands_for = self._stands_for.get(id(obj))
        if stands_for is not None:  # `str.lower`: the guarded constructor stands for its class
            obj, kind = stands_for, type
        if kind is type:
            allowed = ledger.CLASS_ATTRIBUTES.get(obj, frozenset())  # type: ignore[call-overload]
            if name in allowed and (obj, name) in self._bounded_class_methods:
                return self._bounded_class_methods[(obj, name)]  # type: ignore[index]
        else:
            allowed = self._attributes.get(kind)
            if allowed is None and isinstance(obj, BaseException):
                if name == "args":  # messages the interpreter wrote may carry object addresses
                    return text.exception_args(obj)
                allowed = ledger.EXCEPTION_ATTRIBUTES
        if allowed is None or name not in allowed:
            # The message names the type, never the object: no oracle, no leaked repr.
            raise AttributeError(f"'{kind.__name__}' attribute {name!r} is not available to rules")
        bounded = self._bounded_methods.get((kind, name))
        if bounded is not None:
            return functools.partial(bounded, obj)
        return getattr(obj, name)

    def getitem(self, obj: Any, key: object) -> object:
        if type(obj) not in self._subscriptable:
            raise TypeError(f"'{type(obj).__name__}' object is not subscriptable by rules")
        return obj[key]

    def getiter(self, obj: Any) -> Any:
        kind = type(obj)
        if kind not in self._iterable:
            raise TypeError(f"'{kind.__name__}' object is not iterable by rules")
        if kind is range and len(obj) > self.limits.max_sequence_items:
            raise SizeExceeded(f"iteration over {len(obj)} items; the limit is {self.limits.max_sequence_items}")
        return iter(obj)

    def write(self, obj: Any) -> Any:
        if type(obj) in self._writable:
            return obj
        kind = type if id(obj) in self._stands_for else type(obj)
        raise TypeError(f"'{kind.__name__}' object is read-only for rules")

    def write_slice(self, obj: Any) -> Any:
        """`obj[a:b] = value`: a list's slice assignment can grow it (`l[:0] = l`)."""
        target = self.write(obj)
        return _SliceWriter(target, self._growth) if type(target) is list else target

    # -- size guards -------------------------------------------------------------------

    def materialize(self, iterable: Iterable[Any]) -> list[Any]:
        """The items of `iterable`, through the iteration guard, at most max_sequence_items."""
        cap = self.limits.max_sequence_items
        items = list(itertools.islice(self.getiter(iterable), cap + 1))
        if len(items) > cap:
            raise SizeExceeded(f"more than {cap} items")
        self._pacer.items(len(items))
        return items

    def mul(self, left: Any, right: Any) -> Any:
        self._check_mul(left, right)
        return left * right

    def _mul_in_place(self, target: Any, times: Any) -> Any:
        self._check_mul(target, times)
        target *= times  # `l *= 2` repeats the list itself, as in CPython
        return target

    def _check_mul(self, left: Any, right: Any) -> None:
        kind_left, kind_right = type(left), type(right)
        if kind_left is float or kind_right is float:
            return
        if kind_left in _INTEGERS and kind_right in _INTEGERS:
            if left.bit_length() + right.bit_length() > self.limits.max_int_bits:
                raise SizeExceeded(f"integer result over {self.limits.max_int_bits} bits")
        elif kind_right in _INTEGERS and kind_left in _SEQUENCES:
            self._check_repeat(left, right)
        elif kind_left in _INTEGERS and kind_right in _SEQUENCES:
            self._check_repeat(right, left)

    def _check_repeat(self, sequence: Any, times: int) -> None:
        self._growth.check(type(sequence), len(sequence) * times)

    def pow(self, base: Any, exponent: Any, modulo: Any = None) -> Any:
        if modulo is None and type(base) in _INTEGERS and type(exponent) in _INTEGERS and exponent > 0:
            if max(base.bit_length() - 1, 1) * exponent > self.limits.max_int_bits and abs(base) > 1:
                raise SizeExceeded(f"integer result over {self.limits.max_int_bits} bits")
        return pow(base, exponent, modulo)

    def lshift(self, value: Any, shift: Any) -> Any:
        if type(value) in _INTEGERS and type(shift) in _INTEGERS and value.bit_length() + shift > self.limits.max_int_bits:
            raise SizeExceeded(f"integer result over {self.limits.max_int_bits} bits")
        return value << shift

    def mod(self, left: Any, right: Any) -> Any:
        # printf-style widths allocate ('%*s' % (10**9, '') is a gigabyte): formatting.py
        # sizes every field and the whole result first.
        if isinstance(left, str):
            return self._formatter.percent(left, right)
        return left % right

    # -- text --------------------------------------------------------------------------

    def neutral_repr(self, obj: object) -> str:
        return text.describe(obj, self.limits.max_string_length, self._safe_repr, self._pacer)

    def neutral_str(self, obj: object = "", *args: object) -> str:
        if args:
            raise TypeError("str() takes one argument in rules (bytes are not available)")
        return text.display(obj, self.limits.max_string_length, self._safe_repr, self._pacer)

    def join_for_print(self, items: tuple[object, ...], separator: object, redactor: Redactor = NO_REDACTION) -> str:
        """print()'s line: no longer than the trace could keep, `redactor`'s secrets taken out first."""
        def render(count: int) -> str:
            return text.join_display(items, separator, count, self._safe_repr, self._pacer)

        return redactor.bounded(render, self.limits.max_output_bytes)

    def format_field(self, value: object, conversion: int, spec: str) -> str:
        """One f-string field, `f"{value!conversion:spec}"`: neutral text, bounded specs."""
        if conversion == _CONVERSION_REPR:
            value = self.neutral_repr(value)
        elif conversion == _CONVERSION_ASCII:  # ascii() is repr() with non-ASCII escaped
            value = self.neutral_repr(value).encode("ascii", "backslashreplace").decode("ascii")
        elif conversion == _CONVERSION_STR or type(value) not in _FORMATTABLE:
            value = self.neutral_str(value)
        elif spec and type(value) in _TIMES:
            _check_time_format(spec)  # a date's format spec is a strftime format
        return format(value, spec)

    def inplacevar(self, op: str, target: Any, value: Any) -> Any:
        return self._inplace[op](target, value)

    @functools.cached_property
    def _inplace(self) -> dict[str, Callable[[Any, Any], Any]]:
        growth = self._growth
        return {**_INPLACE, "*=": self._mul_in_place, "**=": self.pow, "<<=": self.lshift, "%=": self.mod,
                "+=": growth.add_in_place, "|=": growth.union_in_place, "^=": growth.difference_in_place}

    def _join(self, separator: str, iterable: Iterable[Any]) -> str:
        if type(iterable) is list or type(iterable) is tuple:
            size = sum(len(part) for part in iterable if type(part) is str) + len(separator) * max(len(iterable) - 1, 0)
            if size > self.limits.max_string_length:
                raise SizeExceeded(f"joined string of {size} characters")
            self._pacer.items(len(iterable))
            return separator.join(iterable)
        return separator.join(self._joined_parts(separator, iterable))

    def _joined_parts(self, separator: str, iterable: Iterable[Any]) -> list[Any]:
        """The parts of a join of anything but a list or tuple, measured as they come: a generator of
        fresh million-character strings held 250 MB before a check after reading them all."""
        max_chars, max_items = self.limits.max_string_length, self.limits.max_sequence_items
        parts: list[Any] = []
        size = -len(separator)
        for part in self.getiter(iterable):
            size += len(separator) + (len(part) if type(part) is str else 0)
            if size > max_chars:
                raise SizeExceeded(f"joined string of more than {max_chars} characters")
            if len(parts) >= max_items:
                raise SizeExceeded(f"more than {max_items} items")
            parts.append(part)
            self._pacer.round()
        return parts

    def _format(self, template: str, *args: object, **kwargs: object) -> str:
        return self._formatter.format(template, args, kwargs)

    def _format_map(self, template: str, mapping: object) -> str:
        return self._formatter.format_map(template, mapping)

    def _pattern_sub(self, compiled: re.Pattern[str], repl: object, string: object, count: object = 0) -> str:
        return self._pattern_subn(compiled, repl, string, count)[0]

    def _pattern_subn(self, compiled: re.Pattern[str], repl: object, string: object,
                      count: object = 0) -> tuple[str, int]:
        return facades.bounded_sub(compiled, repl, string, count, self.limits.max_string_length, pacer=self._pacer)

    def _pattern_findall(self, compiled: re.Pattern[str], string: object, pos: int = 0,
                         endpos: int = sys.maxsize) -> list[Any]:
        return facades.bounded_findall(compiled, string, pos, endpos, pacer=self._pacer)

    def _pattern_finditer(self, compiled: re.Pattern[str], string: object, pos: int = 0,
                          endpos: int = sys.maxsize) -> facades.Matches:
        if type(string) is not str:
            raise TypeError("expected a string to search")
        return facades.Matches(compiled.finditer(string, pos, endpos), self._pacer, self.limits.max_sequence_items)

    def _replace(self, text: str, old: str, new: str, count: int = -1) -> str:
        if type(old) is str and type(new) is str:
            occurrences = text.count(old) if count < 0 else min(count, text.count(old))
            if len(text) + occurrences * (len(new) - len(old)) > self.limits.max_string_length:
                raise SizeExceeded("replacement result too long")
        return text.replace(old, new, count)

    # -- builtins ----------------------------------------------------------------------

    def _build_builtins(self) -> dict[str, object]:
        import builtins

        table: dict[str, object] = {
            name: getattr(builtins, name) for name in ledger.ALLOWED_BUILTINS if hasattr(builtins, name)
        }
        m = self.materialize
        table.update(
            list=lambda iterable=(): list(m(iterable)),
            tuple=lambda iterable=(): tuple(m(iterable)),
            set=lambda iterable=(): set(m(iterable)),
            frozenset=lambda iterable=(): frozenset(m(iterable)),
            dict=self._dict,
            sorted=lambda iterable, *, key=None, reverse=False: sorted(m(iterable), key=key, reverse=reverse),
            reversed=lambda sequence: list(reversed(m(sequence))),
            enumerate=lambda iterable, start=0: list(enumerate(m(iterable), start)),
            zip=lambda *iterables, strict=False: list(zip(*self._growth.read_all(iterables), strict=strict)),
            map=lambda function, *iterables: list(map(function, *self._growth.read_all(iterables))),
            filter=lambda function, iterable: list(filter(function, m(iterable))),
            sum=lambda iterable, start=0: self._growth.sum(m(iterable), start),
            any=lambda iterable: any(m(iterable)),
            all=lambda iterable: all(m(iterable)),
            min=functools.partial(_extreme, min, m),
            max=functools.partial(_extreme, max, m),
            range=self._range,
            pow=self.pow,
            round=self._round,
            isinstance=self._isinstance,
            repr=self.neutral_repr,
            str=self.neutral_str,
            __import__=_internal_import,
        )
        return table

    def _dict(self, source: Any = (), **items: Any) -> dict[Any, Any]:
        if type(source) in (dict, MappingProxyType):
            result = dict(source)
        else:
            result = dict(self.materialize(source))
        result.update(items)
        self._growth.check(dict, len(result))
        return result

    def _round(self, number: Any, ndigits: Any = None) -> Any:
        # round(int, -n) computes 10**n first: round(1, -10**7) is a 33-million-bit power.
        if type(number) in _INTEGERS and type(ndigits) in _INTEGERS and -ndigits * 3 > self.limits.max_int_bits:
            raise SizeExceeded(f"integer result over {self.limits.max_int_bits} bits")
        return round(number, ndigits)

    def _range(self, *args: int) -> range:
        produced = range(*args)
        if len(produced) > self.limits.max_sequence_items:
            raise SizeExceeded(f"range of {len(produced)} items; the limit is {self.limits.max_sequence_items}")
        return produced

    def _isinstance(self, obj: object, kinds: Any) -> bool:
        wanted = kinds if type(kinds) is tuple else (kinds,)
        resolved: list[type] = []
        for kind in wanted:
            resolved.extend(self._types_for.get(id(kind), ()) or (kind,))
        return isinstance(obj, tuple(resolved))

    @functools.cached_property
    def _types_for(self) -> dict[int, tuple[type, ...]]:
        # Guarded constructors stand where rules expect types; `isinstance(x, dict)` must
        # still be true for host mappings, which arrive as MappingProxyType.
        b = self.builtins
        return {
            id(b["list"]): (list,), id(b["tuple"]): (tuple,), id(b["set"]): (set,),
            id(b["frozenset"]): (frozenset,), id(b["dict"]): (dict, MappingProxyType), id(b["range"]): (range,),
            id(b["str"]): (str,), **{id(stand_in): (kind,) for stand_in, kind in facades.STANDS_FOR.items()},
        }

    @functools.cached_property
    def _stands_for(self) -> dict[int, type]:
        return {key: kinds[0] for key, kinds in self._types_for.items()}


_CONVERSION_STR, _CONVERSION_REPR, _CONVERSION_ASCII = ord("s"), ord("r"), ord("a")
_TIMES = frozenset({datetime.datetime, datetime.date, datetime.time})
# Values an f-string formats with their own spec; anything else is formatted as its str().
_FORMATTABLE = frozenset({str, int, float, bool, datetime.timedelta, datetime.timezone, type(None)} | _TIMES
                         | {ipaddress.IPv4Address, ipaddress.IPv6Address})
# strftime passes widths to the C library: "%999Y" is 999 characters, and twenty thousand
# of them are twenty million from one call (and 150 ms past any budget check).
MAX_TIME_FORMAT = 256
MAX_TIME_WIDTH_DIGITS = 2
_TIME_DIRECTIVE = re.compile(r"%[-_0^#]*([0-9]*)")


def _check_time_format(spec: object) -> str:
    if type(spec) is not str:
        raise TypeError("a date format must be a string")
    if len(spec) > MAX_TIME_FORMAT:
        raise ValueError(f"date formats are at most {MAX_TIME_FORMAT} characters in rules")
    if "%" in spec:
        for directive in _TIME_DIRECTIVE.finditer(spec.replace("%%", "")):
            if len(directive.group(1)) > MAX_TIME_WIDTH_DIGITS:
                raise ValueError(f"date format widths are at most {MAX_TIME_WIDTH_DIGITS} digits in rules")
    return spec


def _strftime(when: Any, spec: object) -> str:
    return str(when.strftime(_check_time_format(spec)))


def _strftime_of(kind: type, when: object, spec: object) -> str:
    if type(when) is not kind:
        raise TypeError(f"strftime needs a {kind.__name__}")
    return _strftime(when, spec)


def _strptime(owner: Any, value: object, spec: object) -> Any:
    if type(value) is not str or len(value) > MAX_TIME_FORMAT:
        raise ValueError(f"strptime parses strings of at most {MAX_TIME_FORMAT} characters in rules")
    return datetime.datetime.strptime(value, _check_time_format(spec))


# Methods that read the items of other collections in C, any number of them (growth.py:
# read_arguments); those that grow a set or dict are checked once built (list.extend, which
# can double a list by itself, is measured first).
_SET_READERS = ("union", "symmetric_difference", "intersection", "difference", "issubset", "issuperset",
                "isdisjoint")
_SET_UPDATES = ("update", "symmetric_difference_update", "intersection_update", "difference_update")
_READING_METHODS: tuple[tuple[type, str], ...] = (*((set, name) for name in _SET_READERS + _SET_UPDATES),
                    *((frozenset, name) for name in _SET_READERS), (dict, "update"),
                    (type({}.keys()), "isdisjoint"), (type({}.items()), "isdisjoint"))
_INTEGERS = frozenset({int, bool})
_SEQUENCES = frozenset({str, list, tuple})
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "/=": operator.itruediv, "//=": operator.ifloordiv,
    "%=": operator.imod, ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor,
    "&=": operator.iand, "@=": operator.imatmul,
}


class _SliceWriter:
    """What `_write_slice_` hands a list's slice assignment: the assignment, measured first."""

    __slots__ = ("_target", "_growth")

    def __init__(self, target: list[Any], growth: Growth) -> None:
        self._target = target
        self._growth = growth

    def __setitem__(self, key: object, value: object) -> None:
        self._growth.assign_slice(self._target, key, value)


def _internal_import(name: str, globals: object = None, locals: object = None, fromlist: object = (),
                     level: int = 0) -> Any:
    if level != 0 or name not in ledger.INTERNAL_IMPORTS:
        raise ImportError(f"import of {name!r} is not available to rules")
    return importlib.import_module(name)


def _unbound_str(method: Callable[..., str], template: object, *args: object, **kwargs: object) -> str:
    if type(template) is not str:
        raise TypeError(f"descriptor needs a 'str' object but received a '{type(template).__name__}'")
    return method(template, *args, **kwargs)


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def _extreme(pick: Callable[..., Any], materialize: Callable[[Any], list[Any]], *args: Any, **kwargs: Any) -> Any:
    if len(args) == 1:
        return pick(materialize(args[0]), **kwargs)
    return pick(*args, **kwargs)
