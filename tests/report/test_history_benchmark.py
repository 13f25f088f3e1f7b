"""The history benchmark still runs, and the files it generates are ones the report reads cleanly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from incidentops.core import report as core
from incidentops.core.lint import lint_text

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "history.py"


def load_benchmark() -> ModuleType:
    # Run as a script, a benchmark finds its sibling modules (verdict.py) on its own folder; loaded here, add it.
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("bench_history", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the worker processes import it by name
    spec.loader.exec_module(module)
    return module


def test_generated_incidents_are_realistic_and_read_without_problems(tmp_path: Path) -> None:
    bench = load_benchmark()
    bench.write_history(tmp_path, 60, chunk=20)
    files = sorted(tmp_path.glob("INC-*.md"))
    assert len(files) == 60
    incidents, malformed = core.read_all((p.name, p.read_bytes()) for p in files)
    assert malformed == []
    assert all(i.summary.problems == () for i in incidents)
    statuses = {i.summary.status for i in incidents}
    assert "closed" in statuses and len(statuses) >= 2
    assert all(len(i.timeline) >= 4 for i in incidents)
    # The linter (written separately, against the format's own rules) finds nothing to complain about.
    problems = [p for path in files for p in lint_text(path.name, path.read_text(encoding="utf-8"))]
    assert problems == []


@pytest.mark.slow
def test_the_benchmark_prints_both_sizes_and_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark()
    code = bench.main(["--sizes", "20,40"])
    out = capsys.readouterr().out
    assert "    20 incidents:" in out and "    40 incidents:" in out
    verdicts = [line for line in out.splitlines() if " per-incident cost at 40 / at 20 = " in line]
    assert [v.split(":")[0] for v in verdicts] == ["report", "lint"]
    assert all("the target <= 1.5" in v for v in verdicts)
    # Tiny sizes are noisy: the point is that the exit code follows the verdicts printed.
    assert code == (1 if any("MISSES" in v for v in verdicts) else 0)
