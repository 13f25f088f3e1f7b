"""Benchmark the parsers of user text on hostile inputs at 1/4 of and at GitHub's 65,536-character body limit.

Each case is a worst case for a lazy-quantifier regex: a `### heading` or `- [x] option` line padded with spaces,
unclosed `<!--` openers, unclosed PEM headers. It prints the seconds at each size and their ratio: a linear parser
takes about 4x as long on 4x the input (target: <= 8; a quadratic one takes about 16x). The seconds depend on the
machine and have no target of their own.

Run: .venv/bin/python benchmarks/parsing.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from verdict import report

from incidentops.core.form import read_intake
from incidentops.core.incidentfile import strip_comments
from incidentops.core.redact import Redactor

LIMIT = 65_536
TARGET_RATIO = 8.0
NOW = datetime(2026, 11, 27, 4, tzinfo=UTC)


def cases(size: int) -> dict[str, Callable[[], object]]:
    heading = "### Summary" + " " * size + "x\n"
    box = "### Risk assessment\n\n- [x] " + " " * size + "y\n"
    comments = "<!--" * (size // 4)
    pem = "-----BEGIN PRIVATE KEY-----\n" * (size // 28)
    redact = Redactor()
    return {
        "form heading": lambda: read_intake(heading, (), ("production",), now=NOW),
        "form checkbox": lambda: read_intake(box, (), ("production",), now=NOW),
        "html comments": lambda: strip_comments(comments),
        "pem redaction": lambda: redact(pem),
    }


def seconds(run: Callable[[], object], repeat: int = 20) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    small, large = cases(LIMIT // 4), cases(LIMIT)
    worst = 0.0
    for name in small:
        a, b = seconds(small[name]), seconds(large[name])
        ratio = b / a if a > 0 else 1.0
        worst = max(worst, ratio)
        sizes = f"{LIMIT // 4:>6} chars {a * 1000:8.3f} ms   {LIMIT:>6} chars {b * 1000:8.3f} ms"
        print(f"{name:<15} {sizes}   ratio {ratio:5.2f}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET_RATIO})")
    met = report(
        "parsing",
        "hostile input: time at 4x the size (worst parser)",
        f"{worst:.2f}x",
        f"<= {TARGET_RATIO:g}x",
        worst <= TARGET_RATIO,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
