"""One line per figure that `make bench` (benchmarks/run_all.py) collects into its final table.

A benchmark prints its own narrative as before, and for each figure with a target calls `report(...)`, which also
prints a machine-readable line (`BENCH-RESULT {json}`) that run_all.py picks out of the output.
"""

from __future__ import annotations

import json

MARK = "BENCH-RESULT "


def report(benchmark: str, figure: str, value: str, target: str, met: bool) -> bool:
    """Print one figure with its target and verdict (and the line run_all.py collects); return `met`."""
    row = {"benchmark": benchmark, "figure": figure, "value": value, "target": target, "met": met}
    print(MARK + json.dumps(row), flush=True)
    return met
