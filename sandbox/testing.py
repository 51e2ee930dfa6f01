"""A minimal host for exercising the sandbox without any product around it.

A rule receives `data` (the payload's "input", frozen) and `out`, a mapping it may write
plain values into; `out["stop"] = True` ends the run. A failed rule records its meta.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sandbox.guards import AccessPolicy
from sandbox.plain import freeze, thaw
from sandbox.redaction import Redactor


class Scratch:
    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            raise TypeError("keys must be str")
        self._values[key] = freeze(value)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))

    def __repr__(self) -> str:
        return "<scratch>"


class ScratchBinding:
    def __init__(self, payload: Mapping[str, Any], log: Callable[[str], None]) -> None:
        self.out = Scratch()
        self.args = (freeze(payload.get("input", {})), self.out)
        self.redactor = Redactor(payload.get("secrets", ()))  # text to keep out of logs and errors
        self.failures: list[Any] = []

    def checkpoint(self, meta: Mapping[str, Any]) -> object:
        return dict(self.out._values)

    def restore(self, checkpoint: object) -> None:
        self.out._values = dict(checkpoint)  # type: ignore[call-overload]

    def fail(self, meta: Mapping[str, Any]) -> None:
        self.failures.append(dict(meta))
        if meta.get("stop_on_error", True):
            self.out._values["stop"] = True

    def is_finished(self) -> bool:
        return bool(self.out._values.get("stop"))

    def result(self) -> dict[str, Any]:
        return {"out": thaw(self.out._values), "failures": self.failures}



class ScratchHost:
    access = AccessPolicy(subscriptable=frozenset({Scratch}), iterable=frozenset({Scratch}),
                          writable=frozenset({Scratch}))

    def bind(self, payload: Mapping[str, Any], log: Callable[[str], None]) -> ScratchBinding:
        return ScratchBinding(payload, log)


HOST = ScratchHost()
