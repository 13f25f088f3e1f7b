"""`make bench`: run every benchmark, then print one table of figure, target and verdict.

Each benchmark runs as its own process, one after another (they measure wall time: never two at once), with its
output shown as it comes. A benchmark that crashes or prints no figure is a row of its own. The exit code is non-zero
only after all of them ran, when any target was missed or any benchmark failed.

Run: .venv/bin/python benchmarks/run_all.py [--only startup,declare]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from verdict import MARK

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "startup",
    "declare",
    "rollback",
    "containment",
    "smoke",
    "history",
    "parsing",
    "comment_flood",
    "install",
)


def run(name: str) -> tuple[list[dict[str, object]], int, float]:
    """Run benchmarks/<name>.py; its rows, exit code and seconds."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / f"{name}.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=HERE.parent,
    )
    assert proc.stdout is not None
    rows = []
    for line in proc.stdout:
        if line.startswith(MARK):
            rows.append(json.loads(line[len(MARK) :]))
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
    return rows, proc.wait(), time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] if args.only else list(BENCHMARKS)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    table: list[tuple[str, str, str, str, str]] = []
    failed = False
    for name in names:
        print(f"\n== benchmarks/{name}.py", flush=True)
        rows, code, seconds = run(name)
        for row in rows:
            verdict = "met" if row["met"] else "MISSED"
            failed = failed or not row["met"]
            table.append((name, str(row["figure"]), str(row["value"]), str(row["target"]), verdict))
        if not rows or (code != 0 and all(r["met"] for r in rows)):
            # A crash, or a failure the rows do not explain: never a silent pass.
            failed = True
            table.append(
                (name, "(the benchmark itself)", f"exit code {code} after {seconds:.0f} s", "exit 0", "FAILED")
            )
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    headers = ("benchmark", "figure", "value", "target", "verdict")
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    missed = sum(1 for r in table if r[4] != "met")
    print(f"{len(table) - missed} of {len(table)} met" + (f"; {missed} not" if missed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
