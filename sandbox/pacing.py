"""The running rule's step budget as the sandbox's own loops charge it.

The compiled rule ticks its Budget once per loop iteration, call and comprehension item,
and the deadline is checked every 256 ticks. Work the sandbox does for one call of the rule
(a substitution's loop over a million matches, parsing a format string of half a million
fields, reading iterators for a set method, walking a structure for `repr`) happens between
two of those ticks: in-process, nothing stopped it (`re.sub('', '', s)` on a million
characters ran 3.8 s past a 100 ms deadline). Those loops charge the same Budget here:
one tick per ITERATIONS_PER_TICK rounds of a loop in Python, and one per ITEMS_PER_TICK
items handed to C in one call (a C item costs about a sixteenth of a Python round).

A Pacer belongs to one Guards; `Guards.globals_for` points it at the running program's
tick. Programs run one at a time on a runner's thread (a worker, or the server's event
loop), as `facades.forget_patterns` assumes too.
"""

from __future__ import annotations

from collections.abc import Callable

ITERATIONS_PER_TICK = 16
ITEMS_PER_TICK = 256


def _unmetered() -> bool:
    return True


class Pacer:
    """Charges the running program's budget; raises whatever its tick raises (a budget error)."""

    __slots__ = ("tick", "_rounds")

    def __init__(self) -> None:
        self.tick: Callable[[], bool] = _unmetered
        self._rounds = 0

    def start(self, tick: Callable[[], bool]) -> None:
        self.tick = tick
        self._rounds = 0

    def round(self) -> None:
        """One round of a loop in Python."""
        self._rounds += 1
        if self._rounds >= ITERATIONS_PER_TICK:
            self._rounds = 0
            self.tick()

    def rounds(self, count: int) -> None:
        """`count` rounds at once (a loop about to run, or just run, in C or in Python)."""
        self._rounds += count
        if self._rounds >= ITERATIONS_PER_TICK:
            ticks, self._rounds = divmod(self._rounds, ITERATIONS_PER_TICK)
            tick = self.tick
            for _ in range(ticks):
                tick()

    def items(self, count: int) -> None:
        """`count` items handed to C in one call."""
        if count >= ITEMS_PER_TICK:
            self.rounds(count * ITERATIONS_PER_TICK // ITEMS_PER_TICK)


UNMETERED = Pacer()
