"""The reasons ledger: every builtin, module member and attribute a rule may use, and every
builtin it may not, each with the reason. Guards read these tables; tests check that the
ledger covers every name of `builtins`, so a new Python cannot add an unreviewed name.

Attribute access is an allow-list by exact type: a name absent from a type's entry is
refused, whatever it is. That is what closes the dunder walks, frame and generator
internals (CVE-2023-37271) and exception attributes that carry objects (`AttributeError.obj`,
CVE-2024-47532). `str.format` and `format_map` are handed out only as the guards' own
(formatting.py), which refuses field traversal (CVE-2023-41039, CVE-2026-76825).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import types

from sandbox import facades

# -- builtins -------------------------------------------------------------------------

# Plain builtins handed to rules as they are. Guarded replacements (iteration helpers,
# constructors that consume iterables) are added by guards.py under the same names.
ALLOWED_BUILTINS: dict[str, str] = {
    "None": "constant", "True": "constant", "False": "constant",
    "abs": "pure arithmetic", "bool": "pure conversion", "callable": "pure predicate",
    "chr": "pure conversion", "divmod": "pure arithmetic", "float": "pure conversion",
    "int": "pure conversion; int() of a str is capped by Python's 4300-digit limit",
    "isinstance": "pure predicate (guarded: maps guarded constructors back to their types)",
    "len": "pure; O(1)", "next": "advances a generator the rule made itself",
    "ord": "pure conversion", "range": "lazy; its size is checked wherever it is consumed",
    "repr": "guarded (text.describe): no memory addresses, depth and length bounded",
    "round": "guarded: refuses round(int, -n) when 10**n would pass max_int_bits",
    "str": "guarded (text.display): as repr; isinstance and str.lower still see the type",
    "hex": "pure conversion of a bounded int",
    "oct": "pure conversion of a bounded int", "bin": "pure conversion of a bounded int",
    "pow": "guarded: refuses results larger than max_int_bits",
    "all": "guarded iteration helper", "any": "guarded iteration helper",
    "dict": "guarded constructor", "enumerate": "guarded iteration helper, returns a list",
    "filter": "guarded iteration helper, returns a list", "frozenset": "guarded constructor",
    "list": "guarded constructor", "map": "guarded iteration helper, returns a list",
    "max": "guarded iteration helper", "min": "guarded iteration helper",
    "reversed": "guarded iteration helper, returns a list", "set": "guarded constructor",
    "sorted": "guarded iteration helper", "sum": "guarded iteration helper",
    "tuple": "guarded constructor", "zip": "guarded iteration helper, returns a list",
    "ArithmeticError": "exception a rule may raise or catch",
    "AssertionError": "exception a rule may raise or catch",
    "AttributeError": "exception a rule may raise or catch (its .obj/.name are not readable)",
    "Exception": "catch-all for rule errors; budget errors derive from BaseException instead",
    "IndexError": "exception a rule may raise or catch", "KeyError": "exception a rule may raise or catch",
    "LookupError": "exception a rule may raise or catch",
    "NotImplementedError": "exception a rule may raise or catch",
    "OverflowError": "exception a rule may raise or catch",
    "RuntimeError": "exception a rule may raise or catch", "TypeError": "exception a rule may raise or catch",
    "ValueError": "exception a rule may raise or catch",
    "ZeroDivisionError": "exception a rule may raise or catch",
}


def _deny(names: str, reason: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), reason)


DENIED_BUILTINS: dict[str, str] = {
    **_deny("open input print breakpoint help", "no direct I/O (print is rewritten to the rule's trace)"),
    **_deny("exec eval compile", "no producing new code"),
    **_deny("__import__ __loader__ __spec__ __build_class__", "no imports, no classes: modules are given as facades "
            "(__import__ exists only as INTERNAL_IMPORTS below, and rules cannot name it)"),
    **_deny("globals locals vars dir", "uncontrolled namespace access and introspection"),
    **_deny("getattr setattr delattr hasattr", "computed attribute names bypass the compile-time name check"),
    **_deny("type object super classmethod staticmethod property issubclass",
            "type machinery: the classic road to object.__subclasses__()"),
    **_deny("memoryview bytearray bytes", "raw buffers; bytes() of an int allocates that many bytes"),
    **_deny("id hash", "expose memory addresses or per-process hash seeds; no rule needs them"),
    **_deny("iter aiter anext", "raw iterators would skip the iteration guard"),
    **_deny("format", "format specs allocate by a width argument; f-strings, str.format and % cover "
                      "formatting with bounded specs"),
    **_deny("slice complex ascii", "not needed by rules; keeps the surface small"),
    **_deny("exit quit copyright credits license", "interactive helpers; exit raises SystemExit"),
    **_deny("__name__ __doc__ __package__ __debug__ NotImplemented Ellipsis", "module internals and sentinels"),
    **_deny("BaseException BaseExceptionGroup ExceptionGroup SystemExit KeyboardInterrupt GeneratorExit",
            "catching these could swallow the sandbox's own budget errors or stop the process"),
    **_deny(
        "BlockingIOError BrokenPipeError BufferError ChildProcessError ConnectionAbortedError "
        "ConnectionError ConnectionRefusedError ConnectionResetError EOFError EnvironmentError "
        "FileExistsError FileNotFoundError FloatingPointError IOError ImportError IndentationError "
        "InterruptedError IsADirectoryError MemoryError ModuleNotFoundError NameError "
        "NotADirectoryError OSError PermissionError ProcessLookupError RecursionError "
        "ReferenceError StopAsyncIteration StopIteration SyntaxError SystemError TabError "
        "TimeoutError UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError "
        "UnicodeTranslateError EncodingWarning PythonFinalizationError _IncompleteInputError",
        "exceptions of I/O, the interpreter or the sandbox itself; rules catch them as Exception",
    ),
    **_deny(
        "Warning BytesWarning DeprecationWarning FutureWarning ImportWarning PendingDeprecationWarning "
        "ResourceWarning RuntimeWarning SyntaxWarning UnicodeWarning UserWarning",
        "warnings are for the host's developers, not for rules",
    ),
}

# Modules C code imports through the *calling* frame's builtins: datetime.strftime and
# f"{when:%Y-%m-%d}" import `time`, datetime.strptime imports `_strptime`. The guarded
# `__import__` returns only these; rules cannot call it (names starting with "_" are
# compile errors).
INTERNAL_IMPORTS: dict[str, str] = {
    "time": "datetime.strftime and date format specs",
    "_strptime": "datetime.strptime",
}

# -- modules --------------------------------------------------------------------------

# The facades in facades.py: pre-bound global names, and what `import re` or `from re import
# compile` binds (the compiler turns import statements into `_import_` calls and refuses any
# other module or name): stand-ins with strict argument types that share no cache with the
# standard library.
# `random` is absent (rules must be deterministic and secrets come from `secrets` in the
# host), and so is `string` (string.Formatter resolves fields by attribute traversal).
MODULE_MEMBERS: dict[str, dict[str, object]] = facades.MODULES

# Every process-wide cache a rule can reach through the facades, and why it cannot carry
# anything from one evaluation to the next (DESIGN.md section 8: an evaluation is a function
# of its own input). tests/sandbox/test_ledger.py finds the lru_caches of these modules and
# checks that each is listed here.
STDLIB_CACHES: dict[str, str] = {
    "re._cache": "never used by rules: the re facade compiles through facades._compiled",
    "re._compile_repl": "never used by rules: the facade's sub/subn expand templates with their own parser "
                        "(facades._parse_template), and Match.expand is denied",
    "facades._patterns": "the facade's own, emptied when each evaluation starts: every pattern object "
                         "a rule gets was made in its own evaluation (or, at module level, for its rule set)",
    "re.RegexFlag._value2member_map_": "the enum keeps a pseudo-member for every flag combination ever "
                                       "made; rules get the flags as plain ints and never make one",
    "ipaddress._BaseV4._netmask_cache": "filled with every int prefix when the facade loads, and the facade "
                                        "passes only int prefixes: rules never change it",
    "ipaddress._BaseV6._netmask_cache": "as the IPv4 one",
    "ipaddress.IPv4Address.is_private": "lru_cache keyed on the (immutable) address, returns a bool that is "
                                        "a function of the address: a hit and a miss answer alike",
    "ipaddress.IPv4Address.is_global": "as is_private",
    "ipaddress.IPv6Address.is_private": "as is_private",
    "ipaddress.IPv4Network.is_global": "as is_private, keyed on the (immutable) network",
    "ipaddress._BaseNetwork.broadcast_address": "cached_property on one immutable network; the value is a "
                                                "function of the network (and shared snapshot networks hold "
                                                "the same value whoever computed it first)",
    "ipaddress._BaseNetwork.hostmask": "as broadcast_address",
    "ipaddress.IPv4Interface.hostmask": "as broadcast_address",
    "ipaddress.IPv6Interface.hostmask": "as broadcast_address",
    "_strptime._regex_cache": "format -> compiled regex, at most 5 and then cleared; strptime returns a "
                              "new datetime either way, and formats are bounded by the guards",
    "_strptime._TimeRE_cache": "locale tables, rebuilt only when the locale changes, which rules cannot do",
    "datetime.timezone.utc": "timezone(timedelta(0)) is always the same UTC singleton: constant, not state",
}

# -- attributes -----------------------------------------------------------------------

# Names refused on every type, whatever the allow-lists below would say.
DENIED_ATTRIBUTES: dict[str, str] = {
    "mro": "reaches BaseException and object, and from there everything",
    "now": "rules read the time from context.now, never the clock",
    "utcnow": "as now", "today": "as now",
    "center": "allocates by a width argument", "ljust": "allocates by a width argument",
    "rjust": "allocates by a width argument", "zfill": "allocates by a width argument",
    "expandtabs": "allocates by a tab-size argument",
    "to_bytes": "allocates by a length argument", "from_bytes": "not needed; bytes are not given to rules",
    "fromkeys": "consumes an iterable in C, past the iteration guard",
    "hosts": "enumerates address space: unbounded, and no rule needs it",
    "subnets": "as hosts", "address_exclude": "as hosts",
    "mapping": "dict views expose the mapping they view",
    "with_traceback": "tracebacks lead to frames",
    "translate": "a table of long replacements multiplies the string, past the size guards",
}


def _public(kind: type, *extra_denied: str) -> frozenset[str]:
    names = {name for name in dir(kind) if not name.startswith("_")}
    return frozenset(names - DENIED_ATTRIBUTES.keys() - set(extra_denied))


_DATETIME = frozenset(
    "year month day hour minute second microsecond tzinfo fold date time timetz replace astimezone "
    "utcoffset tzname dst weekday isoweekday isocalendar isoformat timestamp strftime fromisoformat "
    "fromtimestamp combine min max resolution toordinal fromordinal strptime".split()
)
_IP_ADDRESS = frozenset(
    "version is_private is_global is_loopback is_link_local is_multicast is_reserved is_unspecified "
    "is_site_local compressed exploded max_prefixlen reverse_pointer ipv4_mapped teredo sixtofour".split()
)
_IPV6_ONLY = frozenset({"ipv4_mapped", "teredo", "sixtofour", "is_site_local"})
_IP_NETWORK = frozenset(
    "version network_address broadcast_address netmask hostmask prefixlen num_addresses with_prefixlen "
    "with_netmask compressed exploded overlaps subnet_of supernet_of is_private is_global is_loopback "
    "is_link_local is_multicast is_reserved is_unspecified max_prefixlen".split()
)

# Attributes readable on instances, by exact type (a subclass gets nothing).
ATTRIBUTES: dict[type, frozenset[str]] = {
    str: _public(str, "maketrans", "encode"),
    int: _public(int), bool: _public(bool), float: _public(float, "fromhex"),
    list: _public(list), tuple: _public(tuple), set: _public(set), frozenset: _public(frozenset),
    dict: _public(dict), types.MappingProxyType: _public(types.MappingProxyType),
    type({}.keys()): frozenset({"isdisjoint"}), type({}.items()): frozenset({"isdisjoint"}),
    type({}.values()): frozenset(),
    range: frozenset({"start", "stop", "step", "count", "index"}),
    # sub/subn are bounded by the guards (facades.bounded_sub): the replacement repeats per
    # match, so re.sub('a', 'b' * 10**5, 'a' * 1000) would be 10**8 characters.
    re.Pattern: frozenset("match search fullmatch findall finditer split sub subn pattern flags groups "
                          "groupindex".split()),
    re.Match: frozenset("group groups groupdict start end span string re pos endpos lastindex lastgroup".split()),
    datetime.datetime: _DATETIME,
    datetime.date: _DATETIME & _public(datetime.date),
    datetime.time: _DATETIME & _public(datetime.time),
    datetime.timedelta: frozenset("days seconds microseconds total_seconds min max resolution".split()),
    datetime.timezone: frozenset({"utc", "utcoffset", "tzname", "dst"}),
    type(datetime.date(2000, 1, 1).isocalendar()): frozenset({"year", "week", "weekday"}),
    ipaddress.IPv4Address: _IP_ADDRESS - _IPV6_ONLY,
    ipaddress.IPv6Address: _IP_ADDRESS | {"scope_id"},
    ipaddress.IPv4Network: _IP_NETWORK, ipaddress.IPv6Network: _IP_NETWORK,
    ipaddress.IPv4Interface: (_IP_ADDRESS - _IPV6_ONLY) | {"ip", "network", "with_prefixlen"},
    ipaddress.IPv6Interface: _IP_ADDRESS | {"ip", "network", "with_prefixlen"},
}

# Attributes readable on classes themselves (`str.lower`, `datetime.datetime.fromisoformat`).
CLASS_ATTRIBUTES: dict[type, frozenset[str]] = {
    # Unbound str.join and str.replace would skip the size guards bound to instances.
    str: ATTRIBUTES[str] - {"join", "replace"},
    datetime.datetime: _DATETIME, datetime.date: ATTRIBUTES[datetime.date],
    datetime.time: ATTRIBUTES[datetime.time], datetime.timedelta: ATTRIBUTES[datetime.timedelta],
    datetime.timezone: frozenset({"utc"}),
}

# Any exception instance: its arguments, nothing that leads to objects or frames.
EXCEPTION_ATTRIBUTES = frozenset({"args"})

# Types a rule may subscript, iterate and (when it owns them) modify.
SUBSCRIPTABLE: frozenset[type] = frozenset({dict, list, tuple, str, range, types.MappingProxyType, re.Match})
ITERABLE: frozenset[type] = frozenset(
    {dict, list, tuple, str, range, set, frozenset, types.MappingProxyType, type({}.keys()),
     type({}.values()), type({}.items()), types.GeneratorType, facades.Matches}
)
# Every dict, list and set a rule can reach is its own: host data arrives frozen
# (MappingProxyType, tuple, frozenset), so writes to these cannot touch the host.
RULE_OWNED_CONTAINERS: frozenset[type] = frozenset({dict, list, set})
