"""Time from an accepted rule upload on one instance to "live on all instances", two processes on one Redis.

Starts a private redis-server (a free port, no persistence, never the shared 6379) and two
`mfa-engine serve` processes, each with its own rules folder and SQLite file, both with
`store.redis_url` on it. Then `--uploads` times: PUT a rule with new source on the first (a new
version each time), and from the moment the PUT answers, poll GET /admin/rules of the second
until it names that version. Prints the median, p90 and max of that delay, and of the PUT
itself; asserts nothing.

    .venv/bin/python bench/rule_sync.py [--uploads 50] [--isolation inprocess|process]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_evaluate import API_KEY, free_port, start  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RULE_ID = "99-bench-sync"
RULE = '"""Changes every time: a new version each upload ({index})."""\n\n\ndef rule(user, context):\n    pass\n'
ALLOW = '"""Let everyone in."""\n\n\ndef rule(user, context):\n    pass\n'
POLL_SECONDS = 0.001


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not on PATH")
    port = free_port()
    process = subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                                "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    client.close()
    return process, f"redis://127.0.0.1:{port}/0"


def write_config(home: Path, redis_url: str, isolation: str) -> Path:
    rules = home / "rules"
    rules.mkdir(parents=True)
    (rules / "10-allow.py").write_text(ALLOW, encoding="utf-8")
    config = {
        "rules": {"dir": str(rules)}, "sandbox": {"isolation": isolation}, "geoip": {"database": ""},
        "api": {"keys": [API_KEY]}, "admin": {"token": ADMIN_TOKEN},
        "directory": {"url": f"sqlite:///{home / 'mfa.db'}"}, "store": {"redis_url": redis_url},
    }
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_instance(home: Path, redis_url: str, isolation: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "engine", "serve", "--config", str(write_config(home, redis_url, isolation)),
               "--port", str(port)]
    process = start(command, port, {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while httpx.get(url + "/healthz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is not healthy")
        time.sleep(0.05)
    return process, url


def measure(first: str, second: str, uploads: int) -> tuple[list[float], list[float]]:
    """Seconds of each PUT, and from each PUT's answer until the second instance runs its version."""
    put_seconds: list[float] = []
    live_seconds: list[float] = []
    with httpx.Client(base_url=first, headers=HEADERS) as upload, httpx.Client(base_url=second, headers=HEADERS) as poll:
        for index in range(uploads):
            started = time.perf_counter()
            response = upload.put(f"/admin/rules/{RULE_ID}", json={"source": RULE.format(index=index)})
            accepted = time.perf_counter()
            response.raise_for_status()
            version = response.json()["version"]
            while poll.get("/admin/rules").json()["version"] != version:
                time.sleep(POLL_SECONDS)
            live_seconds.append(time.perf_counter() - accepted)
            put_seconds.append(accepted - started)
    return put_seconds, live_seconds


def figures(name: str, seconds: list[float]) -> str:
    ms = sorted(value * 1000 for value in seconds)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"{name:<38} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   max {ms[-1]:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--isolation", choices=("inprocess", "process"), default="inprocess")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            redis_process, redis_url = start_redis(root)
            processes.append(redis_process)
            first_process, first = start_instance(root / "a", redis_url, arguments.isolation)
            processes.append(first_process)
            second_process, second = start_instance(root / "b", redis_url, arguments.isolation)
            processes.append(second_process)
            put_seconds, live_seconds = measure(first, second, arguments.uploads)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(10)
    print(f"{arguments.uploads} uploads, two instances ({arguments.isolation} rules), one private redis-server")
    print(figures("PUT on the first (accepted)", put_seconds))
    print(figures("accepted -> live on the second", live_seconds))


if __name__ == "__main__":
    main()
