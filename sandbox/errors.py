"""Errors of the sandbox.

SandboxError                    a request to the sandbox cannot go on
 ├── CompileFailed              source rejected; .errors holds "Line N: ..." messages
 └── SandboxUnavailable         no worker process could take the evaluation in time

LimitExceeded (BaseException)   raised *inside* a rule when a budget runs out; it derives
 ├── DeadlineExceeded           from BaseException so that `except Exception` in rule
 ├── StepsExceeded              code cannot swallow it (bare `except:` is rewritten to
 └── SizeExceeded               `except Exception:` at compile time)
"""

from __future__ import annotations

from collections.abc import Sequence


class SandboxError(Exception):
    """Base class of the sandbox's own failures."""


class CompileFailed(SandboxError):
    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = tuple(errors)


class SandboxUnavailable(SandboxError):
    """No worker took the evaluation before its queue deadline."""


class LimitExceeded(BaseException):
    outcome = "error"


class DeadlineExceeded(LimitExceeded):
    outcome = "timeout"


class StepsExceeded(LimitExceeded):
    outcome = "timeout"


class SizeExceeded(LimitExceeded):
    outcome = "error"
