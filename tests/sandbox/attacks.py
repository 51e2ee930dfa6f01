"""The attack corpus: rules that try to escape, poison or exhaust the sandbox, and exactly how each fails.

Every entry names one attack, says what it tries (public RestrictedPython advisories by
their CVE number) and pins the failure: a compile-time rejection with its "Line N: ..."
message, or a run-time trace outcome with its error text. An attack that starts to
succeed, or fails some other way, breaks one test by name. test_attacks.py runs them.

Scratch rules are `def rule(data, out)`: `data` is the frozen payload["input"] (see
PAYLOAD), `out` the writable result. Rule-API attacks are `def rule(user, context)`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

BOTH = ("inprocess", "process")
# C code that never returns (a regular expression, a modular power) cannot be stopped
# in-process; the documented defence is the worker's hard deadline.
PROCESS_ONLY = ("process",)

# The payload every scratch attack runs against; `who` varies in the state tests.
PAYLOAD: dict[str, Any] = {"input": {"who": "alice", "k": "v", "nested": {"a": [1, 2], "d": {"x": 1}}}}

# A loop that only ticks hits the step budget or the deadline, whichever comes first on
# the machine running the tests; both are the budget doing its job.
BUDGET_EXHAUSTED = r"StepsExceeded: more than 1000000 steps|DeadlineExceeded: deadline exceeded"


@dataclass(frozen=True, slots=True)
class Rejected:
    """compile_program refuses the source; one of its errors is exactly f"Line {line}: {message}"."""

    line: int
    message: str

    @property
    def error(self) -> str:
        return f"Line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Fails:
    """The source compiles; its run ends with an outcome and an error that `outcome` and `pattern`
    match in full."""

    outcome: str
    pattern: str


def fails(outcome: str, error: str) -> Fails:
    """A run-time failure with exactly this error text."""
    return Fails(outcome, re.escape(error))


def denied(kind: str, name: str, line: int) -> Fails:
    """The attribute guard's refusal, which names the type and never the object."""
    return fails("error", f"AttributeError: '{kind}' attribute '{name}' is not available to rules (line {line})")


def read_only(kind: str, line: int) -> Fails:
    return fails("error", f"TypeError: '{kind}' object is read-only for rules (line {line})")


IMPORTABLE = "rules may import only re, math, datetime and ipaddress"
FORMATTED_TOO_LONG = fails("error", "SizeExceeded: formatted text over 1000000 characters")
SUBSTITUTED_TOO_LONG = fails("error", "SizeExceeded: substitution result over 1000000 characters")


def too_wide(line: int) -> Fails:
    """%-formatting and str.format refuse widths and precisions past the f-string cap, before allocating."""
    return fails("error", f"ValueError: format widths and precisions are at most 999 in rules (line {line})")


def traversal(field: str, line: int) -> Fails:
    return fails("error", f"ValueError: field traversal is not available in rules: {{{field}}} (line {line})")


def import_refused(module: str, line: int) -> Rejected:
    return Rejected(line, f"import of '{module}' is not allowed in rules; {IMPORTABLE}")


def unavailable(name: str, line: int) -> Rejected:
    return Rejected(line, f"name '{name}' is not available to rules")


def restricted(name: str, line: int) -> Rejected:
    """RestrictedPython's compile-time list of frame, traceback and generator internals."""
    return Rejected(line, f'"{name}" is a restricted name, that is forbidden to access in RestrictedPython.')


def underscore_attribute(name: str, line: int) -> Rejected:
    return Rejected(line, f'"{name}" is an invalid attribute name because it starts with "_".')


def underscore_variable(name: str, line: int) -> Rejected:
    return Rejected(line, f'"{name}" is an invalid variable name because it starts with "_"')


def underscore_parameter(name: str, line: int) -> Rejected:
    return Rejected(line, f'"{name}" is an invalid parameter name because it starts with "_"')


FLAGS = ("ValueError: flags must be 0 or a combination of re.IGNORECASE, re.MULTILINE, re.DOTALL, re.VERBOSE, "
         "re.ASCII (line 2)")
CAPPED_MEMORY_MB = 64

SIZE_INT = fails("error", "SizeExceeded: integer result over 65536 bits")


def string_too_long(size: int) -> Fails:
    """A string result past max_string_length, refused before it is built."""
    return fails("error", f"SizeExceeded: str of {size} characters; the limit is 1000000")


def too_many(kind: str, size: int) -> Fails:
    """A collection (or a call's arguments) past max_sequence_items."""
    return fails("error", f"SizeExceeded: {kind} of {size} items; the limit is 100000")

def or_deadline(expected: Fails) -> Fails:
    """A size refusal that comes after 100,000 items or more of work: the sandbox's own loops charge
    the budget (sandbox/pacing.py), so on a loaded machine the 100 ms deadline may come first."""
    return Fails(f"{expected.outcome}|timeout", f"{expected.pattern}|DeadlineExceeded: deadline exceeded")


KILLED = fails("killed", "worker killed: deadline exceeded")
OUT_OF_MEMORY = fails("error", "MemoryError: the rule ran out of memory")


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    threat: str
    source: str
    expected: Rejected | Fails
    runners: tuple[str, ...] = BOTH
    host: str = "scratch"
    # Run on a worker whose address space is capped at CAPPED_MEMORY_MB (see test_attacks.py).
    capped_memory: bool = False


def attack(name: str, threat: str, source: str, expected: Rejected | Fails, *,
           runners: tuple[str, ...] = BOTH, host: str = "scratch", capped_memory: bool = False) -> Attack:
    return Attack(name, threat, textwrap.dedent(source).lstrip("\n"), expected, runners, host, capped_memory)


# A finditer stops at max_sequence_items matches (100,000 matches take about 100 ms of C here).
MATCHES_PAST_THE_CAP = or_deadline(fails("error", "SizeExceeded: more than 100000 matches"))
DEADLINE = fails("timeout", "DeadlineExceeded: deadline exceeded")
# A million-character string: a million and one empty matches.
LONG = '"a" * 999999'

# One call, much work: C code consuming an iterator, or the sandbox's own Python loops, run
# between two steps of the rule. In-process nothing but these guards stops them (the worker's
# deadline kills a worker, fail closed), so test_attacks.py also bounds their wall time there.
ONE_CALL: tuple[Attack, ...] = (
    attack("set_update_of_many_match_iterators",
           "set.update(*iterators) consumed every iterator in C, the size checked once built: eight "
           "finditers of a million matches were 1.25 GB and 26 s in-process from one statement", f"""
           def rule(data, out):
               text = {LONG}
               seen = set()
               seen.update(*[re.finditer("", text) for i in range(3)])
           """, MATCHES_PAST_THE_CAP),
    attack("set_update_of_match_iterators_each_within_the_cap",
           "each iterator within the cap, their total past it: the cap is on all arguments of one call", """
           def rule(data, out):
               text = "a" * 99999
               seen = set()
               seen.update(*[re.finditer("", text) for i in range(3)])
           """, or_deadline(fails("error", "SizeExceeded: more than 100000 items"))),
    attack("set_update_of_one_list_many_times",
           "x.update(*[items] * n): deduplication keeps the result small while C inserts n x 100,000 items "
           "(5.8 s at n = 1000)", """
           def rule(data, out):
               items = list(range(100000))
               seen = set()
               seen.update(*[items] * 1000)
               out["size"] = len(seen)
           """, too_many("arguments", 100000000)),
    attack("set_union_of_one_list_many_times", "union, the same with a new set", """
           def rule(data, out):
               items = list(range(100000))
               out["size"] = len(set().union(*[items] * 1000))
           """, too_many("arguments", 100000000)),
    attack("set_intersection_of_one_list_many_times",
           "intersection reads each argument whole though its result only shrinks", """
           def rule(data, out):
               items = list(range(100000))
               out["size"] = len(set(items).intersection(*[items] * 1000))
           """, too_many("arguments", 100000000)),
    attack("set_difference_update_of_one_list_many_times", "difference_update, in place", """
           def rule(data, out):
               items = list(range(100000))
               seen = {-1}
               seen.difference_update(*[items] * 1000)
           """, too_many("arguments", 100000000)),
    attack("set_issubset_of_a_match_iterator",
           "issubset builds a set of its argument in C: 150 MB from a finditer of a million matches", f"""
           def rule(data, out):
               out["subset"] = [set().issubset(re.finditer("", {LONG})) for i in range(3)]
           """, MATCHES_PAST_THE_CAP),
    attack("set_issuperset_of_a_match_iterator", "issuperset walks its whole argument in C", f"""
           def rule(data, out):
               out["superset"] = [{{1}}.issuperset(re.finditer("", {LONG})) for i in range(3)]
           """, MATCHES_PAST_THE_CAP),
    attack("frozenset_isdisjoint_of_a_match_iterator", "isdisjoint, on a frozen set", f"""
           def rule(data, out):
               out["disjoint"] = [frozenset({{1}}).isdisjoint(re.finditer("", {LONG})) for i in range(3)]
           """, MATCHES_PAST_THE_CAP),
    attack("dict_keys_isdisjoint_of_a_match_iterator", "a dict view's isdisjoint", f"""
           def rule(data, out):
               out["disjoint"] = [{{"k": 1}}.keys().isdisjoint(re.finditer("", {LONG})) for i in range(3)]
           """, MATCHES_PAST_THE_CAP),
    attack("membership_in_a_match_iterator",
           "`in` is not rewritten: it walks an iterator in C, past the iteration guard", f"""
           def rule(data, out):
               out["found"] = ["q" in re.finditer("", {LONG}) for i in range(10)]
           """, MATCHES_PAST_THE_CAP),
    attack("membership_in_a_compiled_pattern_s_match_iterator", "the same through Pattern.finditer", f"""
           def rule(data, out):
               pattern = re.compile("")
               out["found"] = ["q" in pattern.finditer({LONG}) for i in range(10)]
           """, MATCHES_PAST_THE_CAP),
    attack("regex_substitution_of_every_empty_match",
           "re.sub('', '', s) is a million rounds of the sandbox's own loop: 3.8 s per call, no step", f"""
           def rule(data, out):
               text = {LONG}
               out["sizes"] = [len(re.sub("", "", text)), len(re.sub("", "", text)), len(re.sub("", "", text))]
           """, DEADLINE),
    attack("regex_template_of_many_escapes", "a replacement template is parsed by the sandbox, escape by escape", """
           def rule(data, out):
               template = "\\\\n" * 499999
               out["sizes"] = [len(re.sub("a", template, "b")) for i in range(10)]
           """, DEADLINE),
    attack("regex_findall_three_times", "findall's counting loop, 100,000 matches a call", """
           def rule(data, out):
               text = "a" * 99999
               out["sizes"] = [len(re.findall("", text)) for i in range(10)]
           """, DEADLINE),
    attack("percent_format_of_many_escapes", "'%%' * 499999 % () is half a million fields: 2.6 s per call", """
           def rule(data, out):
               template = "%%" * 499999
               out["sizes"] = [len(template % ()), len(template % ()), len(template % ())]
           """, DEADLINE),
    # The field cap and the deadline race here (parsing 100,000 fields takes about the 100 ms
    # deadline of the tests' limits): either ends the rule, and either is a safe ending.
    attack("brace_format_of_many_fields", "str.format of 300,000 fields", """
           def rule(data, out):
               template = "{0}" * 300000
               out["sizes"] = [len(template.format("")) for i in range(10)]
           """, or_deadline(fails("error", "SizeExceeded: more than 100000 format fields"))),
    attack("brace_format_of_many_escapes", "'{{' is a field of its own to the parser", """
           def rule(data, out):
               template = "{{" * 499999
               out["sizes"] = [len(template.format()) for i in range(10)]
           """, or_deadline(fails("error", "SizeExceeded: more than 100000 format fields"))),
    attack("repr_of_a_large_structure", "repr walks a structure item by item in the sandbox's own code", """
           def rule(data, out):
               rows = [[0] * 1000] * 1000
               out["sizes"] = [len(repr(rows)) for i in range(10)]
           """, DEADLINE),
    attack("join_of_a_generator_of_long_strings",
           "str.join read a generator whole (250 MB of fresh 1 MB strings) before its size check", """
           def rule(data, out):
               text = "x" * 999000
               out["size"] = len("".join(text + str(i) for i in range(100000)))
           """, fails("error", "SizeExceeded: joined string of more than 1000000 characters")),
)

CORPUS: tuple[Attack, ...] = (
    # -- frames, tracebacks, generators (CVE-2023-37271) -------------------------------------
    attack("generator_frame_walk_to_globals",
           "CVE-2023-37271: gi_frame.f_back.f_back.f_globals reaches the host's frames", """
           def rule(data, out):
               def leak():
                   yield walker.gi_frame.f_back.f_back.f_globals
               walker = leak()
               out["globals"] = str(next(walker))
           """, restricted("gi_frame", 3)),
    attack("generator_code_object",
           "gi_code hands out the code object, and with it constants and names", """
           def rule(data, out):
               gen = (item for item in [1])
               out["code"] = str(gen.gi_code)
           """, restricted("gi_code", 3)),
    attack("coroutine_frame",
           "cr_frame, the coroutine twin of gi_frame", """
           def rule(data, out):
               gen = (item for item in [1])
               out["frame"] = str(gen.cr_frame)
           """, restricted("cr_frame", 3)),
    attack("generator_state_at_run_time",
           "generator attributes the compiler lets through are refused by the attribute guard", """
           def rule(data, out):
               gen = (item for item in [1])
               out["running"] = gen.gi_running
           """, denied("generator", "gi_running", 3)),
    attack("exception_traceback_to_frames",
           "e.__traceback__.tb_frame.f_globals is the classic walk out of an except block", """
           def rule(data, out):
               try:
                   1 / 0
               except ZeroDivisionError as error:
                   out["globals"] = str(error.__traceback__.tb_frame.f_globals)
           """, underscore_attribute("__traceback__", 5)),
    attack("traceback_frame_by_name",
           "tb_frame on anything that might be a traceback", """
           def rule(data, out):
               out["frame"] = str(data.tb_frame)
           """, restricted("tb_frame", 2)),
    attack("frame_back_by_name",
           "f_back on anything that might be a frame", """
           def rule(data, out):
               out["caller"] = str(data.f_back)
           """, restricted("f_back", 2)),
    attack("exception_with_traceback",
           "with_traceback attaches and exposes tracebacks", """
           def rule(data, out):
               try:
                   1 / 0
               except ZeroDivisionError as error:
                   out["tb"] = str(error.with_traceback)
           """, denied("ZeroDivisionError", "with_traceback", 5)),
    # -- dunder walks ------------------------------------------------------------------------
    attack("class_bases_subclasses_walk",
           "().__class__.__bases__[0].__subclasses__() lists every class in the process", """
           def rule(data, out):
               out["classes"] = str(().__class__.__bases__[0].__subclasses__())
           """, underscore_attribute("__class__", 2)),
    attack("function_globals",
           "a function's __globals__ is the rule's namespace, guards included", """
           def rule(data, out):
               out["globals"] = str(rule.__globals__)
           """, underscore_attribute("__globals__", 2)),
    attack("builtins_name",
           "__builtins__ holds the guarded builtins table shared by every evaluation", """
           def rule(data, out):
               out["builtins"] = str(__builtins__)
           """, unavailable("__builtins__", 2)),
    attack("module_facade_dict",
           "a facade's __dict__ would list what the facade hides", """
           def rule(data, out):
               out["members"] = str(re.__dict__)
           """, underscore_attribute("__dict__", 2)),
    attack("facade_internals_by_plain_name",
           "the facade's own slots (`members`) hold the real module functions", """
           def rule(data, out):
               out["members"] = str(re.members)
           """, fails("error", "AttributeError: module re has no member 'members' available to rules (line 2)")),
    attack("module_private_member",
           "reaching past the facade into the real module's internals", """
           def rule(data, out):
               out["compiler"] = str(re.sre_compile)
           """, fails("error", "AttributeError: module re has no member 'sre_compile' available to rules (line 2)")),
    attack("mro_by_method_name",
           "str.mro() reaches object, and from object everything", """
           def rule(data, out):
               out["mro"] = str(str.mro())
           """, denied("type", "mro", 2)),
    attack("function_attribute_read",
           "function internals under plain names", """
           def rule(data, out):
               def helper():
                   pass
               out["globals"] = str(helper.func_globals)
           """, denied("function", "func_globals", 4)),
    attack("dict_view_mapping",
           "dict views expose the mapping they view (the host's, for frozen payloads)", """
           def rule(data, out):
               out["mapping"] = str(data.keys().mapping)
           """, denied("dict_keys", "mapping", 2)),
    # -- format strings (CVE-2023-41039, CVE-2026-76825) -------------------------------------
    attack("str_format_field_traversal",
           "CVE-2023-41039: str.format resolves {0.__class__} with plain getattr", """
           def rule(data, out):
               out["leak"] = "{0.__class__}".format(data)
           """, traversal("0.__class__", 2)),
    attack("str_format_map_field_traversal",
           "CVE-2023-41039: format_map resolves fields the same way", """
           def rule(data, out):
               out["leak"] = "{payload.__class__}".format_map({"payload": data})
           """, traversal("payload.__class__", 2)),
    attack("str_format_through_the_class",
           "CVE-2026-76825: str.format reached through the class instead of an instance", """
           def rule(data, out):
               out["leak"] = str.format("{0.__class__.__mro__}", data)
           """, traversal("0.__class__.__mro__", 2)),
    attack("str_format_item_traversal",
           "CVE-2023-41039: {0[key]} subscripts with plain __getitem__, past the item guard", """
           def rule(data, out):
               out["leak"] = "{0[nested]}".format(data)
           """, traversal("0[nested]", 2)),
    attack("str_format_index_traversal", "{0[0]}: the same with an index", """
           def rule(data, out):
               out["leak"] = "{0[0]}".format([data])
           """, traversal("0[0]", 2)),
    attack("str_format_keyword_traversal", "{x.y}: traversal from a keyword argument", """
           def rule(data, out):
               out["leak"] = "{x.keys}".format(x=data)
           """, traversal("x.keys", 2)),
    attack("str_format_traversal_inside_a_nested_spec", "a traversal hidden in a nested format spec", """
           def rule(data, out):
               out["leak"] = "{0:{0.__class__}}".format(data)
           """, traversal("0.__class__", 2)),
    attack("str_format_literal_width",
           "str.format's spec allocates by its width, as f-strings' do", """
           def rule(data, out):
               out["size"] = len("{:>1000000000}".format(""))
           """, too_wide(2)),
    attack("str_format_width_from_a_keyword",
           "a nested replacement field takes the width from the arguments", """
           def rule(data, out):
               out["size"] = len("{:>{w}}".format("", w=10 ** 9))
           """, too_wide(2)),
    attack("str_format_whole_spec_from_an_argument",
           "the whole spec substituted from an argument is checked after substitution", """
           def rule(data, out):
               out["size"] = len("{:{}}".format("", ">1000000000"))
           """, too_wide(2)),
    attack("str_format_precision_from_an_argument", "precision is checked like width", """
           def rule(data, out):
               out["size"] = len("{:.{}f}".format(1.0, 10 ** 6))
           """, too_wide(2)),
    attack("str_format_spec_nested_twice", "nesting past one level, as CPython refuses it", """
           def rule(data, out):
               out["x"] = "{:{:{}}}".format(1, 2, 3)
           """, fails("error", "ValueError: Max string recursion exceeded (line 2)")),
    attack("str_format_repeated_fields", "one argument repeated by many fields", """
           def rule(data, out):
               out["size"] = len(("{0}" * 100000).format("x" * 100))
           """, FORMATTED_TOO_LONG),
    attack("str_format_map_repeated_fields", "format_map repeats a value the same way", """
           def rule(data, out):
               out["size"] = len(("{k}" * 100000).format_map({"k": "x" * 100}))
           """, FORMATTED_TOO_LONG),
    attack("str_format_date_width",
           "a date's spec is a strftime format, also through str.format", """
           def rule(data, out):
               when = datetime.datetime(2026, 1, 1)
               out["x"] = "{:%999Y}".format(when)
           """, fails("error", "ValueError: date format widths are at most 2 digits in rules (line 3)")),
    attack("string_formatter",
           "CVE-2026-76825: string.Formatter().get_field traverses like str.format", """
           def rule(data, out):
               out["leak"] = str(string.Formatter().get_field("0.__class__", [data], {}))
           """, unavailable("string", 2)),
    attack("format_builtin_width",
           "format(x, '>1000000000') allocates by its width", """
           def rule(data, out):
               out["wide"] = format("", ">1000000000")
           """, unavailable("format", 2)),
    attack("fstring_literal_width",
           "an f-string format spec allocates by its width, as str.ljust does", """
           def rule(data, out):
               out["size"] = len(f"{'':>1000000000}")
           """, Rejected(2, "Format widths and precisions over 3 digits are not allowed in rules.")),
    attack("fstring_width_from_a_variable",
           "a nested replacement field makes the width a run-time value", """
           def rule(data, out):
               width = 10 ** 9
               out["size"] = len(f"{'':>{width}}")
           """, Rejected(3, "Format specs in f-strings must be literal text in rules.")),
    attack("fstring_datetime_strftime_width",
           "a datetime format spec is a strftime format, and glibc pads %1000000000Y", """
           def rule(data, out):
               when = datetime.datetime(2026, 1, 1)
               out["year"] = f"{when:%1000000000Y}"
           """, Rejected(3, "Format widths and precisions over 3 digits are not allowed in rules.")),
    attack("percent_format_width_from_arguments",
           "printf-style '%*s' takes its width from the arguments", """
           def rule(data, out):
               out["size"] = len("%*s" % (10 ** 9, ""))
           """, too_wide(2)),
    attack("percent_format_in_place",
           "%= is the same formatting through the in-place operator", """
           def rule(data, out):
               text = "%1000000000s"
               text %= ""
           """, too_wide(3)),
    attack("percent_format_zero_padded_width", "a zero-padded width is the same allocation", """
           def rule(data, out):
               out["x"] = "%0999999d" % 1
           """, too_wide(2)),
    attack("percent_format_precision", "a float's precision allocates digits", """
           def rule(data, out):
               out["x"] = "%.1000f" % 1.0
           """, too_wide(2)),
    attack("percent_format_precision_from_arguments", "'%.*f' takes its precision from the arguments", """
           def rule(data, out):
               out["x"] = "%.*f" % (10 ** 9, 1.0)
           """, too_wide(2)),
    attack("percent_format_negative_star_width", "a negative star width is a left-justified width", """
           def rule(data, out):
               out["x"] = "%*s" % (-10 ** 9, "")
           """, too_wide(2)),
    attack("percent_format_width_digits_past_int_parsing", "a width of many digits is refused unparsed", """
           def rule(data, out):
               out["x"] = ("%" + "9" * 5000 + "d") % 1
           """, too_wide(2)),
    attack("percent_format_repeated_fields", "many %s fields over long values", """
           def rule(data, out):
               out["size"] = len(("%s" * 100000) % tuple(["x" * 1000] * 100000))
           """, FORMATTED_TOO_LONG),
    attack("percent_format_mapping_repeated", "one mapping key repeated by many fields", """
           def rule(data, out):
               out["size"] = len(("%(k)s" * 100000) % {"k": "x" * 1000})
           """, FORMATTED_TOO_LONG),
    attack("percent_format_repr_of_a_function", "%r must not show an address", """
           def rule(data, out):
               out["r"] = "%r %s" % (rule, rule)
               out["stop"] = True
               raise ValueError(out["r"])
           """, fails("error", "ValueError: <function rule> <function rule> (line 4)")),
    # -- exception objects (CVE-2024-47532) --------------------------------------------------
    attack("attribute_error_obj",
           "CVE-2024-47532: AttributeError.obj hands back the object the guard refused", """
           def rule(data, out):
               try:
                   data.nope
               except AttributeError as error:
                   out["leak"] = str(error.obj)
           """, denied("AttributeError", "obj", 5)),
    attack("attribute_error_name",
           "AttributeError.name, the other attribute Python 3.10 added", """
           def rule(data, out):
               try:
                   data.nope
               except AttributeError as error:
                   out["leak"] = error.name
           """, denied("AttributeError", "name", 5)),
    # -- except* (CVE-2025-22153) ------------------------------------------------------------
    attack("except_star_type_confusion",
           "CVE-2025-22153: try/except* confuses the guards' view of the exception's type", """
           def rule(data, out):
               try:
                   1 / 0
               except* ZeroDivisionError as group:
                   out["group"] = str(group)
           """, Rejected(2, "TryStar statements are not allowed.")),
    # -- shadowing guard hooks (CVE-2026-55830) ----------------------------------------------
    attack("guard_hook_as_positional_only_parameter",
           "CVE-2026-55830: `def f(_getattr_, /)` shadows the attribute guard inside f", """
           def rule(data, out):
               def unguarded(_getattr_, /):
                   return data.keys().mapping
               out["leak"] = str(unguarded(lambda obj, name: obj))
           """, underscore_parameter("_getattr_", 2)),
    attack("guard_hook_as_lambda_parameter",
           "CVE-2026-55830: a lambda parameter named _write_ disables the write guard in it", """
           def rule(data, out):
               poison = lambda _write_: 1
           """, underscore_parameter("_write_", 2)),
    attack("guard_hook_as_keyword_only_parameter",
           "CVE-2026-55830: a keyword-only parameter shadows _getitem_ the same way", """
           def rule(data, out):
               def unguarded(*, _getitem_=None):
                   return data["k"]
           """, underscore_parameter("_getitem_", 2)),
    attack("guard_hook_as_star_args",
           "CVE-2026-55830: *_getiter_ binds the iteration guard's name", """
           def rule(data, out):
               def unguarded(*_getiter_):
                   return [item for item in data]
           """, underscore_parameter("_getiter_", 2)),
    attack("guard_hook_by_walrus",
           "an assignment expression rebinding _getattr_", """
           def rule(data, out):
               (_getattr_ := 1)
           """, underscore_variable("_getattr_", 2)),
    attack("guard_hook_as_exception_name",
           "`except ... as _write_` binds the write guard's name", """
           def rule(data, out):
               try:
                   1 / 0
               except ZeroDivisionError as _write_:
                   pass
           """, underscore_variable("_write_", 4)),
    attack("tick_hook_as_loop_variable",
           "a loop variable named _tick_ would switch the step budget off", """
           def rule(data, out):
               for _tick_ in [lambda: True]:
                   pass
           """, underscore_variable("_tick_", 2)),
    attack("guard_hook_by_match_capture",
           "a match statement's capture pattern binds any name, _write_ included", """
           def rule(data, out):
               match data:
                   case _write_:
                       pass
           """, Rejected(2, "Match statements are not allowed.")),
    attack("private_module_variable",
           "names starting with an underscore are the sandbox's own", """
           _cache = []
           def rule(data, out):
               pass
           """, underscore_variable("_cache", 1)),
    attack("private_helper_function",
           "a function named like a guard hook", """
           def _getattr_(obj, name):
               return obj
           def rule(data, out):
               pass
           """, Rejected(1, '"_getattr_" is an invalid function name because it starts with "_"')),
    # -- computed attribute access and introspection -----------------------------------------
    attack("getattr_computed_dunder",
           "getattr with a computed name skips the compile-time underscore check", """
           def rule(data, out):
               out["cls"] = str(getattr(data, "__" + "class__"))
           """, unavailable("getattr", 2)),
    attack("setattr_on_host_object",
           "setattr writes attributes the write guard would refuse", """
           def rule(data, out):
               setattr(out, "values", {})
           """, unavailable("setattr", 2)),
    attack("vars_of_host_object",
           "vars() returns an object's __dict__", """
           def rule(data, out):
               out["vars"] = str(vars(out))
           """, unavailable("vars", 2)),
    attack("dir_of_host_object",
           "dir() enumerates names to aim at", """
           def rule(data, out):
               out["names"] = dir(out)
           """, unavailable("dir", 2)),
    attack("getattr_defined_only_in_dead_code",
           "an assignment that never runs satisfies the compile-time name check; run time still refuses", """
           if False:
               getattr = None
           def rule(data, out):
               out["cls"] = str(getattr(data, "__" + "class__"))
           """, fails("error", "NameError: name 'getattr' is not defined (line 4)")),
    attack("type_defined_only_in_dead_code",
           "the same trick for type(), the first step of a class walk", """
           if False:
               type = None
           def rule(data, out):
               out["type"] = str(type(data))
           """, fails("error", "NameError: name 'type' is not defined (line 4)")),
    attack("eval_defined_only_in_dead_code",
           "the same trick for eval, which RestrictedPython refuses by call shape", """
           if False:
               eval = None
           def rule(data, out):
               eval("1")
           """, Rejected(4, "Eval calls are not allowed.")),
    # -- imports and code execution ----------------------------------------------------------
    attack("import_os",
           "import os, then os.system", """
           import os
           def rule(data, out):
               os.system("id")
           """, import_refused("os", 1)),
    attack("from_import_inside_the_rule",
           "from-imports inside a function", """
           def rule(data, out):
               from subprocess import run
               run(["id"])
           """, import_refused("subprocess", 2)),
    attack("import_a_submodule_of_a_facade", "re.foo would be a real module lookup", """
           import re.foo
           def rule(data, out):
               pass
           """, import_refused("re.foo", 1)),
    attack("import_a_facade_and_a_real_module", "one refused name refuses the statement", """
           def rule(data, out):
               import re, sys
           """, import_refused("sys", 2)),
    attack("relative_import", "a relative import resolves against the host's package", """
           from . import guards
           def rule(data, out):
               pass
           """, Rejected(1, f"relative imports are not allowed in rules; {IMPORTABLE}")),
    attack("star_import", "a star import would bind names nobody reviewed", """
           from math import *
           def rule(data, out):
               pass
           """, Rejected(1, f"'from math import *' is not allowed in rules: name what you import; {IMPORTABLE}")),
    attack("from_facade_import_private", "the real module's private compile, with its shared cache", """
           from re import _compile
           def rule(data, out):
               pass
           """, Rejected(1, f"cannot import '_compile' from re in rules (did you mean 'compile'?); {IMPORTABLE}")),
    attack("from_facade_import_a_module_it_uses", "datetime's own import of sys", """
           def rule(data, out):
               from datetime import sys
           """, Rejected(2, "cannot import 'sys' from datetime in rules: datetime offers MAXYEAR, MINYEAR, UTC, "
                            f"date, datetime, time, timedelta, timezone; {IMPORTABLE}")),
    attack("from_facade_import_a_denied_member", "math.factorial is left out of the facade (seconds of C time)", """
           from math import factorial
           def rule(data, out):
               pass
           """, Rejected(1, "cannot import 'factorial' from math in rules: math offers acos, asin, atan, atan2, ceil, "
                            "copysign, cos, degrees, e, exp, fabs, floor, fmod, gcd, hypot, inf, isclose, isfinite, "
                            "isinf, isnan, isqrt, log, log10, log2, nan, pi, radians, sin, sqrt, tan, tau, trunc; "
                            f"{IMPORTABLE}")),
    attack("import_as_a_guard_name", "binding an import to _getattr_ would replace the attribute guard", """
           import re as _getattr_
           def rule(data, out):
               pass
           """, underscore_variable("_getattr_", 1)),
    attack("from_import_as_a_guard_name", "the same through a from-import", """
           def rule(data, out):
               from math import floor as _write_
           """, underscore_variable("_write_", 2)),
    attack("imported_facade_dict", "import re, then the facade's __dict__", """
           import re
           def rule(data, out):
               out["members"] = str(re.__dict__)
           """, underscore_attribute("__dict__", 3)),
    attack("imported_function_globals", "a facade function imported by name, then its __globals__", """
           from re import compile as c
           def rule(data, out):
               out["globals"] = str(c.__globals__)
           """, underscore_attribute("__globals__", 3)),
    attack("imported_clock_method_owner", "datetime.now's __self__ is the class, and now the clock", """
           import datetime
           def rule(data, out):
               out["x"] = str(datetime.datetime.now.__self__)
           """, underscore_attribute("__self__", 3)),
    attack("imported_class_reads_the_clock", "datetime imported by name is the class, without now()", """
           from datetime import datetime
           def rule(data, out):
               out["now"] = str(datetime.now())
           """, denied("type", "now", 3)),
    attack("assign_to_an_imported_facade", "replacing a facade member would change it for every evaluation", """
           import re
           def rule(data, out):
               re.compile = None
           """, read_only("Facade", 3)),
    attack("assign_to_a_facade_imported_twice_under_another_name", "the second import is the same facade", """
           import re
           def rule(data, out):
               import re as again
               again.compile = None
           """, read_only("Facade", 4)),
    attack("assign_to_an_imported_class", "a class imported by name is shared by every evaluation", """
           from datetime import timedelta
           def rule(data, out):
               timedelta.days = 5
           """, read_only("type", 3)),
    attack("import_after_shadowing", "a shadowed name imported again is the facade again, still read-only", """
           math = {"pi": 3}
           def rule(data, out):
               import math
               math.pi = 3
           """, read_only("Facade", 4)),
    attack("dunder_import",
           "__import__ called by name", """
           def rule(data, out):
               __import__("os").system("id")
           """, Rejected(2, f"name '__import__' is not available to rules; {IMPORTABLE}, with import statements")),
    attack("importlib",
           "importlib.import_module as a pre-imported name", """
           def rule(data, out):
               importlib.import_module("os")
           """, Rejected(2, f"name 'importlib' is not available to rules; {IMPORTABLE}, with import statements")),
    attack("eval_call", "eval of attacker-built source", """
           def rule(data, out):
               eval("__import__('os')")
           """, unavailable("eval", 2)),
    attack("exec_call", "exec of attacker-built source", """
           def rule(data, out):
               exec("import os")
           """, unavailable("exec", 2)),
    attack("compile_call", "compile() makes code objects", """
           def rule(data, out):
               compile("1", "x", "eval")
           """, unavailable("compile", 2)),
    attack("open_file", "reading the host's files", """
           def rule(data, out):
               out["passwd"] = open("/etc/passwd").read()
           """, unavailable("open", 2)),
    attack("globals_call", "globals() is the rule's namespace with the guard hooks", """
           def rule(data, out):
               out["globals"] = str(globals())
           """, unavailable("globals", 2)),
    attack("locals_call", "locals() inside a frame", """
           def rule(data, out):
               out["locals"] = str(locals())
           """, unavailable("locals", 2)),
    attack("type_call", "type(x) is the first step of every class walk", """
           def rule(data, out):
               out["type"] = str(type(data))
           """, unavailable("type", 2)),
    attack("object_call", "object is the root every subclass walk starts from", """
           def rule(data, out):
               out["object"] = str(object)
           """, unavailable("object", 2)),
    attack("super_call", "super() reaches parent classes", """
           def rule(data, out):
               out["super"] = str(super())
           """, unavailable("super", 2)),
    attack("id_call", "id() exposes memory addresses", """
           def rule(data, out):
               out["address"] = id(data)
           """, unavailable("id", 2)),
    # -- statements the rule language leaves out ---------------------------------------------
    attack("class_definition", "classes bring metaclasses, descriptors and __init_subclass__", """
           class Payload:
               pass
           def rule(data, out):
               pass
           """, Rejected(1, "Class definitions are not allowed in rules.")),
    attack("with_statement", "context managers run __enter__/__exit__ on arbitrary objects", """
           def rule(data, out):
               with data:
                   pass
           """, Rejected(2, "With statements are not allowed in rules.")),
    attack("global_statement", "global would share a name across functions and module code", """
           SEEN = []
           def rule(data, out):
               global SEEN
               SEEN = [data["who"]]
           """, Rejected(3, "Global statements are not allowed in rules.")),
    attack("nonlocal_statement", "nonlocal rebinds an enclosing scope's names", """
           def rule(data, out):
               seen = 0
               def bump():
                   nonlocal seen
                   seen = seen + 1
           """, Rejected(4, "Nonlocal statements are not allowed.")),
    attack("async_function", "coroutines carry cr_frame and run on no budget", """
           async def leak():
               pass
           def rule(data, out):
               pass
           """, Rejected(1, "AsyncFunctionDef statements are not allowed.")),
    # -- the process's own exceptions --------------------------------------------------------
    attack("catch_base_exception",
           "except BaseException would swallow the budget errors", """
           def rule(data, out):
               try:
                   while True:
                       pass
               except BaseException:
                   pass
           """, unavailable("BaseException", 5)),
    attack("raise_system_exit", "SystemExit stops the interpreter that runs the rule", """
           def rule(data, out):
               raise SystemExit(0)
           """, unavailable("SystemExit", 2)),
    attack("raise_keyboard_interrupt", "KeyboardInterrupt unwinds the host's event loop", """
           def rule(data, out):
               raise KeyboardInterrupt
           """, unavailable("KeyboardInterrupt", 2)),
    attack("raise_generator_exit", "GeneratorExit confuses the host's generators", """
           def rule(data, out):
               raise GeneratorExit
           """, unavailable("GeneratorExit", 2)),
    # -- swallowing the budget errors --------------------------------------------------------
    attack("bare_except_around_an_endless_loop",
           "a bare except: would catch the budget error if it caught everything", """
           def rule(data, out):
               while True:
                   try:
                       while True:
                           pass
                   except:
                       pass
           """, Fails("timeout", BUDGET_EXHAUSTED)),
    attack("except_exception_around_an_endless_loop",
           "except Exception catches the rule's errors, not the budget's", """
           def rule(data, out):
               while True:
                   try:
                       while True:
                           pass
                   except Exception:
                       pass
           """, Fails("timeout", BUDGET_EXHAUSTED)),
    attack("endless_loop_in_finally",
           "a finally block that loops again after the budget ran out", """
           def rule(data, out):
               try:
                   while True:
                       pass
               finally:
                   while True:
                       pass
           """, Fails("timeout", BUDGET_EXHAUSTED)),
    attack("return_from_finally",
           "return in finally discards DeadlineExceeded and reports the rule as ok", """
           def rule(data, out):
               out["decision"] = "allow"
               try:
                   while True:
                       pass
               finally:
                   return
           """, Rejected(7, '"return" cannot leave a finally block in rules.')),
    attack("break_from_finally",
           "break in finally discards the budget error and the loop goes on", """
           def rule(data, out):
               while True:
                   try:
                       while True:
                           pass
                   finally:
                       break
           """, Rejected(7, '"break" cannot leave a finally block in rules.')),
    attack("continue_from_nested_finally",
           "continue in an inner finally, inside a loop that is inside an outer finally", """
           def rule(data, out):
               try:
                   pass
               finally:
                   for attempt in range(3):
                       try:
                           while True:
                               pass
                       finally:
                           continue
           """, Rejected(10, '"continue" cannot leave a finally block in rules.')),
    attack("yield_from_finally",
           "yield in finally suspends with the budget error pending and hands the consumer a value", """
           def stubborn():
               while True:
                   try:
                       while True:
                           pass
                   finally:
                       yield "allow"
           def rule(data, out):
               out["decision"] = next(stubborn())
           """, Rejected(7, '"yield" cannot leave a finally block in rules.')),
    # -- CPU and step budgets ----------------------------------------------------------------
    attack("endless_loop", "while True: pass", """
           def rule(data, out):
               while True:
                   pass
           """, Fails("timeout", BUDGET_EXHAUSTED)),
    attack("exponential_lambda_recursion",
           "lambdas have no statements to tick: 2**40 calls that never touch a loop", """
           def rule(data, out):
               grow = lambda n: n and (grow(n - 1), grow(n - 1))
               grow(40)
           """, Fails("timeout", BUDGET_EXHAUSTED)),
    attack("deep_recursion", "unbounded recursion to exhaust the C stack", """
           def rule(data, out):
               def down(n):
                   return down(n + 1)
               down(0)
           """, fails("error", "RecursionError: maximum recursion depth exceeded")),
    attack("catastrophic_regex",
           "(a+)+$ backtracks 2**40 times inside the C regex engine", """
           def rule(data, out):
               out["match"] = bool(re.match("(a+)+$", "a" * 40 + "b"))
           """, KILLED, runners=PROCESS_ONLY),
    attack("modular_power_of_huge_numbers",
           "pow(a, b, m) with 16000-bit operands: a small result after seconds of C arithmetic", """
           def rule(data, out):
               out["big"] = pow(3, 2 ** 16000, 2 ** 16000 + 1) > 1
           """, KILLED, runners=PROCESS_ONLY),
    attack("ipv6_address_space_by_unpacking",
           "[*network] enumerated ::/0 without the iteration guard (the worker was killed); unpacking "
           "now goes through it", """
           def rule(data, out):
               out["count"] = len([*ipaddress.ip_network("::/0")])
           """, fails("error", "TypeError: 'IPv6Network' object is not iterable by rules (line 2)")),
    attack("network_iteration",
           "for-loops over a network go through the iteration guard", """
           def rule(data, out):
               for address in ipaddress.ip_network("::/0"):
                   pass
           """, fails("error", "TypeError: 'IPv6Network' object is not iterable by rules (line 2)")),
    attack("network_hosts",
           "hosts() enumerates a network's addresses", """
           def rule(data, out):
               out["hosts"] = list(ipaddress.ip_network("10.0.0.0/8").hosts())
           """, denied("IPv4Network", "hosts", 2)),
    attack("math_factorial", "factorial(10**6) is seconds of C", """
           def rule(data, out):
               out["big"] = math.factorial(10 ** 6) > 1
           """, fails("error", "AttributeError: module math has no member 'factorial' available to rules (line 2)")),
    # -- size guards -------------------------------------------------------------------------
    attack("sum_of_a_huge_range", "sum(range(10**10)) iterates ten billion times", """
           def rule(data, out):
               out["sum"] = sum(range(10 ** 10))
           """, fails("error", "SizeExceeded: range of 10000000000 items; the limit is 100000")),
    attack("list_of_a_huge_range", "list(range(...)) materializes a million items", """
           def rule(data, out):
               out["items"] = list(range(10 ** 6))
           """, fails("error", "SizeExceeded: range of 1000000 items; the limit is 100000")),
    attack("list_of_a_long_string", "list() of a million-character string", """
           def rule(data, out):
               out["items"] = list("a" * 1000000)
           """, fails("error", "SizeExceeded: more than 100000 items")),
    attack("string_repetition", "'a' * 10**10 is ten gigabytes", """
           def rule(data, out):
               out["big"] = "a" * 10 ** 10
           """, string_too_long(10000000000)),
    attack("string_repetition_in_place", "*= is the same repetition", """
           def rule(data, out):
               text = "a"
               text *= 10 ** 10
           """, string_too_long(10000000000)),
    attack("tower_of_powers", "10**10**10 has ten billion digits", """
           def rule(data, out):
               out["big"] = 10 ** 10 ** 10 > 0
           """, SIZE_INT),
    attack("huge_left_shift", "1 << 10**9 is a billion-bit integer", """
           def rule(data, out):
               out["big"] = (1 << 10 ** 9) > 0
           """, SIZE_INT),
    attack("round_to_negative_digits",
           "round(1, -10**7) computes 10**(10**7) before it rounds", """
           def rule(data, out):
               out["zero"] = round(1, -10 ** 7)
           """, SIZE_INT),
    attack("join_amplification", "joining long strings", """
           def rule(data, out):
               out["size"] = len(",".join(["a" * 1000000] * 2))
           """, fails("error", "SizeExceeded: joined string of 2000001 characters")),
    attack("replace_amplification", "replacing each character with a long string", """
           def rule(data, out):
               out["size"] = len(("a" * 1000).replace("a", "b" * 10000))
           """, fails("error", "SizeExceeded: replacement result too long")),
    attack("join_through_the_class", "str.join unbound skips the guard bound to instances", """
           def rule(data, out):
               out["size"] = len(str.join("", ["a" * 1000000] * 100))
           """, denied("type", "join", 2)),
    attack("replace_through_the_class", "str.replace unbound skips the guard too", """
           def rule(data, out):
               out["size"] = len(str.replace("a" * 1000, "a", "b" * 100000))
           """, denied("type", "replace", 2)),
    attack("translate_amplification", "translate with a table of long replacements", """
           def rule(data, out):
               out["size"] = len(("a" * 1000).translate({97: "b" * 100000}))
           """, denied("str", "translate", 2)),
    attack("regex_substitution_amplification", "re.sub repeats its replacement per match", """
           def rule(data, out):
               out["size"] = len(re.sub("a", "b" * 100000, "a" * 1000))
           """, SUBSTITUTED_TOO_LONG),
    attack("pattern_substitution_amplification", "Pattern.sub, the same through a compiled pattern", """
           def rule(data, out):
               out["size"] = len(re.compile("a").sub("b" * 100000, "a" * 1000))
           """, SUBSTITUTED_TOO_LONG),
    attack("regex_subn_amplification", "re.subn, the same with a count", """
           def rule(data, out):
               out["size"] = re.subn("a", "b" * 100000, "a" * 1000)[1]
           """, SUBSTITUTED_TOO_LONG),
    attack("regex_empty_pattern_amplification", "an empty pattern matches between every two characters", """
           def rule(data, out):
               out["size"] = len(re.sub("", "x" * 1000, "a" * 10000))
           """, SUBSTITUTED_TOO_LONG),
    attack("regex_group_reference_amplification", "one long group repeated by its template", """
           def rule(data, out):
               out["size"] = len(re.sub("(a+)", "\\\\1" * 1000, "a" * 10000))
           """, SUBSTITUTED_TOO_LONG),
    attack("regex_named_group_amplification", "the same through \\g<name>", """
           def rule(data, out):
               out["size"] = len(re.compile("(?P<all>a+)").sub("\\\\g<all>" * 1000, "a" * 10000))
           """, SUBSTITUTED_TOO_LONG),
    attack("regex_callable_replacement_amplification", "a function returns a long replacement per match", """
           def rule(data, out):
               out["size"] = len(re.sub("", lambda found: "x" * 1000, "a" * 10000))
           """, SUBSTITUTED_TOO_LONG),
    attack("regex_callable_replacement_never_returns", "a replacement function is rule code, under the budget", """
           def spin(found):
               while True:
                   pass
           def rule(data, out):
               out["x"] = re.sub("a", spin, "a")
           """, Fails("timeout", BUDGET_EXHAUSTED)),
    attack("regex_callable_replacement_returns_an_object", "a replacement must be text", """
           def rule(data, out):
               out["x"] = re.sub("a", lambda found: data, "a")
           """, fails("error", "TypeError: expected str instance, mappingproxy found (line 2)")),
    attack("regex_substitution_count_is_an_int", "count is an int, as documented", """
           def rule(data, out):
               out["x"] = re.sub("a", "b", "aaa", 1.5)
           """, fails("error", "TypeError: count must be an int (line 2)")),
    attack("ljust_width", "ljust allocates by its width", """
           def rule(data, out):
               out["wide"] = "a".ljust(10 ** 9)
           """, denied("str", "ljust", 2)),
    attack("center_width", "center allocates by its width", """
           def rule(data, out):
               out["wide"] = "a".center(10 ** 9)
           """, denied("str", "center", 2)),
    attack("zfill_width", "zfill allocates by its width", """
           def rule(data, out):
               out["wide"] = "1".zfill(10 ** 9)
           """, denied("str", "zfill", 2)),
    attack("bytes_by_encoding", "encode() is the way to bytes, and bytes are not rule data", """
           def rule(data, out):
               out["raw"] = str("a".encode())
           """, denied("str", "encode", 2)),
    attack("memory_by_doubling_a_list",
           "x = x + x a few dozen times: millions of items in a handful of steps", """
           def rule(data, out):
               items = [0]
               while True:
                   items = items + items
           """, too_many("list", 131072)),
    attack("memory_by_doubling_a_string",
           "text += text: the whole address space before the deadline is ever checked", """
           def rule(data, out):
               text = "a" * 1000000
               while True:
                   text += text
           """, string_too_long(2000000)),
    attack("memory_by_keeping_many_long_strings",
           "each string within the limit, a million characters more every step: only the address space "
           "bounds what a rule keeps", """
           def rule(data, out):
               kept = []
               while True:
                   kept.append("a" * 999000 + str(len(kept)))
           """, OUT_OF_MEMORY, runners=PROCESS_ONLY, capped_memory=True),
    # -- growth without `*`: each operand within the limits, the result past them ------------
    attack("string_doubled_by_concatenation",
           "s = s + s doubles a string each step: twelve steps from 900,000 characters was 3.6 GB in-process, "
           "and a killed worker in a pool", """
           def rule(data, out):
               text = "x" * 900000
               for step in range(3):
                   text = text + text
               out["size"] = len(text)
           """, string_too_long(1800000)),
    attack("string_doubled_in_place", "+= is the same concatenation", """
           def rule(data, out):
               text = "x" * 900000
               for step in range(3):
                   text += text
               out["size"] = len(text)
           """, string_too_long(1800000)),
    attack("string_doubled_by_an_f_string", "f'{s}{s}' joins its fields in C, past every guard", """
           def rule(data, out):
               text = "x" * 900000
               for step in range(3):
                   text = f"{text}{text}"
               out["size"] = len(text)
           """, string_too_long(1800000)),
    attack("f_string_of_many_fields",
           "n fields of a long string are n times its length, n bounded only by the 64 KiB source", """
           def rule(data, out):
               text = "x" * 100000
               out["size"] = len(f"<{text}{text}{text}{text}{text}{text}{text}{text}{text}{text}{text!s:>10}>")
           """, string_too_long(1100002)),
    attack("string_doubling_on_the_rule_api", "the reported form, on the real rule API", """
           def rule(user, context):
               s = "x" * 900000
               for i in range(3):
                   s = f"{s}{s}"
               print(len(s))
           """, string_too_long(1800000), host="rule"),
    attack("list_doubled_by_concatenation", "l = l + l", """
           def rule(data, out):
               items = [0] * 60000
               for step in range(3):
                   items = items + items
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("list_doubled_in_place", "l += l extends the list by itself", """
           def rule(data, out):
               items = [0] * 60000
               for step in range(3):
                   items += items
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("list_repeated_in_place", "l *= n, the in-place repetition", """
           def rule(data, out):
               items = [0] * 60000
               items *= 2
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("tuple_doubled_by_concatenation", "t = t + t", """
           def rule(data, out):
               items = (0,) * 60000
               for step in range(3):
                   items = items + items
               out["size"] = len(items)
           """, too_many("tuple", 120000)),
    attack("tuple_doubled_in_place", "t += t", """
           def rule(data, out):
               items = (0,) * 60000
               for step in range(3):
                   items += items
               out["size"] = len(items)
           """, too_many("tuple", 120000)),
    attack("list_extended_by_itself", "l.extend(l) in one C call", """
           def rule(data, out):
               items = [0] * 60000
               for step in range(3):
                   items.extend(items)
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("list_extended_by_a_generator", "extend consumes a generator past the count of items", """
           def rule(data, out):
               items = [0] * 60000
               items.extend(item for item in items)
               out["size"] = len(items)
           """, fails("error", "SizeExceeded: more than 100000 items")),
    attack("list_doubled_by_slice_assignment", "l[len(l):] = l is extend by another name", """
           def rule(data, out):
               items = [0] * 60000
               for step in range(3):
                   items[len(items):] = items
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("list_doubled_by_slice_insertion", "l[:0] = l, at the front", """
           def rule(data, out):
               items = [0] * 60000
               items[:0] = items
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("list_doubled_by_unpacking", "[*l, *l] builds the list in C", """
           def rule(data, out):
               items = [0] * 60000
               for step in range(3):
                   items = [*items, *items]
               out["size"] = len(items)
           """, too_many("list", 120000)),
    attack("tuple_doubled_by_unpacking", "(*t, *t)", """
           def rule(data, out):
               items = (0,) * 60000
               for step in range(3):
                   items = (*items, *items)
               out["size"] = len(items)
           """, too_many("tuple", 120000)),
    attack("call_arguments_doubled_by_unpacking", "f(*l, *l) builds its argument tuple in C", """
           def rule(data, out):
               items = [0] * 60000
               out["size"] = max(*items, *items)
           """, too_many("arguments", 120000)),
    attack("unpacking_a_string_into_a_list", "[*s] is a list of one-character strings", """
           def rule(data, out):
               out["size"] = len([*("x" * 1000000)])
           """, too_many("list", 1000000)),
    attack("sum_of_lists", "sum(lists, []) concatenates in C, one copy per item", """
           def rule(data, out):
               items = [0] * 60000
               out["size"] = len(sum([items, items], []))
           """, too_many("list", 120000)),
    attack("sum_of_many_short_lists",
           "sum of 100,000 one-item lists copies the growing list each time: seconds of one C call", """
           def rule(data, out):
               out["size"] = len(sum([[0]] * 100000, [0]))
           """, too_many("list", 100001)),
    attack("sum_of_tuples", "sum(tuples, ())", """
           def rule(data, out):
               items = (0,) * 60000
               out["size"] = len(sum([items, items], ()))
           """, too_many("tuple", 120000)),
    attack("zip_of_one_list_many_times", "zip(*[l] * k) read l k times: k copies of the list", """
           def rule(data, out):
               items = list(range(50000))
               out["size"] = len(zip(*[items] * 3))
           """, fails("error", "SizeExceeded: more than 100000 items")),
    attack("map_of_one_list_many_times", "map(f, *[l] * k), the same", """
           def rule(data, out):
               items = list(range(50000))
               out["size"] = len(map(max, *[items] * 3))
           """, fails("error", "SizeExceeded: more than 100000 items")),
    attack("set_union", "a | b of two large sets", """
           def rule(data, out):
               first, second = set(range(60000)), set(range(60000, 120000))
               out["size"] = len(first | second)
           """, too_many("set", 120000)),
    attack("set_union_in_place", "a |= b", """
           def rule(data, out):
               first, second = set(range(60000)), set(range(60000, 120000))
               first |= second
               out["size"] = len(first)
           """, too_many("set", 120000)),
    attack("set_unpacking", "{*a, *b}", """
           def rule(data, out):
               first, second = set(range(60000)), set(range(60000, 120000))
               out["size"] = len({*first, *second})
           """, too_many("set", 120000)),
    attack("set_update", "a.update(b)", """
           def rule(data, out):
               first, second = set(range(60000)), set(range(60000, 120000))
               first.update(second)
               out["size"] = len(first)
           """, too_many("set", 120000)),
    attack("set_union_method", "a.union(b)", """
           def rule(data, out):
               first, second = set(range(60000)), set(range(60000, 120000))
               out["size"] = len(first.union(second))
           """, too_many("set", 120000)),
    attack("dict_union", "a | b of two large dicts", """
           def rule(data, out):
               first, second = dict(enumerate(range(60000))), dict(enumerate(range(60000), 60000))
               out["size"] = len(first | second)
           """, or_deadline(too_many("dict", 120000))),
    attack("dict_unpacking", "{**a, **b}", """
           def rule(data, out):
               first, second = dict(enumerate(range(60000))), dict(enumerate(range(60000), 60000))
               out["size"] = len({**first, **second})
           """, or_deadline(too_many("dict", 120000))),
    attack("dict_constructor_with_keywords", "dict(a, **b)", """
           def rule(data, out):
               first = dict(enumerate(range(99000)))
               second = {str(key): 0 for key in range(2000)}
               out["size"] = len(dict(first, **second))
           """, or_deadline(too_many("dict", 101000))),
    attack("dict_update", "a.update(b)", """
           def rule(data, out):
               first, second = dict(enumerate(range(60000))), dict(enumerate(range(60000), 60000))
               first.update(second)
               out["size"] = len(first)
           """, or_deadline(too_many("dict", 120000))),
    # -- host data and shared objects ---------------------------------------------------------
    attack("write_into_the_payload", "data['k'] = ... would change the host's input", """
           def rule(data, out):
               data["k"] = "changed"
           """, read_only("mappingproxy", 2)),
    attack("write_into_a_nested_payload_dict", "nested dicts of the payload are frozen too", """
           def rule(data, out):
               data["nested"]["d"]["x"] = 2
           """, read_only("mappingproxy", 2)),
    attack("append_to_a_nested_payload_list", "payload lists arrive as tuples", """
           def rule(data, out):
               data["nested"]["a"].append(3)
           """, denied("tuple", "append", 2)),
    attack("attribute_on_the_payload", "setting an attribute on the frozen input", """
           def rule(data, out):
               data.k = "changed"
           """, read_only("mappingproxy", 2)),
    attack("attribute_on_the_output", "the writable output takes items, never attributes", """
           def rule(data, out):
               out.values = {}
           """, fails("error", "AttributeError: 'Scratch' object has no attribute 'values' (line 2)")),
    attack("replace_a_facade_function",
           "re.compile = ... would poison every later evaluation in this process", """
           def rule(data, out):
               re.compile = lambda pattern: data
           """, read_only("Facade", 2)),
    attack("delete_a_facade_function", "del re.compile breaks every later evaluation", """
           def rule(data, out):
               del re.compile
           """, read_only("Facade", 2)),
    attack("patch_a_builtin_type", "str.lower = ... patches the interpreter's own type", """
           def rule(data, out):
               str.lower = None
           """, read_only("type", 2)),
    attack("patch_a_guarded_builtin", "list.append on the shared guarded constructor", """
           def rule(data, out):
               list.append = None
           """, read_only("type", 2)),
    attack("stash_on_a_shared_exception_class", "ValueError is shared by every evaluation", """
           def rule(data, out):
               ValueError.seen = data["who"]
           """, read_only("type", 2)),
    attack("state_in_a_function_attribute",
           "rule.seen = [...] would carry data into the next evaluation", """
           def rule(data, out):
               rule.seen = [data["who"]]
           """, read_only("function", 2)),
    attack("wall_clock_now", "rules read context.now, never the clock", """
           def rule(data, out):
               out["now"] = str(datetime.datetime.now())
           """, denied("type", "now", 2)),
    attack("wall_clock_utcnow", "utcnow is the clock too", """
           def rule(data, out):
               out["now"] = str(datetime.datetime.utcnow())
           """, denied("type", "utcnow", 2)),
    attack("wall_clock_today", "date.today is the clock too", """
           def rule(data, out):
               out["today"] = str(datetime.date.today())
           """, denied("type", "today", 2)),
    attack("dict_fromkeys", "fromkeys consumes an iterable in C", """
           def rule(data, out):
               out["keys"] = {}.fromkeys(range(10))
           """, denied("dict", "fromkeys", 2)),
    # -- stdlib caches and look-alike arguments (issue 6, item 1; tests/sandbox/channels.py) -----
    attack("re_flags_as_a_float",
           "re.compile(p, 0.0) probed re's module cache: a hit returned, a miss raised TypeError", """
           def rule(data, out):
               re.compile(data["who"], 0.0)
           """, fails("error", FLAGS)),
    attack("re_flags_as_a_bool", "True == 1 is another look-alike cache key", """
           def rule(data, out):
               re.match(data["who"], "alice", True)
           """, fails("error", FLAGS)),
    attack("re_debug_flag_writes_to_stdout",
           "re.DEBUG (128) printed the parsed pattern to fd 1: the server's console in-process, the "
           "reply pipe of a worker, whose next answer was then a protocol violation", """
           def rule(data, out):
               re.compile("a|b", 128)
           """, fails("error", FLAGS)),
    attack("re_undocumented_template_flag", "re.TEMPLATE (1) is not one of the facade's flags", """
           def rule(data, out):
               re.search("a", "a", re.IGNORECASE | 1)
           """, fails("error", FLAGS)),
    attack("ip_prefix_as_a_float",
           "ip_network((addr, k + 0.0)) succeeded only if the int prefix k was in the netmask cache", """
           def rule(data, out):
               ipaddress.ip_network(("0.0.0.0", 8.0))
           """, fails("error", "TypeError: the prefix must be an int or a string of 1 to 3 digits (line 2)")),
    attack("ip_prefix_string_of_thousands_of_digits",
           "every distinct prefix string was cached forever: memory that one evaluation leaves to all", """
           def rule(data, out):
               ipaddress.ip_network("10.0.0.0/" + "0" * 5000 + "8")
           """, fails("error", "ValueError: networks are at most 100 characters (line 2)")),
    attack("ip_prefix_string_of_many_digits_in_a_tuple", "as above, through the tuple form", """
           def rule(data, out):
               ipaddress.ip_interface(("10.0.0.1", "0" * 60 + "8"))
           """, fails("error", "ValueError: prefix strings are at most 3 digits (line 2)")),
    # -- code of one evaluation running in a later one (item 4) ----------------------------------
    attack("generator_finally_runs_in_a_later_evaluation",
           "a generator suspended inside try/finally, in a reference cycle, is finalised by the cyclic GC "
           "during a later evaluation: its finally block runs outside any trace, checkpoint or budget", """
           def tally(box):
               try:
                   yield 1
               finally:
                   box.append("ran")
           def rule(data, out):
               box = []
               generator = tally(box)
               box.append(generator)
               next(generator)
           """, Rejected(3, '"yield" inside a try block with a finally clause is not allowed in rules: the '
                            "finally block would run when the generator is collected.")),
    attack("generator_yield_in_an_except_guarded_by_finally", "the same, from an except clause", """
           def tally():
               try:
                   pass
               except ValueError:
                   yield 2
               finally:
                   pass
           def rule(data, out):
               pass
           """, Rejected(5, '"yield" inside a try block with a finally clause is not allowed in rules: the '
                            "finally block would run when the generator is collected.")),
    # -- describing a failure (item 6) -----------------------------------------------------------
    attack("raise_a_deeply_nested_value",
           "describing ValueError(<a 5,000-deep list>) raised RecursionError inside the runner's except "
           "block: a 500 in-process, a dead worker in process mode", """
           def rule(data, out):
               deep = []
               for step in range(5000):
                   deep = [deep]
               raise ValueError(deep)
           """, fails("error", "ValueError: " + "[" * 32 + "[...]" + "]" * 32 + " (line 5)")),
    attack("raise_a_value_that_repeats_one_list",
           "str() of [[0] * 10**5] * 10**5 is ten billion characters from one C call", """
           def rule(data, out):
               row = [0] * 100000
               raise KeyError([row] * 100000)
           """, Fails("error", r"KeyError: \[\[0, 0, [0, ]{400,500} \(line 3\)")),
    attack("lone_surrogate_in_a_log_line",
           "a lone surrogate is a str but not UTF-8: the rule was reported ok, then the reply encoder "
           "killed the worker", """
           def rule(data, out):
               print("who: " + chr(0xD800))
           """, fails("error", "ValueError: log text must be valid Unicode (it has a lone surrogate) (line 2)")),
    attack("lone_surrogate_in_an_error_message", "the failure's own description crosses the boundary too", """
           def rule(data, out):
               raise ValueError("bad " + chr(0xDFFF))
           """, fails("error", "ValueError: bad \\udfff (line 2)")),
    # -- C calls past the budget (item 7) --------------------------------------------------------
    attack("strftime_widths_amplify_past_the_string_cap",
           ".strftime('%999Y' * 20000) returned 20 million characters from one C call of 150-200 ms", """
           def rule(data, out):
               when = datetime.datetime(2026, 1, 1)
               out["x"] = when.strftime("%999Y" * 20000)
           """, fails("error", "ValueError: date formats are at most 256 characters in rules (line 3)")),
    attack("strftime_one_wide_directive", "a three-digit width, 999 characters a directive", """
           def rule(data, out):
               when = datetime.date(2026, 1, 1)
               out["x"] = when.strftime("%_999d")
           """, fails("error", "ValueError: date format widths are at most 2 digits in rules (line 3)")),
    attack("strftime_through_the_class", "the unbound method on the class skips the instance's guard", """
           def rule(data, out):
               when = datetime.datetime(2026, 1, 1)
               out["x"] = datetime.datetime.strftime(when, "%0999Y")
           """, fails("error", "ValueError: date format widths are at most 2 digits in rules (line 3)")),
    attack("strftime_through_an_f_string_spec", "a date's format spec is a strftime format", """
           def rule(data, out):
               when = datetime.time(10, 0)
               out["x"] = f"{when:%999H}"
           """, fails("error", "ValueError: date format widths are at most 2 digits in rules (line 3)")),
    attack("strptime_with_a_huge_format", "strptime compiles a regular expression from the format", """
           def rule(data, out):
               out["x"] = str(datetime.datetime.strptime("2026", "%Y" + " " * 300))
           """, fails("error", "ValueError: date formats are at most 256 characters in rules (line 2)")),
    # -- found by the review of the fixes above -------------------------------------------------
    attack("strftime_repeats_a_long_time_zone_name",
           "%Z repeats the zone's name: '%Z' * 128 of a million-character name was 128 million characters", """
           def rule(data, out):
               zone = datetime.timezone(datetime.timedelta(0), "a" * 1000000)
           """, fails("error", "ValueError: time zone names are strings of at most 64 characters (line 2)")),
    attack("re_split_with_many_empty_groups",
           "re.split('()' * 1000, 'a' * 10000) made ten million items in one C call", """
           def rule(data, out):
               out["n"] = len(re.split("()" * 1000, "a" * 10000))
           """, fails("error", "ValueError: patterns have at most 100 groups (line 2)")),
    attack("re_findall_of_an_empty_pattern_on_a_long_string", "one empty match per character", """
           def rule(data, out):
               out["n"] = len(re.compile("").findall("a" * 200000))
           """, or_deadline(fails("error", "ValueError: more than 100000 matches (line 2)"))),
    attack("hash_a_deeply_nested_tuple",
           "tuple hashing recurses in C without a depth check: a set of a 200,000-deep tuple overflows the C "
           "stack. A worker dies and is replaced; in-process (trusted rules only) it would end the server", """
           def rule(data, out):
               deep = ()
               for step in range(2000):
                   deep = """ + "(" * 100 + "deep" + ",)" * 100 + """
               out["n"] = len({deep})
           """, fails("killed", "worker killed: worker exited"), runners=PROCESS_ONLY),
    # -- the real rule API --------------------------------------------------------------------
    attack("assign_a_user_attribute", "user.email = ... rewrites who is logging in", """
           def rule(user, context):
               user.email = "attacker@example.com"
           """, read_only("User", 2), host="rule"),
    attack("assign_the_evaluation_time", "context.now = ... moves the clock rules rely on", """
           def rule(user, context):
               context.now = None
           """, read_only("Context", 2), host="rule"),
    attack("switch_off_a_forced_second_factor", "multifactor.required = False skips the second factor", """
           def rule(user, context):
               context.multifactor.required = False
           """, fails("error", "AttributeError: multifactor.required cannot be assigned (line 2)"), host="rule"),
    attack("write_into_user_metadata", "app_metadata is the host's record of the user", """
           def rule(user, context):
               user.app_metadata["roles"] = ["admin"]
           """, read_only("mappingproxy", 2), host="rule"),
    attack("lone_surrogate_in_a_claim",
           "a claim that is a str but not UTF-8 left the rule 'ok' and then killed the worker's encoder "
           "(or answered 500 in-process)", """
           def rule(user, context):
               context.claims["https://example.com/name"] = "x" + chr(0xD800)
           """, fails("error", "ValueError: claim text must be valid Unicode (it has a lone surrogate) (line 2)"),
           host="rule"),
    attack("lone_surrogate_in_a_claim_object_key", "the same, hidden in a nested key", """
           def rule(user, context):
               context.claims["https://example.com/meta"] = {"k" + chr(0xDBFF): 1}
           """, fails("error", "ValueError: claim text must be valid Unicode (it has a lone surrogate) (line 2)"),
           host="rule"),
    attack("lone_surrogate_in_a_deny_reason", "the reason is shown to the application", """
           def rule(user, context):
               context.deny("no " + chr(0xDC00))
           """, fails("error", "ValueError: deny(reason) must be valid Unicode (it has a lone surrogate) (line 2)"),
           host="rule"),
    attack("lone_surrogate_in_return_to", "return_to crosses the boundary too", """
           def rule(user, context):
               context.multifactor.return_to = "https://example.com/" + chr(0xD800)
           """, fails("error", "ValueError: return_to must be a string of at most 2048 characters (line 2)"),
           host="rule"),
    attack("lone_surrogate_in_a_log_call", "context.log writes to the same trace as print", """
           def rule(user, context):
               context.log("who", chr(0xD800))
           """, fails("error", "ValueError: log text must be valid Unicode (it has a lone surrogate) (line 2)"),
           host="rule"),
    attack("unknown_factor_named_by_a_deep_value",
           "the host's own error message described the rule's value with repr(): unbounded", """
           def rule(user, context):
               deep = []
               for step in range(5000):
                   deep = [deep]
               context.multifactor.add_factor(deep)
           """, fails("error", "ValueError: unknown factor " + "[" * 32 + "[...]" + "]" * 32 + "; known "
                      "factors: otp, totp, sms, recovery (line 5)"), host="rule"),
    attack("claim_integer_wider_than_json_readers_take",
           "2 ** 70 passed the claim check and then failed to encode: a 500 in-process", """
           def rule(user, context):
               context.claims["https://example.com/big"] = 2 ** 70
           """, fails("error", "ValueError: claim integers must lie within +-(2**53 - 1) (line 2)"), host="rule"),
    attack("forge_a_registered_claim", "claims the engine sets itself (sub, amr) cannot be forged", """
           def rule(user, context):
               context.claims["amr"] = ["otp"]
           """, fails("error", "ValueError: claim 'amr' is set by the engine (line 2)"), host="rule"),
    *ONE_CALL,
)

# Rules that try to remember what they saw: each reports in out["seen"] everything it can
# see, and every evaluation must see only its own input.
STATEFUL: dict[str, str] = {
    "module_level_list": """
        SEEN = []
        def rule(data, out):
            SEEN.append(data["who"])
            out["seen"] = SEEN
        """,
    "default_argument_list": """
        def remember(who, seen=[]):
            seen.append(who)
            return seen
        def rule(data, out):
            out["seen"] = remember(data["who"])
        """,
    "lambda_default_argument": """
        remember = lambda who, seen=[]: seen.append(who) or seen
        def rule(data, out):
            out["seen"] = remember(data["who"])
        """,
    "closure_over_a_list": """
        def recorder():
            seen = []
            def record(who):
                seen.append(who)
                return seen
            return record
        RECORD = recorder()
        def rule(data, out):
            out["seen"] = RECORD(data["who"])
        """,
    "module_level_dict": """
        CACHE = {}
        def rule(data, out):
            CACHE[data["who"]] = True
            out["seen"] = sorted(CACHE)
        """,
    "suspended_generator": """
        def counter():
            calls = 0
            while True:
                calls = calls + 1
                yield calls
        CALLS = counter()
        def rule(data, out):
            out["seen"] = [data["who"]] * next(CALLS)
        """,
}
STATEFUL = {name: textwrap.dedent(source).lstrip("\n") for name, source in STATEFUL.items()}

BENIGN_SCRATCH = 'def rule(data, out):\n    out["greeting"] = "hello " + data["who"]\n'
BENIGN_RULE = 'def rule(user, context):\n    context.multifactor.enable()\n    context.multifactor.add_factor("otp")\n'
