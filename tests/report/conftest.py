"""Where the report tests leave files for people to look at (the index screenshot)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAVED: list[Path] = []


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/report (or $INCIDENTOPS_TEST_ARTIFACTS/report); kept after the run."""
    base = Path(os.environ.get("INCIDENTOPS_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    path = base / "report"
    path.mkdir(parents=True, exist_ok=True)
    return path


def remember(path: Path) -> None:
    SAVED.append(path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in SAVED:
        terminalreporter.write_line(f"report test artifact: {path}")
