"""`make test` starts with `uv lock --check`: a pyproject.toml that disagrees with uv.lock fails the build."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"


def check(project: Path) -> subprocess.CompletedProcess[str]:
    # Offline: tests talk to nothing but 127.0.0.1; `make install` has filled uv's cache from the lock.
    return subprocess.run([str(UV), "lock", "--check", "--offline"], cwd=project, capture_output=True, text=True)


def test_the_lock_check_passes_as_committed_and_fails_when_pyproject_drifts(tmp_path: Path) -> None:
    if not UV.exists():
        pytest.skip("uv is bootstrapped by `make install`; run the tests through `make test`")
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert check(tmp_path).returncode == 0
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"httpx>=0.28,<1"', '"httpx>=0.27,<1"'))
    drifted = check(tmp_path)
    assert drifted.returncode != 0
    assert "needs to be updated" in drifted.stderr, drifted.stderr
    assert "$(UV) lock --check" in (ROOT / "Makefile").read_text()  # and make test runs it first
