"""Budgets for one evaluation, and how each is enforced.

| limit                  | in-process runner                         | worker process (default)                  |
|------------------------|-------------------------------------------|-------------------------------------------|
| rule_timeout_ms        | checked every 256 steps (loop iterations, | same check, and the parent kills the      |
| pipeline_timeout_ms    | calls, comprehension items)               | worker at pipeline deadline + kill grace  |
| max_steps              | StepsExceeded                             | same                                      |
| memory_mb              | not enforced (trusted rule sets only)     | RLIMIT_AS on the worker: MemoryError      |
| max_sequence_items     | guarded list/tuple/sorted/..., `*`, and   | same                                      |
|                        | growth.py: `+`/`+=` of lists and tuples,  |                                           |
|                        | unpacking, call arguments, extend, slice  |                                           |
|                        | assignment, sum, zip/map (in all), and    |                                           |
|                        | sets/dicts from `|`, `^`, update, union   |                                           |
| max_string_length      | guarded `*`, str.replace, str.join, `+`,  | same                                      |
|                        | `+=` and f-strings (growth.py)            |                                           |
| max_int_bits           | guarded `**`, `*`, `<<`                   | same                                      |
| max_log_lines          | further lines are dropped and counted     | same                                      |
| max_output_bytes       | log text past the cap is dropped          | same                                      |

Strings, lists, tuples and call arguments are measured before they are built (concatenation
repeats: `s = s + s` doubles each step); sets and dicts, which keep one copy of each key,
are checked once built.

C code that runs long without returning (a catastrophic regular expression) cannot be
interrupted from Python: only the worker process's hard deadline stops it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Limits:
    rule_timeout_ms: int = 50
    pipeline_timeout_ms: int = 250
    kill_grace_ms: int = 100
    max_steps: int = 1_000_000
    memory_mb: int = 512
    max_sequence_items: int = 100_000
    max_string_length: int = 1_000_000
    max_int_bits: int = 65_536
    max_log_lines: int = 50
    max_output_bytes: int = 16_384
    max_source_bytes: int = 65_536
    max_rules: int = 200

    def to_plain(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Limits:
        return cls(**{key: int(value) for key, value in data.items()})
