"""sandbox.cpu_affinity: read strictly, and with "loop" a served app pins its event-loop thread and
sandbox workers to one CPU while argon2's threads stay free to use every CPU."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from engine.app import create_app
from engine.config import ConfigError, load_settings
from sandbox.affinity import PROCESS_CPUS, release_thread
from sandbox.pool import WorkerPool
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import US_IP, auth, evaluate_body, make_settings


def test_cpu_affinity_is_off_by_default_loop_on_request_and_nothing_else(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).sandbox.cpu_affinity == "off"
    assert load_settings(None, environ={"MFA_SANDBOX__CPU_AFFINITY": "loop"}).sandbox.cpu_affinity == "loop"
    path = tmp_path / "config.yaml"
    path.write_text("sandbox: {cpu_affinity: pinned}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sandbox.cpu_affinity: must be one of off, loop"):
        load_settings(path, environ={})


def test_a_bare_off_in_yaml_is_the_off_choice_not_a_type_error(tmp_path: Path) -> None:
    # YAML 1.1 reads `off` as false; the shipped config.yaml writes it bare.
    path = tmp_path / "config.yaml"
    path.write_text("sandbox: {cpu_affinity: off}\n", encoding="utf-8")
    assert load_settings(path, environ={}).sandbox.cpu_affinity == "off"
    assert load_settings(None, environ={"MFA_SANDBOX__CPU_AFFINITY": "off"}).sandbox.cpu_affinity == "off"
    path.write_text("sandbox: {cpu_affinity: true}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sandbox.cpu_affinity: must be a string"):
        load_settings(path, environ={})


def test_a_served_app_with_loop_affinity_pins_its_loop_and_workers_but_not_argon2(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    app = create_app(make_settings(tmp_path, isolation="process", sandbox={"cpu_affinity": "loop"}))
    try:
        with ServiceClient(app, loop_thread) as service:
            assert service.post("/v1/evaluate", json=evaluate_body(US_IP), headers=auth()).status_code == 200

            async def loop_and_argon2_threads() -> tuple[set[int], set[int]]:
                passwords = app.state.services.passwords
                argon2_cpus = await asyncio.get_running_loop().run_in_executor(
                    passwords._executor, os.sched_getaffinity, 0)
                return os.sched_getaffinity(0), argon2_cpus

            loop_cpus, argon2_cpus = loop_thread.call(loop_and_argon2_threads())
            pool: WorkerPool = app.state.services.executor
            worker_cpus = [os.sched_getaffinity(worker.process.pid) for worker in pool._all if worker.pinned]
    finally:
        loop_thread.call(_release())  # the lifespan's close did already; a failed start may not have

    assert len(loop_cpus) == 1
    assert worker_cpus and all(cpus == loop_cpus for cpus in worker_cpus)
    assert argon2_cpus == set(PROCESS_CPUS)


async def _release() -> None:
    release_thread()
