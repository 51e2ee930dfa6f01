"""`python -m engine serve`, with cProfile switched on and off by signals (used by bench/verify.py --profile).

    python bench/profiled_serve.py OUTPUT.prof serve --port 8123

SIGUSR1 starts profiling the main thread (the event loop, where every request runs),
SIGUSR2 stops it and writes the accumulated statistics to OUTPUT.prof. Repeated
start/stop pairs add up, so only the timed phases of a benchmark are profiled, not its setup.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    output, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(output)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from engine.cli import main as engine_main

    return engine_main(argv)


if __name__ == "__main__":
    sys.exit(main())
