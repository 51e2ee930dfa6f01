"""Two checkouts' bench/pipeline.py, alternated in one run: what a change costs, not what the machine did.

    git worktree add ../before <commit> && (cd ../before && python3 -m venv .venv && .venv/bin/pip install -e '.[test]')
    .venv/bin/python bench/compare.py ../before [--rounds 3]

Each checkout runs with its own virtual environment (an editable install points at its own
tree, so the worker processes import that tree's sandbox). Rounds alternate before and
after, so load on the machine spreads over both; the table shows each figure's median
over the rounds. It never asserts a time.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

FIGURES = {
    "plain Python, us": r"\(a\) plain Python functions\s+([\d.]+)",
    "in-process sandbox, us": r"\(b\) in-process sandbox\s+([\d.]+)",
    "pool size=1 sequential, us": r"\(c\) worker pool size=1, sequential awaits\s+([\d.]+)",
    "in-process / plain": r"in-process / plain\s+([\d.]+)",
    "isolation overhead size=1, us": r"isolation overhead, size=1: pool - in-process \(us\)\s+([\d.]+)",
    "isolation overhead size=2, us": r"isolation overhead, size=2: pool - in-process \(us\)\s+([\d.]+)",
    "pool size=2 16 concurrent, evaluations/s": r"pool size=2 throughput, 16 concurrent \(evaluations/s\)\s+([\d.]+)",
}


def run_once(tree: Path) -> dict[str, float]:
    python = tree / ".venv" / "bin" / "python"
    output = subprocess.run([str(python), str(tree / "bench" / "pipeline.py")], cwd=tree, check=True,
                            capture_output=True, text=True, timeout=600).stdout
    figures = {}
    for name, pattern in FIGURES.items():
        found = re.search(pattern, output)
        if found:
            figures[name] = float(found.group(1))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="the other checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": Path(__file__).resolve().parents[1]}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for round_number in range(args.rounds):
        for label, tree in trees.items():
            print(f"round {round_number + 1}/{args.rounds}: {label} ({tree})", file=sys.stderr)
            results[label].append(run_once(tree))
    print(f"{'median over ' + str(args.rounds) + ' alternated rounds':<44}{'before':>10}{'after':>10}")
    for name in FIGURES:
        medians = [statistics.median(r[name] for r in results[label] if name in r) for label in trees]
        print(f"{name:<44}{medians[0]:>10.2f}{medians[1]:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
