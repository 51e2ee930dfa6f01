"""Interleaved repetitions of many measurements, and their per-evaluation statistics.

A probe runs `count` evaluations and returns the nanoseconds they took. `Bench.run` calls
every probe once per repetition, in turn, so slow phases of a noisy machine land on all
measurements alike and figures from the same repetition can be compared in pairs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Probe = Callable[[int], Awaitable[int]]


@dataclass
class Measurement:
    label: str
    probe: Probe
    count: int
    per_evaluation_ns: list[float] = field(default_factory=list)

    async def repeat(self) -> None:
        self.per_evaluation_ns.append(await self.probe(self.count) / self.count)

    def median_us(self) -> float:
        return statistics.median(self.per_evaluation_ns) / 1000

    def p90_us(self) -> float:
        return statistics.quantiles(self.per_evaluation_ns, n=10, method="inclusive")[8] / 1000


@dataclass
class Bench:
    """All measurements of one run, by section and key, in the order they are printed."""

    sections: dict[str, dict[str, Measurement]] = field(default_factory=dict)

    def add(self, section: str, key: str, label: str, probe: Probe, count: int) -> None:
        self.sections.setdefault(section, {})[key] = Measurement(label, probe, count)

    def __getitem__(self, key: str) -> Measurement:
        return next(group[key] for group in self.sections.values() if key in group)

    async def run(self, repetitions: int) -> None:
        for _ in range(repetitions):
            for group in self.sections.values():
                for measurement in group.values():
                    await measurement.repeat()

    def reset(self) -> None:
        for group in self.sections.values():
            for measurement in group.values():
                measurement.per_evaluation_ns.clear()

    def paired(self, combine: Callable[[float, float], float], left: str, right: str) -> float:
        """Median over repetitions of combine(left, right), in the unit of the samples (ns)."""
        pairs = zip(self[left].per_evaluation_ns, self[right].per_evaluation_ns, strict=True)
        return statistics.median(combine(a, b) for a, b in pairs)


def sync_probe(step: Callable[[], object], clock: Callable[[], int] = time.perf_counter_ns) -> Probe:
    async def run(count: int) -> int:
        started = clock()
        for _ in range(count):
            step()
        return clock() - started

    return run
