"""The README quickstart, run as written (issue 9, item 2): its shell blocks, in order, twice, against a
live server started as the README starts it, in a copy of the repository's top level."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.demo_geoip import write_demo_database
from tests.engine.live_process import free_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SERVER_COMMAND = "mkdir -p var && ./dev serve | tee var/console.log"


def quickstart_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def environment() -> dict[str, str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("MFA_")}
    environ["PYTHONPATH"] = str(REPO)  # this checkout's engine, for .venv/bin/mfa-engine too
    return environ


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The repository's top level as the quickstart sees it: config.yaml, rules/, .venv/."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "config.yaml", site / "config.yaml")
    shutil.copytree(REPO / "rules", site / "rules", ignore=shutil.ignore_patterns(".versions.json"))
    (site / ".venv").symlink_to(Path(sys.executable).parents[1])
    return site


@pytest.fixture
def server(site: Path, tmp_path: Path) -> Iterator[str]:
    """What `mkdir -p var && ./dev serve | tee var/console.log` runs once installed: the demo GeoIP
    database if missing, then `mfa-engine serve --config config.yaml`, stdout into var/console.log."""
    (site / "var").mkdir()
    write_demo_database(str(site / "var" / "demo-geoip.mmdb"))
    port = free_port()
    with (site / "var" / "console.log").open("wb") as console, (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--config", "config.yaml", "--port",
                                    str(port)], cwd=site, env=environment(), stdin=subprocess.DEVNULL,
                                   stdout=console, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        yield f"localhost:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_readme_keeps_its_two_commands_and_starts_the_quickstart_server_with_them() -> None:
    text = README.read_text(encoding="utf-8")
    assert "```sh\n./dev serve\n```" in text and "```sh\n./dev test\n```" in text
    assert quickstart_blocks()[0].strip() == SERVER_COMMAND


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_quickstart_runs_twice_from_the_top(site: Path, server: str) -> None:
    steps = "".join(quickstart_blocks()[1:]).replace("localhost:8000", server)
    for run in (1, 2):
        result = subprocess.run(["bash", "-c", "set -eo pipefail\n" + steps], cwd=site, env=environment(),
                                capture_output=True, text=True, timeout=120)
        transcript = f"run {run}:\n{result.stdout}\n{result.stderr}"
        assert result.returncode == 0, transcript
        assert '"error":"' not in result.stdout, transcript  # every call answered without an error code
        assert "'amr': ['pwd', 'otp']" in result.stdout, transcript
        assert re.search(r'\{"status":"enrolled","factor":\{"id":"[^"]+","type":"sms"\}\}', result.stdout), transcript
        assert ("removed the demo user alice" in result.stdout) is (run == 2), transcript
        assert f"using config {site / 'config.yaml'} (found in the current directory)" in result.stderr
    users = subprocess.run([sys.executable, "-m", "engine", "users", "list"], cwd=site, env=environment(),
                           capture_output=True, text=True, timeout=60)
    assert [line.split()[1] for line in users.stdout.splitlines()] == ["alice"]
