"""Prove that `uv lock --check` refuses a pyproject.toml that disagrees with uv.lock.

Run by `make lock-check`, where PyPI is reachable: a drifted requirement makes uv re-resolve, and resolving needs
index metadata that an empty cache does not hold, so this proof cannot run offline on a fresh machine.
Usage: check_lock_drift.py UV [PROJECT]. Exit 0 only when uv names the lock as out of date.
"""

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

OUT_OF_DATE = "needs to be updated"


def drift(pyproject: Path) -> str:
    """Drop the version bounds of the first runtime dependency; return the edited requirement.

    uv simplifies specifiers before comparing (`!=0.0.1` next to `>=2.10` counts as no change), so the drift must
    change which versions are allowed."""
    text = pyproject.read_text()
    first = tomllib.loads(text)["project"]["dependencies"][0]
    name = re.match(r"[A-Za-z0-9._-]+", first)
    quoted = f'"{first}"'
    if name is None or name.group() == first or text.count(quoted) != 1:
        raise SystemExit(f"{pyproject}: expected {quoted}, with version bounds, exactly once, to drift it")
    pyproject.write_text(text.replace(quoted, f'"{name.group()}"'))
    return name.group()


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: check_lock_drift.py UV [PROJECT]", file=sys.stderr)
        return 2
    found = shutil.which(argv[1])
    uv = str(Path(found).resolve()) if found else None  # absolute: uv runs inside the scratch copy
    if uv is None:
        print(f"check_lock_drift.py: no uv at {argv[1]}; `make install` puts one in .tools/bin", file=sys.stderr)
        return 2
    project = Path(argv[2] if len(argv) == 3 else ".")
    with tempfile.TemporaryDirectory(prefix="lock-drift-") as scratch:
        copy = Path(scratch)
        for name in ("pyproject.toml", "uv.lock", "README.md"):
            shutil.copy(project / name, copy / name)
        requirement = drift(copy / "pyproject.toml")
        done = subprocess.run([uv, "lock", "--check"], cwd=copy, capture_output=True, text=True, check=False)
    if done.returncode != 0 and OUT_OF_DATE in done.stderr:
        print(f"lock-check bites: a pyproject.toml requiring {requirement!r} is refused as out of date")
        return 0
    if done.returncode == 0:
        print(f"`uv lock --check` accepted uv.lock for a pyproject.toml requiring {requirement!r}", file=sys.stderr)
    else:
        print(
            f"`uv lock --check` failed on the drifted copy (exit {done.returncode}) without saying the lock"
            f" {OUT_OF_DATE}; it needs PyPI here. Its output:\n{done.stderr}",
            file=sys.stderr,
        )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
