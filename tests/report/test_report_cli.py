"""`incidentops report` from the command line, as the Pages workflow runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .builders import make_incident

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_builds_the_site_and_annotates_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "incidentops.yaml").write_bytes((ROOT / "incidentops.yaml").read_bytes())
    incidents = tmp_path / "incidents"
    incidents.mkdir()
    (incidents / "INC-0001.md").write_text(make_incident(1), encoding="utf-8")
    (incidents / "INC-0002.md").write_text("---\n[bad\n---\n", encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_ACTIONS": "true",  # as the Pages workflow runs it: problems become annotations
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "example/ops",
    }
    result = subprocess.run(
        [sys.executable, "-P", "-m", "incidentops", "report", "--out", "site"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT / "scripts")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "::warning file=incidents/INC-0002.md::" in result.stdout
    assert (tmp_path / "site" / "incidents" / "INC-0001.html").is_file()
    page = (tmp_path / "site" / "incidents" / "INC-0001.html").read_text(encoding="utf-8")
    assert 'href="https://github.com/example/ops/issues/1"' in page
