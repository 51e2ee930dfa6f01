"""Microseconds per evaluation of a 10-rule pipeline: plain Python, in-process sandbox, worker pool.

Run from the repository root: `.venv/bin/python bench/pipeline.py`. Every figure comes from
one run, the repetitions of all measurements interleaved so that machine noise spreads
over them alike: compare figures with each other, not with other runs. Nothing here
asserts a time. bench/README.md says what each line means. It runs on uvloop when it is
installed, as the server does.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
import gc
import ipaddress
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import CodeType
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow
# the standard library's http; the repository root goes there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import orjson  # noqa: E402

from bench.echo import EchoProcess  # noqa: E402
from bench.rules import ATTRIBUTE_READS, PIPELINE  # noqa: E402
from bench.timing import Bench, Probe, sync_probe  # noqa: E402
from engine.rule_host import HOST, HOST_PATH, RuleBinding  # noqa: E402
from sandbox.affinity import PROCESS_CPUS  # noqa: E402
from sandbox.compiler import CompiledProgram, compile_program  # noqa: E402
from sandbox.guards import Guards  # noqa: E402
from sandbox.inprocess import InProcessRunner  # noqa: E402
from sandbox.limits import Limits  # noqa: E402
from sandbox.pool import WorkerPool  # noqa: E402
from sandbox.programs import ProgramSet, compile_set  # noqa: E402
from sandbox.runner import Budget, ProgramTrace, RunReport, run_programs  # noqa: E402
from tests.conftest import program_set, rule_payload  # noqa: E402

REPETITIONS = 25
WARMUP_REPETITIONS = 3
CONCURRENCY = 16
# What a rule's module sees as plain Python: the real modules the sandbox offers as facades.
PLAIN_GLOBALS: dict[str, object] = {"__builtins__": builtins, "re": re, "ipaddress": ipaddress,
                                    "datetime": datetime}


def sequential_probe(pool: WorkerPool, programs: ProgramSet, payload: dict[str, Any],
                     clock: Callable[[], int] = time.perf_counter_ns) -> Probe:
    async def run(count: int) -> int:
        started = clock()
        for _ in range(count):
            await pool.run(programs, payload)
        return clock() - started

    return run


def on_cpus(cpus: frozenset[int], probe: Probe) -> Probe:
    """`probe` with the loop thread pinned to `cpus`, as a pool with cpu_affinity "loop" pins
    it; the other measurements share this loop thread, and run on any CPU."""

    async def run(count: int) -> int:
        os.sched_setaffinity(0, cpus)
        try:
            return await probe(count)
        finally:
            os.sched_setaffinity(0, PROCESS_CPUS)

    return run


def echo_on_one_cpu(echo: EchoProcess, cpus: frozenset[int], probe: Probe) -> Probe:
    async def run(count: int) -> int:
        echo.set_cpus(cpus)
        try:
            return await on_cpus(cpus, probe)(count)
        finally:
            echo.set_cpus(PROCESS_CPUS)

    return run


def concurrent_probe(pool: WorkerPool, programs: ProgramSet, payload: dict[str, Any]) -> Probe:
    """`count` evaluations, CONCURRENCY at a time (count is a multiple of it)."""

    async def run(count: int) -> int:
        started = time.perf_counter_ns()
        for _ in range(count // CONCURRENCY):
            await asyncio.gather(*(pool.run(programs, payload) for _ in range(CONCURRENCY)))
        return time.perf_counter_ns() - started

    return run


def plain_pipeline(sources: Mapping[str, str], payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """Each source compiled and executed once as an ordinary module; each evaluation builds
    the binding, calls the rules in order and collects the result, as the runners do."""
    functions = []
    for name, source in sources.items():
        namespace = dict(PLAIN_GLOBALS)
        exec(compile(source, name, "exec"), namespace)
        functions.append(namespace["rule"])

    def evaluate() -> dict[str, Any]:
        lines: list[str] = []
        binding = RuleBinding(payload, lines.append)
        for function in functions:
            if binding.is_finished():
                break
            function(*binding.args)
        return binding.result()

    return evaluate


def restricted(source: str, name: str) -> CodeType:
    compiled = compile_program(source, name)
    assert isinstance(compiled, CompiledProgram), compiled
    return compiled.code


def guarded_globals(guards: Guards) -> Callable[[], dict[str, object]]:
    budget = Budget(guards.limits.max_steps, time.perf_counter)
    budget.start(float("inf"))
    return lambda: guards.globals_for(budget.tick, print)


def module_bodies(codes: list[CodeType], namespace: Callable[[], dict[str, object]]) -> Callable[[], None]:
    def run() -> None:
        for code in codes:
            exec(code, namespace())

    return run


def attribute_reads(payload: dict[str, Any], guards: Guards) -> tuple[Callable[[], object], Callable[[], object]]:
    """The same 20-attribute-read rule called plain and under guards (module body run once)."""
    plain = dict(PLAIN_GLOBALS)
    exec(compile(ATTRIBUTE_READS, "reads", "exec"), plain)
    guarded = guarded_globals(guards)()
    exec(restricted(ATTRIBUTE_READS, "reads"), guarded)
    args = RuleBinding(payload, print).args
    plain_rule, guarded_rule = plain["rule"], guarded["rule"]
    return (lambda: plain_rule(*args)), (lambda: guarded_rule(*args))


def pipe_free_worker(programs: ProgramSet, payload: dict[str, Any], guards: Guards) -> Callable[[], RunReport]:
    """What worker and parent compute for one pool evaluation, without the pipe and the event loop."""
    compiled = compile_set(programs, guards.limits)
    progress = bytearray(len(compiled))

    def set_progress(index: int, code: int) -> None:
        progress[index] = code

    def evaluate() -> RunReport:
        request = orjson.loads(orjson.dumps({"op": "run", "version": programs.version, "payload": payload}))
        report = run_programs(compiled, HOST, guards, request["payload"], progress=set_progress)
        reply = orjson.loads(orjson.dumps({"result": report.result, "logs_dropped": report.logs_dropped,
                                           "trace": [t.to_plain() for t in report.trace]}))
        trace = tuple(ProgramTrace(t["rule"], t["outcome"], t["duration_us"], t["error"], tuple(t["logs"]))
                      for t in reply["trace"])
        return RunReport(reply["result"], trace, reply["logs_dropped"])

    return evaluate


def codec_steps(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Callable[[], object]]:
    request_bytes, reply_bytes = orjson.dumps(request), orjson.dumps(reply)
    return {
        f"orjson.dumps run request ({len(request_bytes)} B)": lambda: orjson.dumps(request),
        f"orjson.loads run request ({len(request_bytes)} B)": lambda: orjson.loads(request_bytes),
        f"orjson.dumps reply ({len(reply_bytes)} B)": lambda: orjson.dumps(reply),
        f"orjson.loads reply ({len(reply_bytes)} B)": lambda: orjson.loads(reply_bytes),
    }


def add_pipeline(bench: Bench, env: dict[str, Any]) -> None:
    payload, programs, pools, pinned = env["payload"], env["programs"], env["pools"], env["pinned_pools"]
    section = "10-rule pipeline"
    bench.add(section, "plain", "(a) plain Python functions", sync_probe(env["plain"]), 400)
    bench.add(section, "inprocess", "(b) in-process sandbox",
              sync_probe(lambda: env["inprocess"].run_sync(programs, payload)), 200)
    for size in (1, 2):
        bench.add(section, f"pool{size}", f"(c) worker pool size={size}, sequential awaits",
                  sequential_probe(pools[size], programs, payload), 100)
    for size in (1, 2):
        bench.add(section, f"pool{size}x", f"(c) worker pool size={size}, {CONCURRENCY} concurrent",
                  concurrent_probe(pools[size], programs, payload), 6 * CONCURRENCY)
    loop_cpu = env["loop_cpu"]
    for size in (1, 2):
        bench.add(section, f"pinned{size}", f"(d) size={size}, cpu_affinity=loop, sequential awaits",
                  on_cpus(loop_cpu, sequential_probe(pinned[size], programs, payload)), 100)
    for size in (1, 2):
        bench.add(section, f"pinned{size}x", f"(d) size={size}, cpu_affinity=loop, {CONCURRENCY} concurrent",
                  on_cpus(loop_cpu, concurrent_probe(pinned[size], programs, payload)), 6 * CONCURRENCY)


def add_inprocess_breakdown(bench: Bench, env: dict[str, Any]) -> None:
    payload, guards = env["payload"], env["guards"]
    section = "breakdown: in-process"
    binding = RuleBinding(payload, print)
    bench.add(section, "binding", "RuleBinding(payload, log)", sync_probe(lambda: RuleBinding(payload, print)), 500)
    bench.add(section, "result", "binding.result()", sync_probe(binding.result), 2000)
    plain_codes = [compile(source, name, "exec") for name, source in PIPELINE.items()]
    guarded_codes = [restricted(source, name) for name, source in PIPELINE.items()]
    bench.add(section, "exec_plain", "exec 10 module bodies, plain code, fresh globals",
              sync_probe(module_bodies(plain_codes, lambda: dict(PLAIN_GLOBALS))), 500)
    bench.add(section, "exec_guarded", "exec 10 module bodies, restricted code, globals_for()",
              sync_probe(module_bodies(guarded_codes, guarded_globals(guards))), 300)
    fresh = guarded_globals(guards)
    bench.add(section, "globals_for", "10 x guards.globals_for() alone",
              sync_probe(lambda: [fresh() for _ in range(10)]), 1000)
    plain_reads, guarded_reads = attribute_reads(payload, guards)
    bench.add(section, "reads_plain", "a rule doing 20 attribute reads, plain", sync_probe(plain_reads), 3000)
    bench.add(section, "reads_guarded", "a rule doing 20 attribute reads, guarded",
              sync_probe(guarded_reads), 3000)


def add_pool_breakdown(bench: Bench, env: dict[str, Any]) -> None:
    payload, programs = env["payload"], env["programs"]
    section = "breakdown: worker pool"
    bench.add(section, "empty1", "pool size=1 round trip, 0-rule program set",
              sequential_probe(env["empty_pool"], env["empty"], payload), 100)
    bench.add(section, "parent_cpu", "parent CPU time per evaluation, size=1 sequential",
              sequential_probe(env["pools"][1], programs, payload, clock=time.thread_time_ns), 100)
    bench.add(section, "parent_cpu_pinned", "parent CPU time per evaluation, size=1, cpu_affinity=loop",
              on_cpus(env["loop_cpu"], sequential_probe(env["pinned_pools"][1], programs, payload,
                                                        clock=time.thread_time_ns)), 100)
    bench.add(section, "pipe_free", "worker + parent work of one evaluation, no pipe/loop",
              sync_probe(pipe_free_worker(programs, payload, env["guards"])), 200)
    echo = env["echo"]
    bench.add(section, "echo_blocking", "raw pipe round trip to an echo process, blocking",
              echo.blocking_probe(), 200)
    bench.add(section, "echo_asyncio", "raw pipe round trip to an echo process, add_reader",
              echo.asyncio_probe(), 200)
    for key, label, probe in (("echo_blocking_1cpu", "blocking", echo.blocking_probe()),
                              ("echo_asyncio_1cpu", "add_reader", echo.asyncio_probe())):
        bench.add(section, key, f"  the same, {label}, both on the loop's CPU",
                  echo_on_one_cpu(echo, env["loop_cpu"], probe), 200)
    request = {"op": "run", "version": programs.version, "payload": payload}
    for index, (label, step) in enumerate(codec_steps(request, env["reply"]).items()):
        bench.add(section, f"codec{index}", label, sync_probe(step), 3000)


async def agreed_reply(env: dict[str, Any]) -> dict[str, Any]:
    """Every variant reaches the plain decision with every rule "ok"; returns a worker-style reply."""
    payload, programs = env["payload"], env["programs"]
    expected = env["plain"]()
    report = env["inprocess"].run_sync(programs, payload)
    pools = [*env["pools"].values(), *env["pinned_pools"].values()]
    reports = [report] + [await pool.run(programs, payload) for pool in pools]
    for checked in reports:
        outcomes = {trace.outcome for trace in checked.trace}
        if checked.result != expected or outcomes != {"ok"}:
            raise SystemExit(f"runners disagree: {checked.result} {outcomes}; plain Python gave {expected}")
    return {"result": report.result, "trace": [t.to_plain() for t in report.trace],
            "logs_dropped": report.logs_dropped}


def print_report(bench: Bench) -> None:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}; "
          f"{REPETITIONS} interleaved repetitions after {WARMUP_REPETITIONS} warm-up")
    print(f"{'microseconds per evaluation':<62}{'median':>9}{'p90':>9}  evaluations/repetition")
    for section, group in bench.sections.items():
        print(section)
        for m in group.values():
            print(f"  {m.label:<60}{m.median_us():>9.1f}{m.p90_us():>9.1f}  {m.count}")
    print("targets (issue 11; DESIGN.md section 9 asked for 2.0 and 100 us), medians of paired repetitions")
    ratio = bench.paired(lambda a, b: a / b, "inprocess", "plain")
    print(f"  {'in-process / plain':<60}{ratio:>9.2f}  target <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'}")
    for key, what in (("pool", "pool"), ("pinned", "pool, cpu_affinity=loop")):
        for size in (1, 2):
            overhead = bench.paired(lambda a, b: a - b, f"{key}{size}", "inprocess") / 1000
            print(f"  {f'isolation overhead, size={size}: {what} - in-process (us)':<60}{overhead:>9.1f}"
                  f"  target <= 60: {'met' if overhead <= 60 else 'MISSED'}")
    print("derived, medians of paired repetitions (us)")
    derived = [
        ("in-process - plain: what the sandbox adds", "inprocess", "plain", 1),
        ("guard cost per attribute read", "reads_guarded", "reads_plain", 20),
        ("pool: 10-rule - empty round trip", "pool1", "empty1", 1),
        ("pool: sequential - pipe-free work (pipe, loop, wakeups)", "pool1", "pipe_free", 1),
    ]
    for label, left, right, per in derived:
        print(f"  {label:<60}{bench.paired(lambda a, b: a - b, left, right) / 1000 / per:>9.2f}")
    for key, what in (("pool", "pool"), ("pinned", "pool, cpu_affinity=loop,")):
        for size in (1, 2):
            rate = 1e6 / bench[f"{key}{size}x"].median_us()
            print(f"  {f'{what} size={size} throughput, {CONCURRENCY} concurrent (evaluations/s)':<60}{rate:>9.0f}")


async def main() -> None:
    limits = Limits()
    payload = rule_payload()
    pools = {size: WorkerPool(HOST_PATH, limits, size=size) for size in (1, 2)}
    pinned = {size: WorkerPool(HOST_PATH, limits, size=size, cpu_affinity="loop") for size in (1, 2)}
    empty_pool = WorkerPool(HOST_PATH, limits, size=1)
    all_pools = (*pools.values(), *pinned.values(), empty_pool)
    # Unpinned pools first: workers inherit the mask of the thread that starts them.
    await asyncio.gather(*(pool.start() for pool in (*pools.values(), empty_pool)))
    await asyncio.gather(*(pool.start() for pool in pinned.values()))
    loop_cpu = frozenset(os.sched_getaffinity(0))  # the CPU the pinned pools claimed
    os.sched_setaffinity(0, PROCESS_CPUS)
    env: dict[str, Any] = {
        "payload": payload, "programs": program_set(PIPELINE), "empty": program_set({}), "pools": pools,
        "pinned_pools": pinned, "loop_cpu": loop_cpu, "empty_pool": empty_pool, "guards": Guards(HOST.access, limits),
        "inprocess": InProcessRunner(HOST, limits), "plain": plain_pipeline(PIPELINE, payload),
    }
    try:
        env["reply"] = await agreed_reply(env)
        env["echo"] = EchoProcess(len(orjson.dumps({"op": "run", "version": "v", "payload": payload})),
                                  len(orjson.dumps(env["reply"])))
        bench = Bench()
        for add in (add_pipeline, add_inprocess_breakdown, add_pool_breakdown):
            add(bench, env)
        await bench.run(WARMUP_REPETITIONS)
        bench.reset()
        gc.collect()
        gc.freeze()  # the setup's objects stay out of the timed collections
        await bench.run(REPETITIONS)
    finally:
        if "echo" in env:
            env["echo"].close()
        await asyncio.gather(*(pool.close() for pool in all_pools))
    print_report(bench)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # the server falls back to asyncio's loop too
        asyncio.run(main())
    else:
        uvloop.run(main())
