"""How long the workflows' install step takes, against pip installing the same pins the pip-tools way.

Like against like: both install exactly the runtime dependencies uv.lock pins, hash-checked, nothing resolved and
nothing built, into an empty venv made beforehand (not timed), from a fresh copy of this checkout:

  uv    uv sync --locked --no-dev --no-install-project
        (what incident.yml and rollback.yml run; the CLI then runs from the checkout with PYTHONPATH=scripts)
  pip   pip install --require-hashes --no-deps --only-binary=:all: -r requirements.txt
        (requirements.txt is `uv export`ed from uv.lock once, as pip-compile --generate-hashes would write it;
        then pip-sync/pip does no resolution and builds nothing)

After every install the venv must import what `handle-event` needs, with the CLI run from the checkout.

Two settings, each printed with its target:
  warm  private uv and pip caches filled by one untimed round, then rounds alternating uv, pip, uv, pip ...
        (a runner whose cache action restored the caches). Target: uv/pip <= 0.25.
  cold  empty caches for every install: both download every wheel from PyPI (a runner without a cache).
        Target: uv/pip <= 0.5.
Each figure is the median over the rounds; each ratio is the median of the per-round ratios.

    python benchmarks/install.py [--rounds 3] [--cold-rounds 2]

pip runs with the machine's pip configuration switched off (PIP_CONFIG_FILE=/dev/null), as on a hosted runner.
Needs PyPI.
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
from collections.abc import Callable
from pathlib import Path

from verdict import report

REPO_ROOT = Path(__file__).resolve().parents[1]
# What `uv sync` needs besides the code it does not install; copied afresh for every install.
PROJECT_FILES = ("pyproject.toml", "uv.lock", "README.md", "scripts", "templates")
HANDLE_EVENT_IMPORTS = "import incidentops.flows.dispatch, incidentops.render, github, httpx, jinja2, ruamel.yaml"
WORKFLOW_SYNC = ("sync", "--locked", "--no-dev", "--no-install-project", "--quiet")
PIP_INSTALL = (
    "install",
    "--quiet",
    "--disable-pip-version-check",
    "--require-hashes",
    "--no-deps",
    "--only-binary=:all:",
    "-r",
)
TARGETS = {"warm": 0.25, "cold": 0.5}
VENV_SEEDS = {"pip", "setuptools"}  # what `python -m venv` puts in before pip runs


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


def export_pins(uv: Path, into: Path) -> Path:
    """uv.lock's runtime pins with their hashes, as a requirements file pip can install without resolving."""
    pins = into / "requirements.txt"
    exported = subprocess.run(
        [str(uv), "export", "--locked", "--no-dev", "--no-emit-project", "--format", "requirements.txt", "--quiet"],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    pins.write_text(exported.stdout)
    return pins


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
    checkout = fresh_checkout(work / "src")
    subprocess.run([str(uv), "venv", "--quiet", str(work / "venv")], cwd=checkout, env=env, check=True)
    return timed([str(uv), *WORKFLOW_SYNC], checkout, env)


def install_with_pip(python: Path, pins: Path, cache: Path, work: Path) -> float:
    subprocess.run([str(python), "-m", "venv", str(work / "venv")], check=True)
    env = clean_env(PIP_CACHE_DIR=str(cache), PIP_CONFIG_FILE=os.devnull)
    pip = str(work / "venv" / "bin" / "pip")
    return timed([pip, *PIP_INSTALL, str(pins)], fresh_checkout(work / "src"), env)


def check_install(work: Path) -> None:
    """The venv must run the CLI from the checkout, with only the locked dependencies installed."""
    python = work / "venv" / "bin" / "python"
    env = clean_env(PYTHONPATH=str(work / "src" / "scripts"))
    subprocess.run(
        [str(python), "-P", "-m", "incidentops", "--version"], check=True, env=env, stdout=subprocess.DEVNULL
    )
    subprocess.run([str(python), "-P", "-c", HANDLE_EVENT_IMPORTS], check=True, env=env)
    site = next((work / "venv" / "lib").glob("python*/site-packages"))
    built = [p.name for p in site.iterdir() if p.name.lower().startswith("incidentops")]
    if built:
        raise SystemExit(f"the install put the project itself into the venv: {built}")


def installed(work: Path) -> set[str]:
    """name==version of every distribution in the venv, but what `python -m venv` seeds."""
    python = work / "venv" / "bin" / "python"
    listed = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; [print(d.name, d.version) for d in m.distributions()]"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.replace(" ", "==").lower().replace("_", "-") for line in listed.splitlines() if line}
    return {n for n in names if n.split("==")[0] not in VENV_SEEDS}


def rounds(
    setting: str,
    count: int,
    scratch: Path,
    uv_install: Callable[[Path, Path], float],
    pip_install: Callable[..., float],
) -> bool:
    """Time `count` alternating rounds; print each and the medians with the target; True if it is met."""
    target = TARGETS[setting]
    uv_times: list[float] = []
    pip_times: list[float] = []
    ratios: list[float] = []
    for n in range(1, count + 1):
        uv_work, pip_work = scratch / f"{setting}-uv-{n}", scratch / f"{setting}-pip-{n}"
        uv_s = uv_install(uv_work, scratch / f"{setting}-uv-cache-{n}")
        pip_s = pip_install(pip_work, scratch / f"{setting}-pip-cache-{n}")
        check_install(uv_work)
        check_install(pip_work)
        if installed(uv_work) != installed(pip_work):
            raise SystemExit(f"uv and pip installed different sets: {installed(uv_work) ^ installed(pip_work)}")
        uv_times.append(uv_s)
        pip_times.append(pip_s)
        ratios.append(uv_s / pip_s)
        print(
            f"  {setting} round {n}: uv {uv_s:6.2f} s   pip {pip_s:6.2f} s   "
            f"ratio {uv_s / pip_s:.3f} (target <= {target})"
        )
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio <= target else "MISSES"
    print(
        f"{setting}: uv {statistics.median(uv_times):.2f} s, pip {statistics.median(pip_times):.2f} s (medians); "
        f"ratio uv/pip {ratio:.3f}, {verdict} the target <= {target}; pip takes {1 / ratio:.1f}x as long"
    )
    return report(
        "install", f"uv / pip install time, {setting} caches", f"{ratio:.3f}", f"<= {target}", ratio <= target
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the workflow install (uv, from uv.lock) against pip.")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds")
    parser.add_argument("--cold-rounds", type=int, default=2, help="cold rounds (each downloads every wheel)")
    args = parser.parse_args(argv)

    uv, python = find_uv(), base_python()
    pip_version = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[:2]
    uv_version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"python {python}  |  {uv_version}  |  {' '.join(pip_version) or 'pip ?'}")

    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        scratch = Path(tmp)
        pins = export_pins(uv, scratch)
        print(
            f"installing the {sum(1 for line in pins.read_text().splitlines() if '==' in line)} runtime pins of uv.lock"
        )
        warm_uv, warm_pip = scratch / "warm-uv-cache", scratch / "warm-pip-cache"
        install_with_uv(uv, python, warm_uv, scratch / "warm-up-uv")
        install_with_pip(python, pins, warm_pip, scratch / "warm-up-pip")
        warm = rounds(
            "warm",
            args.rounds,
            scratch,
            lambda work, _cache: install_with_uv(uv, python, warm_uv, work),
            lambda work, _cache: install_with_pip(python, pins, warm_pip, work),
        )
        cold = rounds(
            "cold",
            args.cold_rounds,
            scratch,
            lambda work, cache: install_with_uv(uv, python, cache, work),
            lambda work, cache: install_with_pip(python, pins, cache, work),
        )
    return 0 if warm and cold else 1


if __name__ == "__main__":
    sys.exit(main())
