"""`make demo` runs `incidentops demo`; it must tell the story and exit 0 from a clean checkout."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_prints_the_committed_incident_file_and_its_git_log(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    result = subprocess.run(
        [sys.executable, "-m", "incidentops", "demo", "--seed", str(ROOT), "--keep", str(keep)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "declared INC-0001 (SEV-1) from #1" in out
    assert "INC-0001: this event was already applied; nothing to do" in out
    assert "── incidents/INC-0001.md on main" in out and "\nid: INC-0001\n" in out
    assert "INC-0001: declare SEV-1 (@oncall-write, #1)" in out  # the git log
    bare = keep / "sandbox" / "acme" / "ops.git"
    log = subprocess.run(["git", "-C", str(bare), "log", "--format=%s", "main"], capture_output=True, text=True)
    subjects = log.stdout.split("\n")
    assert "INC-0001: declare SEV-1 (@oncall-write, #1)" in subjects
    assert "INC-0001: rollback PR #2 opened (@oncall-write)" in subjects
