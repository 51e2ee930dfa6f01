"""The service's Prometheus metrics: what is counted, and the text GET /metrics answers.

Counting stays off the cost of a request. A counter's child is bound once per label set
(`labels()` costs about 3 us a call); the per-rule durations and failures of an evaluation,
and the sandbox's queue waits, are kept as plain values and added to their histograms in
batches: `Histogram.observe` takes a lock per value written, about 2.5 us per rule in one
process and 5.5 us with `--workers`, so ten rules observed one by one would cost about as
much as the rules themselves.

With `serve --workers N` every process writes its values to files in
$PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode; engine/cli.py makes a
private directory for each run) and the process that answers a scrape sums them all.
Batches are written at least once a second (`start`), so a scrape sees another process's
evaluations at most a second late; its own, at once.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_right
from itertools import chain
from operator import itemgetter
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from sandbox.runner import ProgramTrace

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client itself, at import
FLUSH_INTERVAL_SECONDS = 1.0
BATCH_SIZE = 256  # evaluations held before their values are written, whatever the interval

# Rule durations are measured in microseconds by the sandbox; a rule's budget is 50 ms by default.
RULE_BUCKETS_US = (10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
                   1_000_000)
# Waits for a free sandbox worker; sandbox.queue_timeout_ms is 1 s by default.
QUEUE_BUCKETS_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                         2.5, 5.0)

_NAME, _OUTCOME, _DURATION = itemgetter(0), itemgetter(1), itemgetter(2)  # ProgramTrace's fields

LOGIN_OUTCOMES = ("authenticated", "mfa_required", "mfa_enrollment_required", "invalid_credentials",
                  "access_denied", "too_many_attempts")
FACTOR_TYPES = ("otp", "sms", "recovery")


class LabeledCounter:
    """A counter's children, each bound once, by label values."""

    __slots__ = ("_counter", "_children")

    def __init__(self, counter: Counter, known: Iterable[tuple[str, ...]] = ()) -> None:
        self._counter = counter
        # Children bound now are exposed from the start, at 0, in either mode: a rate over a
        # series that appears only at its first event misses that event.
        self._children = {values: counter.labels(*values) for values in known}

    @property
    def counter(self) -> Counter:
        return self._counter

    def inc(self, *values: str) -> None:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._counter.labels(*values)
        child.inc()


def add_observations(child: Histogram, bounds: Sequence[float], values: list[float], scale: float = 1.0) -> None:
    """Add `values` (in units of `bounds`; `scale` converts them to the histogram's) to a
    histogram child as `observe` would, one write per bucket touched instead of per value.

    Writes the child's bucket and sum values directly (prometheus_client's Histogram keeps
    them in `_buckets`, one per bound and +Inf, not cumulative, and `_sum`); the metrics tests
    read the exposition back, so a release that renames them fails there."""
    values.sort()
    buckets = child._buckets  # noqa: SLF001 - see the docstring
    low = 0
    for index, bound in enumerate(bounds):
        high = bisect_right(values, bound, low)
        if high > low:
            buckets[index].inc(high - low)
        low = high
    if len(values) > low:
        buckets[len(bounds)].inc(len(values) - low)
    child._sum.inc(sum(values) * scale)  # noqa: SLF001


class _WithoutCreated:
    """A registry's metrics without the `_created` samples, which the multiprocess collector
    never writes: one process or several, a scrape has the same series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            metric.samples = [sample for sample in metric.samples if not sample.name.endswith("_created")]
            yield metric


class _EveryFamily:
    """The multiprocess collector's families, and an empty one (HELP and TYPE) for each declared
    family no process has written a value of yet: one process or several, a scrape lists every
    family from the start (a labelled counter that has not counted yet, such as the gateway
    failures, would otherwise be missing from a `--workers` scrape only)."""

    def __init__(self, collector: MultiProcessCollector, declared: Sequence[MetricWrapperBase]) -> None:
        self._collector = collector
        self._declared = declared

    def collect(self) -> Iterator[Metric]:
        written = set()
        for metric in self._collector.collect():  # type: ignore[no-untyped-call]
            written.add(metric.name)
            yield metric
        for wrapper in self._declared:
            for family in wrapper.describe():
                if family.name not in written:
                    yield family


class Metrics:
    """Every metric of one app. Methods are called on the event loop's thread only."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        # Several processes: the values live in the directory's files, which the scrape reads;
        # registering them as well would expose each twice.
        registry = None if multiprocess_dir else CollectorRegistry(auto_describe=True)
        self._registry = registry
        self.logins = LabeledCounter(Counter(
            "mfa_logins_total", "POST /v1/login answers by outcome: a status or an error code.",
            ["outcome"], registry=registry), [(outcome,) for outcome in LOGIN_OUTCOMES])
        self.challenges = LabeledCounter(Counter(
            "mfa_challenges_total", "POST /v1/mfa/challenge answers by factor type and result (sent, ready, or "
            "an error code).", ["factor", "result"], registry=registry))
        self.verifications = LabeledCounter(Counter(
            "mfa_verifications_total", "POST /v1/mfa/verify answers by factor type and result (ok, invalid, "
            "locked, or an error code).", ["factor", "result"], registry=registry),
            [(factor, result) for factor in FACTOR_TYPES for result in ("ok", "invalid")])
        self.lockouts = LabeledCounter(Counter(
            "mfa_lockouts_total", "Requests refused by a lockout: factor (too many consecutive second-factor "
            "failures) or password (too many failed passwords for the username or IP).", ["kind"],
            registry=registry), [("factor",), ("password",)])
        self._rule_durations = Histogram(
            "mfa_rule_duration_seconds", "Time each rule ran in the sandbox, per evaluation, by rule id.",
            ["rule"], buckets=[bound / 1e6 for bound in RULE_BUCKETS_US], registry=registry)
        self._rule_children: dict[str, Histogram] = {}
        self.rule_failures = LabeledCounter(Counter(
            "mfa_rule_failures_total", "Rules that did not finish (error, timeout, killed...), by rule id and "
            "outcome; each failed closed.", ["rule", "outcome"], registry=registry))
        self._worker_kills = Counter(
            "mfa_sandbox_worker_kills_total", "Sandbox worker processes killed (deadline, death mid-evaluation, "
            "protocol violation) and replaced.", registry=registry)
        self._queue_wait = Histogram(
            "mfa_sandbox_queue_seconds", "Time an evaluation waited for a free sandbox worker (process "
            "isolation).", buckets=QUEUE_BUCKETS_SECONDS, registry=registry)
        self.sms_sent = LabeledCounter(Counter(
            "mfa_sms_sent_total", "Codes handed to the SMS gateway, by gateway and destination country.",
            ["gateway", "country"], registry=registry))
        self.sms_failures = LabeledCounter(Counter(
            "mfa_sms_gateway_failures_total", "SMS the gateway refused or did not answer, by gateway and "
            "destination country.", ["gateway", "country"], registry=registry))
        self._store_errors = Counter(
            "mfa_store_errors_total", "Requests refused because a store (Redis) did not answer "
            "(503 store_unavailable).", registry=registry)
        self._declared: tuple[MetricWrapperBase, ...] = (
            self.logins.counter, self.challenges.counter, self.verifications.counter, self.lockouts.counter,
            self._rule_durations, self.rule_failures.counter, self._worker_kills, self._queue_wait,
            self.sms_sent.counter, self.sms_failures.counter, self._store_errors)
        self._traces: list[tuple[ProgramTrace, ...]] = []
        self._waits: list[float] = []
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_environment(cls) -> Metrics:
        """Multiprocess when the serving parent set $PROMETHEUS_MULTIPROC_DIR (engine/cli.py)."""
        return cls(os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None)

    def observe_trace(self, trace: tuple[ProgramTrace, ...]) -> None:
        """An evaluation's rules: durations by rule, failures by rule and outcome (batched)."""
        self._traces.append(trace)
        if len(self._traces) >= BATCH_SIZE:
            self.flush()

    def observe_queue_wait(self, seconds: float) -> None:
        self._waits.append(seconds)
        if len(self._waits) >= BATCH_SIZE:
            self.flush()

    def worker_killed(self) -> None:
        self._worker_kills.inc()

    def store_error(self) -> None:
        self._store_errors.inc()

    def flush(self) -> None:
        """Write the batched values into their histograms and counters."""
        traces, self._traces = self._traces, []
        waits, self._waits = self._waits, []
        for name, values in self._durations_by_rule(traces).items():
            child = self._rule_children.get(name)
            if child is None:
                child = self._rule_children[name] = self._rule_durations.labels(name)
            add_observations(child, RULE_BUCKETS_US, values, scale=1e-6)
        if waits:
            add_observations(self._queue_wait, QUEUE_BUCKETS_SECONDS, waits)

    def _durations_by_rule(self, traces: list[tuple[ProgramTrace, ...]]) -> dict[str, list[float]]:
        """Each rule's durations in `traces`; failures counted on the way.

        Nearly always every trace names the same rules in the same order, all "ok" (one rule set,
        nothing failed): the columns are then cut out with C-level maps and slices, about a
        fifth of the cost of a Python loop over every rule of every trace."""
        entries = list(chain.from_iterable(traces))
        names = list(map(_NAME, entries))
        width = len(traces[0]) if traces else 0
        if width and names == names[:width] * len(traces) and list(map(_OUTCOME, entries)).count("ok") == len(names):
            durations = list(map(_DURATION, entries))
            return {name: durations[index::width] for index, name in enumerate(names[:width])}
        by_rule: dict[str, list[float]] = {}
        for name, outcome, duration_us, _, _ in entries:
            by_rule.setdefault(name, []).append(duration_us)
            if outcome != "ok":
                self.rule_failures.inc(name, outcome)
        return by_rule

    def start(self) -> None:
        """Flush every FLUSH_INTERVAL_SECONDS on the running loop until `close`."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._timer = loop.call_later(FLUSH_INTERVAL_SECONDS, tick)

        self._timer = loop.call_later(FLUSH_INTERVAL_SECONDS, tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def exposition(self) -> bytes:
        """The Prometheus text format of every process's metrics. Reads files with several
        processes: call it off the event loop, after `flush` on it."""
        registry = CollectorRegistry(auto_describe=False)
        if self._multiprocess_dir:
            collector = MultiProcessCollector(None, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
            registry.register(_EveryFamily(collector, self._declared))
        else:
            assert self._registry is not None
            registry.register(_WithoutCreated(self._registry))
        return generate_latest(registry)
