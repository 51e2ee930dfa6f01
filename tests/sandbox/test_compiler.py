"""compile_program: which source becomes a program, and the "Line N: ..." errors for the rest."""

from __future__ import annotations

import re

import pytest

from sandbox.compiler import CompiledProgram, CompileErrors, compile_program

VALID = 'def rule(data, out):\n    out["x"] = 1\n'
# Trojan Source (CVE-2021-42574): every bidirectional control Unicode defines.
BIDI_CONTROLS = ("\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                 "\u2066", "\u2067", "\u2068", "\u2069")


def errors_of(source: bytes | str, **options: int | str) -> tuple[str, ...]:
    compiled = compile_program(source, "under-test", **options)  # type: ignore[arg-type]
    assert isinstance(compiled, CompileErrors), "the source compiled"
    return compiled.errors


def compiles(source: bytes | str, **options: int | str) -> bool:
    return isinstance(compile_program(source, "under-test", **options), CompiledProgram)  # type: ignore[arg-type]


def test_a_valid_rule_compiles_with_its_docstring_as_summary() -> None:
    compiled = compile_program('"""Ask everyone for a second factor."""\n' + VALID, "10-everyone")

    assert isinstance(compiled, CompiledProgram)
    assert (compiled.name, compiled.summary) == ("10-everyone", "Ask everyone for a second factor.")


def test_source_may_arrive_as_utf8_bytes_or_as_text() -> None:
    source = VALID.replace("1", '"café"')
    assert compiles(source) and compiles(source.encode("utf-8"))


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert compiles(b"\xef\xbb\xbf" + VALID.encode())


def test_invalid_utf8_is_rejected_with_the_line_of_the_first_bad_byte() -> None:
    source = b'def rule(data, out):\n    out["x"] = 1\n    out["y"] = "\xff"\n'
    assert errors_of(source) == ("Line 3: source is not valid UTF-8",)


def test_overlong_utf8_encodings_are_rejected() -> None:
    # 0xC0 0xAF is "/" encoded in two bytes: lenient decoders accept it, strict UTF-8 does not.
    assert errors_of(b'def rule(data, out):\n    out["x"] = "\xc0\xaf"\n') == ("Line 2: source is not valid UTF-8",)


def test_lone_surrogates_in_text_source_are_rejected() -> None:
    assert errors_of('def rule(data, out):\n    out["x"] = "\ud800"\n') == ("Line 2: source is not valid UTF-8",)


@pytest.mark.parametrize("cookie", ["# -*- coding: latin-1 -*-", "# vim: set fileencoding=utf-7 :", "#coding=utf-16"])
@pytest.mark.parametrize("line", [1, 2])
def test_a_coding_declaration_on_either_of_the_first_two_lines_is_rejected(cookie: str, line: int) -> None:
    lines = VALID.splitlines()
    lines.insert(line - 1, cookie)
    assert errors_of("\n".join(lines) + "\n") == ("Line 1: coding declarations are not allowed; rules are UTF-8",)


def test_a_coding_declaration_after_line_two_is_only_a_comment() -> None:
    assert compiles(VALID + "# -*- coding: latin-1 -*-\n")


def test_a_nul_character_is_rejected_with_its_line() -> None:
    assert errors_of('def rule(data, out):\n    out["x"] = "a\x00b"\n') == ("Line 2: NUL character in source",)


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=lambda char: f"U+{ord(char):04X}")
def test_a_bidirectional_control_character_is_rejected_with_its_line(control: str) -> None:
    source = f'def rule(data, out):\n    out["x"] = 1\n    out["role"] = "user{control} # admin"\n'
    assert errors_of(source) == ("Line 3: bidirectional control character in source",)


def test_source_over_max_source_bytes_is_rejected_before_it_is_parsed() -> None:
    source = VALID + "(" * 100
    assert errors_of(source, max_source_bytes=64) == (f"Line 1: source is {len(source)} bytes; the limit is 64",)


def test_the_source_limit_counts_bytes_not_characters() -> None:
    source = VALID + "# " + "é" * 30 + "\n"
    assert len(source) <= 100 < len(source.encode())
    size = len(source.encode())
    assert errors_of(source, max_source_bytes=100) == (f"Line 1: source is {size} bytes; the limit is 100",)


def test_source_exactly_at_the_limit_compiles() -> None:
    assert compiles(VALID, max_source_bytes=len(VALID))


def test_the_default_source_limit_is_64_kib() -> None:
    source = VALID + "#" * 65_536 + "\n"
    assert errors_of(source) == (f"Line 1: source is {len(source)} bytes; the limit is 65536",)


@pytest.mark.parametrize(("source", "error"), [
    pytest.param("(" * 10_000, "Line 1: SyntaxError: too many nested parentheses", id="ten-thousand-parentheses"),
    pytest.param("def rule(data, out):\n    x = " + "-" * 60_000 + "1\n",
                 "Line 1: source is nested too deeply to compile", id="sixty-thousand-unary-minus"),
    pytest.param("def rule(data, out):\n    x = " + "1+" * 30_000 + "1\n",
                 "Line 1: source is nested too deeply to compile", id="thirty-thousand-additions"),
    pytest.param("def rule(data, out):\n    x = " + "not " * 15_000 + "1\n",
                 "Line 1: source is nested too deeply to compile", id="fifteen-thousand-nots"),
])
def test_deeply_nested_source_is_rejected_without_crashing_the_compiler(source: str, error: str) -> None:
    assert errors_of(source) == (error,)


@pytest.mark.parametrize("source", [
    pytest.param("def check(data, out):\n    pass\n", id="other-name"),
    pytest.param("def outer():\n    def rule(data, out):\n        pass\n", id="nested"),
    pytest.param("rule = lambda data, out: None\n", id="lambda"),
    pytest.param("", id="empty"),
])
def test_a_file_without_a_top_level_rule_function_is_rejected(source: str) -> None:
    assert errors_of(source) == ("Line 1: the file must define a top-level function rule()",)


@pytest.mark.parametrize("signature", [
    "rule()", "rule(data)", "rule(data, out, extra)", "rule(*args)", "rule(data, out, *rest)",
    "rule(data, out, *, strict=False)", "rule(data, out, **options)",
])
def test_a_rule_with_the_wrong_parameters_is_rejected(signature: str) -> None:
    source = f"\n\ndef {signature}:\n    pass\n"
    assert errors_of(source) == ("Line 3: rule() must take exactly 2 positional parameters",)


def test_positional_only_and_defaulted_parameters_still_count_as_two() -> None:
    assert compiles("def rule(data, /, out=None):\n    pass\n")


def test_the_entry_point_and_its_arity_are_options() -> None:
    assert compiles("def check(subject):\n    pass\n", entry="check", arity=1)
    assert errors_of(VALID, entry="check") == ("Line 1: the file must define a top-level function check()",)


def test_a_syntax_error_carries_its_line() -> None:
    assert errors_of('def rule(data, out):\n    out["x"] = 1\n    out["y"] = (\n') == (
        "Line 3: SyntaxError: '(' was never closed",)


def test_every_restricted_construct_is_reported_with_its_own_line() -> None:
    source = "def rule(data, out):\n    _a = 1\n    out['x'] = 2\n    out['y'] = data.__class__\n"
    assert errors_of(source) == (
        'Line 2: "_a" is an invalid variable name because it starts with "_"',
        'Line 4: "__class__" is an invalid attribute name because it starts with "_".',
    )


@pytest.mark.parametrize("source", [
    "", b"", "\ufeff", b"\x00", b"\xff\xfe", "def rule(", "def rule(data, out):\n\tpass\n        pass\n",
    "\ud800", "def rule(data, out):\n    return 1 +\n", "class", b"\xef\xbb\xbf\xef\xbb\xbf",
], ids=repr)
def test_any_rejection_is_data_with_line_prefixes_never_an_exception(source: bytes | str) -> None:
    errors = errors_of(source)
    assert errors and all(re.match(r"Line \d+: \S", error) for error in errors)


@pytest.mark.parametrize("expression", [
    'f"{x:>10}"', 'f"{x:.2f}"', 'f"{x!r:>5}"', 'f"{x:,.0f}"', 'f"{x:0999}"', 'f"{x:%Y-%m-%d}"', 'f"{x!s}"',
])
def test_literal_format_specs_with_small_numbers_compile(expression: str) -> None:
    assert compiles(f"def rule(data, out):\n    x = 1.5\n    out['x'] = {expression}\n")


def test_loops_and_functions_inside_finally_keep_their_own_break_and_return() -> None:
    source = """
def rule(data, out):
    try:
        out["x"] = 1
    finally:
        for item in [1, 2]:
            if item:
                break
            continue
        def helper():
            return 1
        out["y"] = helper()
"""
    assert compiles(source)


def test_return_inside_a_try_that_has_a_finally_compiles() -> None:
    assert compiles("def rule(data, out):\n    try:\n        return\n    finally:\n        out['x'] = 1\n")


def test_a_bare_except_compiles() -> None:
    # It becomes `except Exception:`; the attack corpus shows budget errors pass through it.
    assert compiles("def rule(data, out):\n    try:\n        out['x'] = 1 / 0\n    except:\n        pass\n")
