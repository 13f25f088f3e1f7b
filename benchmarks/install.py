"""How long the workflows' install step takes, against a plain `pip install .`.

Both make incidentops runnable in a fresh environment from a fresh copy of this checkout (as a runner's
checkout is new every run):

  workflow  uv sync --locked --no-dev --no-install-project   (what incident.yml and rollback.yml run: only
                                                              the runtime dependencies uv.lock pins,
                                                              hash-checked, nothing built; uv makes the
                                                              venv itself; the CLI then runs from the
                                                              checkout with PYTHONPATH=scripts)
  pip       python -m venv DIR (not timed) && DIR/bin/pip install .   (resolves from PyPI, builds the
                                                                       package with its build backend)

After every install the result is run (`python -P -m incidentops --version` with PYTHONPATH=scripts for
the workflow's way, the `incidentops` console script for pip's), so both really give a working CLI.

pip runs with the machine's pip configuration switched off (PIP_CONFIG_FILE=/dev/null), as on a hosted
runner. Caches are warm for both: one untimed warm-up round fills a private uv cache and a private pip cache, then
the timed rounds alternate uv, pip, uv, pip, ... so drift on the machine hits both alike. Prints each
round, the medians and the median of the per-round ratios uv/pip (target: <= 0.15).

    python benchmarks/install.py [--rounds 3] [--target 0.15] [--keep-caches DIR]

Needs PyPI for the warm-up round (and for pip's index queries in every round).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# What building and locking the package needs; copied afresh for every install.
PROJECT_FILES = ("pyproject.toml", "uv.lock", "README.md", "scripts", "templates")
HANDLE_EVENT_IMPORTS = "import incidentops.flows.dispatch, incidentops.render, github, httpx, jinja2, ruamel.yaml"
WORKFLOW_SYNC = ("sync", "--locked", "--no-dev", "--no-install-project", "--quiet")


def find_uv() -> Path:
    for candidate in (REPO_ROOT / ".tools" / "bin" / "uv", Path(sys.executable).with_name("uv")):
        if candidate.is_file():
            return candidate
    found = shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found: run `make install` first")
    return Path(found)


def base_python() -> Path:
    """The interpreter behind the running one (never a venv's), used by both installers."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("UV_", "PIP_", "VIRTUAL_ENV", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) or k == "PIP_CERT"}
    env.update(extra)
    return env


def fresh_checkout(target: Path) -> Path:
    """A new copy of the project files, like a runner's checkout (new path, new mtimes)."""
    target.mkdir(parents=True)
    for rel in PROJECT_FILES:
        src = REPO_ROOT / rel
        if src.is_dir():
            shutil.copytree(src, target / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file():
            shutil.copy2(src, target / rel)
    return target


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def install_with_uv(uv: Path, python: Path, cache: Path, work: Path) -> float:
    env = clean_env(
        UV_CACHE_DIR=str(cache),
        UV_PROJECT_ENVIRONMENT=str(work / "venv"),
        UV_PYTHON=str(python),
        UV_PYTHON_DOWNLOADS="never",
    )
    return timed([str(uv), *WORKFLOW_SYNC], fresh_checkout(work / "src"), env)


def install_with_pip(python: Path, cache: Path, work: Path) -> float:
    subprocess.run([str(python), "-m", "venv", str(work / "venv")], check=True)
    env = clean_env(PIP_CACHE_DIR=str(cache), PIP_CONFIG_FILE=os.devnull)
    pip = str(work / "venv" / "bin" / "pip")
    return timed([pip, "install", "--quiet", "--disable-pip-version-check", "."], fresh_checkout(work / "src"), env)


def check_workflow_install(work: Path) -> None:
    """The workflow's way must give a working CLI from the checkout, or the comparison means nothing."""
    python = work / "venv" / "bin" / "python"
    env = clean_env(PYTHONPATH=str(work / "src" / "scripts"))
    subprocess.run(
        [str(python), "-P", "-m", "incidentops", "--version"], check=True, env=env, stdout=subprocess.DEVNULL
    )
    # ... whose `handle-event` imports (PyGithub, httpx, ruamel.yaml, jinja2) resolve in the venv.
    subprocess.run([str(python), "-P", "-c", HANDLE_EVENT_IMPORTS], check=True, env=env)
    # Nothing was built or installed for the project itself: only its locked dependencies.
    site = next((work / "venv" / "lib").glob("python*/site-packages"))
    built = [p.name for p in site.iterdir() if p.name.lower().startswith("incidentops")]
    if built:
        raise SystemExit(f"the workflow install put the project into the venv: {built}")


def check_pip_install(work: Path) -> None:
    """pip's install must give a working console script."""
    script = work / "venv" / "bin" / "incidentops"
    subprocess.run([str(script), "--version"], check=True, env=clean_env(), stdout=subprocess.DEVNULL)
    python = work / "venv" / "bin" / "python"
    subprocess.run([str(python), "-P", "-c", HANDLE_EVENT_IMPORTS], check=True, env=clean_env(), cwd=work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the workflow install (uv, from uv.lock) against pip.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.15, help="the uv/pip ratio to stay under")
    parser.add_argument("--keep-caches", type=Path, default=None, help="keep (and reuse) the caches here")
    args = parser.parse_args(argv)

    uv, python = find_uv(), base_python()
    pip_version = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[:2]
    uv_version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"python {python}  |  {uv_version}  |  {' '.join(pip_version) or 'pip ?'}")
    print("caches: warm for both (private uv and pip caches, filled by one untimed warm-up round)")

    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        scratch = Path(tmp)
        caches = args.keep_caches or scratch / "caches"
        uv_cache, pip_cache = caches / "uv", caches / "pip"

        def fresh(name: str) -> Path:
            path = scratch / name
            shutil.rmtree(path, ignore_errors=True)
            return path

        warm_uv = install_with_uv(uv, python, uv_cache, fresh("warm-uv"))
        warm_pip = install_with_pip(python, pip_cache, fresh("warm-pip"))
        check_workflow_install(scratch / "warm-uv")
        check_pip_install(scratch / "warm-pip")
        print(f"warm-up (not counted): uv {warm_uv:.2f} s, pip {warm_pip:.2f} s")

        uv_times: list[float] = []
        pip_times: list[float] = []
        ratios: list[float] = []
        for round_no in range(1, args.rounds + 1):
            uv_s = install_with_uv(uv, python, uv_cache, fresh(f"uv-{round_no}"))
            pip_s = install_with_pip(python, pip_cache, fresh(f"pip-{round_no}"))
            check_workflow_install(scratch / f"uv-{round_no}")
            check_pip_install(scratch / f"pip-{round_no}")
            uv_times.append(uv_s)
            pip_times.append(pip_s)
            ratios.append(uv_s / pip_s)
            print(
                f"round {round_no}: workflow (uv sync --locked --no-install-project) {uv_s:6.2f} s   "
                f"pip install . {pip_s:6.2f} s   ratio {uv_s / pip_s:.3f}"
            )

    ratio = statistics.median(ratios)
    print(f"median: workflow {statistics.median(uv_times):.2f} s, pip {statistics.median(pip_times):.2f} s")
    verdict = "meets" if ratio <= args.target else "MISSES"
    print(f"median ratio workflow/pip: {ratio:.3f} ({verdict} the target <= {args.target})")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
