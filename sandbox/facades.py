"""The modules rules may use (`re`, `math`, `datetime`, `ipaddress`), as read-only stand-ins.

Handing rules the real modules would share the standard library's process-wide caches with
them, and a cache is a channel from one evaluation (one user) to the next: `re.compile(p,
0.0)` returned on a cache hit and raised TypeError on a miss, so a rule could write a
victim's email into `re`'s cache during their login and read it back during its own. The
stand-ins close that class:
- arguments are accepted only as the types the facade documents, exactly (`flags` as a
  combination of the facade's own flag constants, prefixes as an int in range or a short
  digit string): no float, bool or other look-alike can probe a cache key;
- `re` compiles through a cache of its own that the runner empties when each evaluation
  starts (`forget_patterns`), never the stdlib's. A cache shared by evaluations hands one
  evaluation the very objects another made: `re.compile(p).pattern is p` told whether an
  earlier login had compiled `p`, and a module-level pattern `P is re.compile(...)` told how
  many patterns others had compiled since. Compiling costs 20-45 us per distinct pattern per
  evaluation; patterns compiled at module level are made once per rule set (snapshots);
- the flag constants are plain ints: `re.IGNORECASE | n` on the enum made a pseudo-member
  for every distinct n, kept by the enum class for the life of the process;
- results that can outgrow the sequence limit in one C call (findall, split) are counted as
  they are produced, and time zones' names are bounded (strftime's %Z repeats them);
- finditer hands out `Matches`, an iterator that charges the rule's budget as it goes and
  stops past the sequence limit: C code that consumes it (`x in it`, set methods) is paced
  like rule code. The loops of findall and sub, and the parsing of a replacement template,
  charge the budget too (sandbox/pacing.py);
- `ipaddress` hands the stdlib only integer prefixes, after every one of them has been
  put in the netmask caches at import: the caches never change again because of a rule.
The ledger (`ledger.STDLIB_CACHES`) lists every cache reachable from here and why it is safe.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from re import _compiler  # type: ignore[attr-defined]  # compile() without re's module cache
from types import MappingProxyType
from typing import Any

from sandbox.errors import SizeExceeded
from sandbox.pacing import UNMETERED, Pacer


class Facade:
    """A module stand-in: only the listed members, read-only."""

    __slots__ = ("name", "members")

    def __init__(self, name: str, members: Mapping[str, object]) -> None:
        self.name = name
        self.members = MappingProxyType(dict(members))

    def __repr__(self) -> str:
        return f"<module {self.name}>"


# -- re ----------------------------------------------------------------------------------------

MAX_PATTERNS_PER_EVALUATION = 256
MAX_PATTERN_LENGTH = 20_000
MAX_GROUPS = 100
# As sandbox.limits.Limits.max_sequence_items by default: findall and split produce lists in C.
MAX_RESULT_ITEMS = 100_000
# DEBUG (128) prints the parsed pattern to fd 1, TEMPLATE (1) is deprecated, LOCALE is for bytes.
_RE_FLAGS = int(re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII | re.UNICODE)
_RE_FLAG_NAMES = "re.IGNORECASE, re.MULTILINE, re.DOTALL, re.VERBOSE, re.ASCII"


def _regex_flags(flags: object) -> int:
    if type(flags) is int or type(flags) is re.RegexFlag:
        value = int(flags)
        if value >= 0 and not value & ~_RE_FLAGS:
            return value
    raise ValueError(f"flags must be 0 or a combination of {_RE_FLAG_NAMES}")


# The patterns compiled in the running evaluation. Evaluations run one at a time on a
# runner's thread (a worker, or the server's event loop), and each starts by emptying it.
_patterns: dict[tuple[str, int], re.Pattern[str]] = {}


def forget_patterns() -> None:
    """Called by the runner as each evaluation starts: no pattern object outlives its evaluation."""
    _patterns.clear()


def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    key = (pattern, flags)
    compiled = _patterns.get(key)
    if compiled is None:
        # Warnings (FutureWarning: "possible nested set") would reach the server's stderr.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = _compiler.compile(pattern, flags)
        if compiled.groups > MAX_GROUPS:
            raise ValueError(f"patterns have at most {MAX_GROUPS} groups")
        if len(_patterns) < MAX_PATTERNS_PER_EVALUATION:
            _patterns[key] = compiled
    return compiled


def compile(pattern: object, flags: object = 0) -> re.Pattern[str]:  # noqa: A001 - the facade's own name
    if type(pattern) is re.Pattern:
        if flags:
            raise ValueError("cannot process flags argument with a compiled pattern")
        return pattern
    if type(pattern) is not str:
        raise TypeError("the pattern must be a string or a compiled pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"patterns are at most {MAX_PATTERN_LENGTH} characters")
    return _compiled(pattern, _regex_flags(flags))


def _text(string: object) -> str:
    if type(string) is not str:
        raise TypeError("expected a string to search")
    return string


def match(pattern: object, string: object, flags: object = 0) -> re.Match[str] | None:
    return compile(pattern, flags).match(_text(string))


def fullmatch(pattern: object, string: object, flags: object = 0) -> re.Match[str] | None:
    return compile(pattern, flags).fullmatch(_text(string))


def search(pattern: object, string: object, flags: object = 0) -> re.Match[str] | None:
    return compile(pattern, flags).search(_text(string))


def findall(pattern: object, string: object, flags: object = 0) -> list[Any]:
    return bounded_findall(compile(pattern, flags), _text(string))


def finditer(pattern: object, string: object, flags: object = 0) -> Matches:
    return Matches(compile(pattern, flags).finditer(_text(string)), UNMETERED, MAX_RESULT_ITEMS)


class Matches:
    """What finditer gives rules: the matches, one budget round each, at most `max_items`.

    The stdlib's iterator is C: `"q" in re.finditer("", s)` or `x.issubset(re.finditer(...))`
    consumed a million matches in one C call, past the iteration guard and every tick."""

    __slots__ = ("_matches", "_pacer", "_max_items", "_taken")

    def __init__(self, matches: Iterator[re.Match[str]], pacer: Pacer, max_items: int) -> None:
        self._matches = matches
        self._pacer = pacer
        self._max_items = max_items
        self._taken = 0

    def __iter__(self) -> Matches:
        return self

    def __next__(self) -> re.Match[str]:
        found = next(self._matches)
        self._taken += 1
        if self._taken > self._max_items:
            raise SizeExceeded(f"more than {self._max_items} matches")
        self._pacer.round()
        return found


def split(pattern: object, string: object, maxsplit: object = 0, flags: object = 0) -> list[str | Any]:
    return bounded_split(compile(pattern, flags), _text(string), maxsplit)


def bounded_findall(compiled: re.Pattern[str], string: object, pos: int = 0, endpos: int = sys.maxsize,
                    *, pacer: Pacer = UNMETERED) -> list[Any]:
    """Pattern.findall, counted as the matches come: an empty pattern on a long string, or many
    groups, made millions of items in one C call."""
    results: list[Any] = []
    groups = compiled.groups
    for found in compiled.finditer(_text(string), pos, endpos):
        if len(results) >= MAX_RESULT_ITEMS:
            raise ValueError(f"more than {MAX_RESULT_ITEMS} matches")
        pacer.round()
        results.append(found.group(0) if groups == 0 else found.groups("")[0] if groups == 1 else found.groups(""))
    return results


def bounded_split(compiled: re.Pattern[str], string: object, maxsplit: object = 0) -> list[str | Any]:
    """Pattern.split with at most MAX_RESULT_ITEMS items (each split adds one per group too)."""
    if type(maxsplit) is not int:
        raise TypeError("maxsplit must be an int")
    most = (MAX_RESULT_ITEMS - 1) // (compiled.groups + 1)
    parts = compiled.split(_text(string), most + 1 if maxsplit <= 0 or maxsplit > most else maxsplit)
    if (len(parts) - 1) // (compiled.groups + 1) > most:
        raise ValueError(f"more than {MAX_RESULT_ITEMS} items")
    return parts


def escape(pattern: object) -> str:
    return re.escape(_text(pattern))


# As sandbox.limits.Limits.max_string_length by default; the guards bind the configured limit.
MAX_RESULT_CHARS = 1_000_000


def bounded_sub(compiled: re.Pattern[str], repl: object, string: object, count: object = 0,
                max_chars: int = MAX_RESULT_CHARS, *, pacer: Pacer = UNMETERED) -> tuple[str, int]:
    """Pattern.subn with the result counted as it grows: the replacement repeats per match
    (re.sub('', 'x' * 1000, s) is a thousand times s), so each one is sized before it is
    made and added. A callable `repl` is rule code, under the rule's budget like any other;
    templates are expanded here, never through the stdlib's template cache. Each match is a
    round of `pacer` (re.sub('', '', s) is a million of them for a million characters)."""
    text = _text(string)
    if type(count) is not int:
        raise TypeError("count must be an int")
    replace = _replacement(compiled, repl, max_chars, pacer)
    if count < 0:  # as CPython 3.11: a negative count replaces nothing
        return text, 0
    parts: list[str] = []
    size = done = last = 0
    for found in compiled.finditer(text):
        if count and done >= count:
            break
        pacer.round()
        start, end = found.span()
        replacement = replace(found, max_chars - size - (start - last))
        size += start - last + len(replacement)
        if size > max_chars:
            raise _too_long(max_chars)
        parts += (text[last:start], replacement)
        last, done = end, done + 1
    if size + len(text) - last > max_chars:
        raise _too_long(max_chars)
    parts.append(text[last:])
    return "".join(parts), done


def _replacement(compiled: re.Pattern[str], repl: object, max_chars: int,
                 pacer: Pacer) -> Callable[[re.Match[str], int], str]:
    """What replaces each match, given the room left: a template's expansion is sized before it is built."""
    if callable(repl):
        def call(found: re.Match[str], room: int) -> str:
            replacement = repl(found)
            if type(replacement) is not str:
                raise TypeError(f"expected str instance, {type(replacement).__name__} found")
            return replacement
        return call
    if type(repl) is not str:
        raise TypeError(f"expected str or callable, not {type(repl).__name__}")
    pieces = _parse_template(repl, compiled, pacer)

    def expand(found: re.Match[str], room: int) -> str:
        pacer.rounds(len(pieces))
        size = 0
        for piece in pieces:
            size += len(piece) if isinstance(piece, str) else _group_size(found, piece)
        if size > room:
            raise _too_long(max_chars)
        return "".join(piece if isinstance(piece, str) else found.group(piece) or "" for piece in pieces)
    return expand


def _too_long(max_chars: int) -> SizeExceeded:
    return SizeExceeded(f"substitution result over {max_chars} characters")


def _group_size(found: re.Match[str], group: int) -> int:
    start, end = found.span(group)
    return end - start if start >= 0 else 0


_TEMPLATE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_OCTAL = frozenset("01234567")
_ASCII_DIGITS = frozenset("0123456789")


def _parse_template(template: str, compiled: re.Pattern[str], pacer: Pacer) -> list[str | int]:
    """A replacement template as literal text and group numbers, with the stdlib's escapes and errors.
    Text between escapes is taken whole; each escape is a round of `pacer`."""
    pieces: list[str | int] = []
    literal: list[str] = []
    index, end = 0, len(template)

    def group(number: int, at: int) -> None:
        if number > compiled.groups:
            raise re.error(f"invalid group reference {number}", template, at)
        pieces.append("".join(literal))
        literal.clear()
        pieces.append(number)

    while index < end:
        pacer.round()
        escape_at = template.find("\\", index)
        if escape_at != index:
            literal.append(template[index:] if escape_at < 0 else template[index:escape_at])
            index = end if escape_at < 0 else escape_at
            continue
        if index + 1 >= end:
            raise re.error("bad escape (end of pattern)", template, index)
        escape = template[index + 1]
        if escape == "g":
            index = _named_group(template, index + 2, compiled, group)
        elif escape == "0":
            digits = template[index + 1:index + 4]
            digits = digits[:1] + "".join(_takewhile_octal(digits[1:]))
            literal.append(chr(int(digits, 8) & 0xFF))
            index += 1 + len(digits)
        elif escape in _ASCII_DIGITS:
            index = _numbered_group(template, index, literal, group)
        elif escape in _TEMPLATE_ESCAPES:
            literal.append(_TEMPLATE_ESCAPES[escape])
            index += 2
        elif escape.isascii() and escape.isalpha():
            raise re.error(f"bad escape \\{escape}", template, index)
        else:
            literal.append("\\" + escape)
            index += 2
    pieces.append("".join(literal))
    return [piece for piece in pieces if piece != ""]


def _takewhile_octal(text: str) -> list[str]:
    taken = []
    for character in text:
        if character not in _OCTAL:
            break
        taken.append(character)
    return taken


def _numbered_group(template: str, index: int, literal: list[str], group: Callable[[int, int], None]) -> int:
    """`\\1`, `\\12` (a group) or `\\123` (an octal escape when all three digits are octal)."""
    first, end = template[index + 1], len(template)
    if index + 2 < end and template[index + 2] in _ASCII_DIGITS:
        second = template[index + 2]
        if first in _OCTAL and second in _OCTAL and index + 3 < end and template[index + 3] in _OCTAL:
            value = int(template[index + 1:index + 4], 8)
            if value > 0o377:
                raise re.error(f"octal escape value \\{template[index + 1:index + 4]} outside of range 0-0o377",
                               template, index)
            literal.append(chr(value))
            return index + 4
        group(int(first + second), index + 1)
        return index + 3
    group(int(first), index + 1)
    return index + 2


def _named_group(template: str, at: int, compiled: re.Pattern[str], group: Callable[[int, int], None]) -> int:
    """`\\g<name>` or `\\g<number>` starting after the `g`; the index after the `>`."""
    if at >= len(template) or template[at] != "<":
        raise re.error("missing <", template, at)
    close = template.find(">", at + 1)
    if close < 0:
        raise re.error("missing >, unterminated name", template, at + 1)
    name = template[at + 1:close]
    if not name:
        raise re.error("missing group name", template, at + 1)
    if name.isascii() and name.isdigit():
        group(int(name), at + 1)
    elif name.isidentifier():
        if name not in compiled.groupindex:
            raise IndexError(f"unknown group name '{name}'")
        group(compiled.groupindex[name], at + 1)
    else:
        raise re.error(f"bad character in group name '{name}'", template, at + 1)
    return close + 1


def paced_members(max_chars: int, max_items: int, pacer: Pacer) -> dict[str, Callable[..., Any]]:
    """The facade's `sub`, `subn`, `findall` and `finditer` bound to one sandbox: results of at
    most `max_chars` characters or `max_items` matches, their loops charged to `pacer`."""

    def sub(pattern: object, repl: object, string: object, count: object = 0, flags: object = 0) -> str:
        return bounded_sub(compile(pattern, flags), repl, string, count, max_chars, pacer=pacer)[0]

    def subn(pattern: object, repl: object, string: object, count: object = 0, flags: object = 0) -> tuple[str, int]:
        return bounded_sub(compile(pattern, flags), repl, string, count, max_chars, pacer=pacer)

    def findall(pattern: object, string: object, flags: object = 0) -> list[Any]:
        return bounded_findall(compile(pattern, flags), _text(string), pacer=pacer)

    def finditer(pattern: object, string: object, flags: object = 0) -> Matches:
        return Matches(compile(pattern, flags).finditer(_text(string)), pacer, max_items)

    return {"sub": sub, "subn": subn, "findall": findall, "finditer": finditer}


_UNMETERED_MEMBERS = paced_members(MAX_RESULT_CHARS, MAX_RESULT_ITEMS, UNMETERED)
sub = _UNMETERED_MEMBERS["sub"]
subn = _UNMETERED_MEMBERS["subn"]


RE_MEMBERS: dict[str, object] = {
    "compile": compile, "escape": escape, "findall": findall, "finditer": finditer, "fullmatch": fullmatch,
    "match": match, "search": search, "split": split, "sub": sub, "subn": subn,
    **{name: int(getattr(re, name)) for name in
       ("IGNORECASE", "I", "MULTILINE", "M", "DOTALL", "S", "VERBOSE", "X", "ASCII", "A", "NOFLAG")},
    "error": re.error,
}

# -- ipaddress ---------------------------------------------------------------------------------

MAX_ADDRESS_TEXT = 100  # an IPv6 address with a zone id and a prefix is well under this
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NetworkClass = type[ipaddress.IPv4Network] | type[ipaddress.IPv6Network]
_MAX_PREFIX: dict[_NetworkClass, int] = {ipaddress.IPv4Network: ipaddress.IPV4LENGTH,
                                         ipaddress.IPv6Network: ipaddress.IPV6LENGTH}

# Every valid integer prefix enters the stdlib's netmask caches now, so that building a
# network from an integer prefix never adds to them (the stand-ins pass nothing else).
for _prefix in range(ipaddress.IPV4LENGTH + 1):
    ipaddress.IPv4Network(("0.0.0.0", _prefix))
for _prefix in range(ipaddress.IPV6LENGTH + 1):
    ipaddress.IPv6Network(("::", _prefix))
del _prefix


def _address_value(value: object) -> str | int | _Address:
    kind = type(value)
    if kind is str:
        if len(value) > MAX_ADDRESS_TEXT:  # type: ignore[arg-type]
            raise ValueError(f"addresses are at most {MAX_ADDRESS_TEXT} characters")
        return value  # type: ignore[return-value]
    if kind is int or kind is ipaddress.IPv4Address or kind is ipaddress.IPv6Address:
        return value  # type: ignore[return-value]
    raise TypeError(f"expected an address as a str or an int, not {kind.__name__}")


def _prefix_length(value: object, network: _NetworkClass) -> int:
    """An int prefix length, from an int, a digit string of 1-3 characters or an IPv4 mask."""
    limit = _MAX_PREFIX[network]
    if type(value) is str:
        if value.isascii() and value.isdigit():
            if len(value) > 3:
                raise ValueError("prefix strings are at most 3 digits")
            value = int(value)
        elif network is ipaddress.IPv4Network and len(value) <= 15:
            value = _prefix_from_ipv4_mask(value)
        else:
            raise ipaddress.NetmaskValueError(f"{value!r} is not a valid netmask")
    elif type(value) is not int:
        raise TypeError("the prefix must be an int or a string of 1 to 3 digits")
    if not 0 <= value <= limit:
        raise ipaddress.NetmaskValueError(f"{value} is not a valid prefix length")
    return value


def _prefix_from_ipv4_mask(mask: str) -> int:
    """The prefix of a netmask (255.255.255.0) or hostmask (0.0.0.255), as the stdlib reads them."""
    try:
        bits = int(ipaddress.IPv4Address(mask))
    except ipaddress.AddressValueError:
        raise ipaddress.NetmaskValueError(f"{mask!r} is not a valid netmask") from None
    for candidate in (bits, bits ^ 0xFFFFFFFF):
        ones = bin(candidate).count("1")
        if candidate == (0xFFFFFFFF << (32 - ones)) & 0xFFFFFFFF:
            return ones
    raise ipaddress.NetmaskValueError(f"{mask!r} is not a valid netmask")


_NO_PREFIX = object()  # "192.0.2.1" or ("192.0.2.1",): the whole address, as the stdlib reads it


def _split_network(value: object) -> tuple[str | int | _Address, object]:
    """(address, prefix or _NO_PREFIX) from "addr/prefix", (addr, prefix), an int or an address."""
    if type(value) is str:
        if len(value) > MAX_ADDRESS_TEXT:
            raise ValueError(f"networks are at most {MAX_ADDRESS_TEXT} characters")
        address, slash, prefix = value.partition("/")
        if "/" in prefix:
            raise ipaddress.AddressValueError(f"only one '/' permitted in {value!r}")
        return address, prefix if slash else _NO_PREFIX
    if type(value) is tuple and len(value) in (1, 2):
        return _address_value(value[0]), value[1] if len(value) == 2 else _NO_PREFIX
    return _address_value(value), _NO_PREFIX


def _network(network: _NetworkClass, value: object, strict: object) -> Any:
    if type(strict) is not bool:
        raise TypeError("strict must be True or False")
    address, prefix = _split_network(value)
    length = _MAX_PREFIX[network] if prefix is _NO_PREFIX else _prefix_length(prefix, network)
    return network((address, length), strict=strict)


def _interface(network: _NetworkClass, interface: type[Any], value: object) -> Any:
    address, prefix = _split_network(value)
    length = _MAX_PREFIX[network] if prefix is _NO_PREFIX else _prefix_length(prefix, network)
    return interface((address, length))


def _either(build: Callable[[_NetworkClass], Any], value: object, what: str) -> Any:
    for network in (ipaddress.IPv4Network, ipaddress.IPv6Network):
        try:
            return build(network)
        except (ipaddress.AddressValueError, ipaddress.NetmaskValueError):
            pass
    shown = value if type(value) is str else type(value).__name__
    raise ValueError(f"{shown!r} does not appear to be an IPv4 or IPv6 {what}")


def ip_address(address: object) -> Any:
    value = _address_value(address)
    return ipaddress.ip_address(value)


def ip_network(address: object, strict: object = True) -> Any:
    return _either(lambda network: _network(network, address, strict), address, "network")


def ip_interface(address: object) -> Any:
    interfaces = {ipaddress.IPv4Network: ipaddress.IPv4Interface, ipaddress.IPv6Network: ipaddress.IPv6Interface}
    return _either(lambda network: _interface(network, interfaces[network], address), address, "interface")


def IPv4Address(address: object) -> ipaddress.IPv4Address:  # noqa: N802 - stands for the class
    return ipaddress.IPv4Address(_address_value(address))


def IPv6Address(address: object) -> ipaddress.IPv6Address:  # noqa: N802
    return ipaddress.IPv6Address(_address_value(address))


def IPv4Network(address: object, strict: object = True) -> ipaddress.IPv4Network:  # noqa: N802
    network: ipaddress.IPv4Network = _network(ipaddress.IPv4Network, address, strict)
    return network


def IPv6Network(address: object, strict: object = True) -> ipaddress.IPv6Network:  # noqa: N802
    network: ipaddress.IPv6Network = _network(ipaddress.IPv6Network, address, strict)
    return network


IPADDRESS_MEMBERS: dict[str, object] = {
    "ip_address": ip_address, "ip_network": ip_network, "ip_interface": ip_interface,
    "IPv4Address": IPv4Address, "IPv6Address": IPv6Address, "IPv4Network": IPv4Network, "IPv6Network": IPv6Network,
    "AddressValueError": ipaddress.AddressValueError, "NetmaskValueError": ipaddress.NetmaskValueError,
}

# -- math, datetime ----------------------------------------------------------------------------

# Pure functions of their arguments, no caches. Left out: factorial, comb, perm (seconds of
# C time for a small argument), prod and fsum (consume iterables in C, past the iteration guard).
MATH_MEMBERS: dict[str, object] = {
    name: getattr(math, name)
    for name in ("acos", "asin", "atan", "atan2", "ceil", "copysign", "cos", "degrees", "e", "exp",
                 "fabs", "floor", "fmod", "gcd", "hypot", "inf", "isclose", "isfinite", "isinf", "isnan",
                 "isqrt", "log", "log10", "log2", "nan", "pi", "radians", "sin", "sqrt", "tan", "tau", "trunc")
}

MAX_TIMEZONE_NAME = 64


def timezone(offset: object, name: object = None) -> datetime.timezone:
    """datetime.timezone with a short name: strftime's %Z repeats it ("%Z" * 128 of a
    million-character name was 128 million characters from one call)."""
    if type(offset) is not datetime.timedelta:
        raise TypeError("timezone() takes a timedelta")
    if name is None:
        return datetime.timezone(offset)
    if type(name) is not str or len(name) > MAX_TIMEZONE_NAME:
        raise ValueError(f"time zone names are strings of at most {MAX_TIMEZONE_NAME} characters")
    return datetime.timezone(offset, name)


# The classes themselves: their methods that format or parse text (strftime, strptime and
# f-string specs) are bounded by the guards.
DATETIME_MEMBERS: dict[str, object] = {
    "datetime": datetime.datetime, "date": datetime.date, "time": datetime.time,
    "timedelta": datetime.timedelta, "timezone": timezone, "UTC": datetime.timezone.utc,
    "MINYEAR": datetime.MINYEAR, "MAXYEAR": datetime.MAXYEAR,
}

MODULES: dict[str, dict[str, object]] = {
    "re": RE_MEMBERS, "math": MATH_MEMBERS, "datetime": DATETIME_MEMBERS, "ipaddress": IPADDRESS_MEMBERS,
}

# Stand-ins that take the place of a class: `isinstance(x, ipaddress.IPv4Address)` must work.
STANDS_FOR: dict[Callable[..., Any], type] = {
    timezone: datetime.timezone,
    IPv4Address: ipaddress.IPv4Address, IPv6Address: ipaddress.IPv6Address,
    IPv4Network: ipaddress.IPv4Network, IPv6Network: ipaddress.IPv6Network,
}
