"""Import statements in rules: the four facades and their public names bind the very objects
that are pre-imported, at module level and in functions, on both runners; anything else is a
load-time error naming its line (attacks.py has the refused forms and their messages)."""

from __future__ import annotations

import pytest

from sandbox.compiler import CompiledProgram, CompileErrors, compile_program
from tests.conftest import SyncRunner

IMPORTABLE = "rules may import only re, math, datetime and ipaddress"

MODULE_LEVEL = '''
import re
import re as regex
import math, ipaddress as ip
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address, ip_network
from math import floor as fl
from re import compile, IGNORECASE

OFFICE = ip_network("198.51.100.0/24")
WORD = compile(r"[a-z]+", IGNORECASE)


def rule(data, out):
    when = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc) + timedelta(hours=2)
    out["when"] = when.isoformat()
    out["office"] = ip_address(data["ip"]) in OFFICE
    out["floor"] = fl(2.7)
    out["words"] = WORD.findall("Hello, World")
    out["same"] = [regex is re, ip.ip_network is ip_network, math.floor is fl]
'''

IN_FUNCTIONS = '''
def pre_imported():
    return [re, math, datetime, ipaddress, datetime.datetime, datetime.timedelta, ipaddress.ip_address, re.sub]


def rule(data, out):
    expected = pre_imported()
    import re as again
    import math, datetime, ipaddress
    from datetime import datetime as moment, timedelta
    from ipaddress import ip_address
    from re import sub
    import re
    import re
    out["same"] = [a is b for a, b in zip([again, math, datetime, ipaddress, moment, timedelta, ip_address, sub],
                                          expected)]
    out["twice"] = again is re
'''

SHADOWED = '''
re = "shadowed"


def shadowed():
    return re


def rule(data, out):
    out["before"] = shadowed()
    import re
    out["after"] = re.sub("a", "b", "aaa")
'''


def test_module_level_imports_bind_the_facades_and_their_members(scratch_runner: SyncRunner) -> None:
    report = scratch_runner.run({"imports": MODULE_LEVEL}, {"input": {"ip": "198.51.100.7"}})

    assert report.result == {"out": {"when": "2026-11-27T12:00:00+00:00", "office": True, "floor": 2,
                                     "words": ["Hello", "World"], "same": [True, True, True]}, "failures": []}


def test_imports_inside_functions_bind_the_same_objects_as_the_pre_imported_names(scratch_runner: SyncRunner) -> None:
    report = scratch_runner.run({"imports": IN_FUNCTIONS}, {"input": {}})

    assert report.result == {"out": {"same": [True] * 8, "twice": True}, "failures": []}


def test_an_import_replaces_a_shadowing_value_with_the_facade(scratch_runner: SyncRunner) -> None:
    report = scratch_runner.run({"shadowed": SHADOWED}, {"input": {}})

    assert report.result == {"out": {"before": "shadowed", "after": "bbb"}, "failures": []}


@pytest.mark.parametrize("statement", [
    "import re", "import datetime", "import math", "import ipaddress", "import re as regex",
    "from datetime import datetime, timedelta, timezone", "from ipaddress import ip_address, ip_network",
    "from math import floor as fl", "from re import IGNORECASE, compile, sub, subn, error",
    "from datetime import UTC, MINYEAR, date, time", "from ipaddress import IPv4Network, AddressValueError",
    "import re, math", "from math import (pi,\n    tau)",
])
def test_every_facade_and_public_name_may_be_imported_at_module_level_or_in_a_function(statement: str) -> None:
    indented = statement.replace("\n", "\n    ")
    assert isinstance(compile_program(f"{statement}\ndef rule(data, out):\n    pass\n", "m"), CompiledProgram)
    assert isinstance(compile_program(f"def rule(data, out):\n    {indented}\n", "f"), CompiledProgram)


def errors_of(source: str) -> tuple[str, ...]:
    compiled = compile_program(source, "under-test")
    assert isinstance(compiled, CompileErrors)
    return compiled.errors


def test_a_misspelled_name_gets_a_suggestion() -> None:
    assert errors_of("from datetime import timdelta\ndef rule(data, out):\n    pass\n") == (
        f"Line 1: cannot import 'timdelta' from datetime in rules (did you mean 'timedelta'?); {IMPORTABLE}",)


def test_a_misspelled_module_is_refused_with_the_list_of_modules() -> None:
    assert errors_of("def rule(data, out):\n    import ipadress\n") == (
        f"Line 2: import of 'ipadress' is not allowed in rules; {IMPORTABLE}",)


def test_each_refused_import_is_reported_with_its_own_line() -> None:
    source = "import os\ndef rule(data, out):\n    from re import sub\n    from os import path\n    import sys\n"
    assert errors_of(source) == (f"Line 1: import of 'os' is not allowed in rules; {IMPORTABLE}",
                                 f"Line 4: import of 'os' is not allowed in rules; {IMPORTABLE}",
                                 f"Line 5: import of 'sys' is not allowed in rules; {IMPORTABLE}")


def test_importlib_names_the_import_statement() -> None:
    assert errors_of("def rule(data, out):\n    importlib.import_module('re')\n") == (
        f"Line 2: name 'importlib' is not available to rules; {IMPORTABLE}, with import statements",)
