"""`make test` starts with `make lock-check`: uv.lock matches pyproject.toml, and a drifted pyproject.toml fails.

The drift proof itself needs PyPI (uv re-resolves a drifted project), so `make lock-check` runs it while the network
is allowed; here the committed lock is checked on an empty cache, and the proof script is checked against stand-in
uv binaries for every way it could flatter."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
DRIFT_SCRIPT = ROOT / "scripts" / "check_lock_drift.py"


def copy_project(into: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, into / name)


def test_the_committed_lock_passes_offline_with_an_empty_uv_cache(tmp_path: Path) -> None:
    assert UV.exists(), "uv is bootstrapped by `make install`; run the tests through `make test`"
    project = tmp_path / "project"
    project.mkdir()
    copy_project(project)
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "empty-cache"), "UV_OFFLINE": "1"}
    done = subprocess.run([str(UV), "lock", "--check"], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def fake_uv(tmp_path: Path, *, exit_code: int, stderr: str) -> tuple[Path, Path]:
    """A stand-in for uv that records the pyproject.toml it was run on, then answers as told."""
    seen = tmp_path / "seen-pyproject.toml"
    uv = tmp_path / "uv"
    uv.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "assert sys.argv[1:] == ['lock', '--check'], sys.argv\n"
        f"shutil.copy('pyproject.toml', {str(seen)!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n"
    )
    uv.chmod(0o755)
    return uv, seen


def run_proof(uv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DRIFT_SCRIPT), str(uv), str(ROOT)], capture_output=True, text=True, check=False
    )


def test_the_proof_passes_when_uv_refuses_the_drifted_copy_as_out_of_date(tmp_path: Path) -> None:
    uv, seen = fake_uv(
        tmp_path, exit_code=1, stderr="error: The lockfile at `uv.lock` needs to be updated, but `--check` was given."
    )
    done = run_proof(uv)
    assert done.returncode == 0, done.stderr
    committed = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    drifted = tomllib.loads(seen.read_text())["project"]["dependencies"]
    assert drifted != committed and len(drifted) == len(committed)  # uv saw one requirement changed


def test_the_proof_fails_when_uv_accepts_the_drifted_copy(tmp_path: Path) -> None:
    uv, _ = fake_uv(tmp_path, exit_code=0, stderr="Resolved 42 packages\n")
    done = run_proof(uv)
    assert done.returncode == 1
    assert "accepted uv.lock for a pyproject.toml requiring" in done.stderr


def test_the_proof_fails_when_uv_fails_for_another_reason(tmp_path: Path) -> None:
    # A cold cache offline: uv fails, but not because it detected the drift.
    uv, _ = fake_uv(
        tmp_path,
        exit_code=1,
        stderr="error: No solution found\nhint: Packages were unavailable because the network was disabled.\n",
    )
    done = run_proof(uv)
    assert done.returncode == 1
    assert "without saying the lock needs to be updated" in done.stderr
    assert "network was disabled" in done.stderr


def test_make_test_runs_the_lock_check_and_the_drift_proof_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "$(UV) lock --check\n\t$(TOOLS)/bin/python scripts/check_lock_drift.py $(UV)" in makefile
    test_target = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert test_target.split()[1] == "lock-check"
