"""Run the real workflow files under act, offline, against the sandbox.

Two halves:
- outside the network namespace (`run_scenario`): find the tools, pre-warm a uv cache from uv.lock while
  PyPI is still reachable, then start `act_scenario.py` under `unshare -n` with only loopback up;
- inside it (`run_act`, used by act_scenario.py): run act on the host runner with every action the
  workflow uses mapped to a stub in tests/act-stubs, and the sandbox's URLs and tokens passed in.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from incidentops.sandbox import act as act_module
from incidentops.sandbox.act import (
    BASE_URLS_VAR,
    PLATFORMS,
    STUB_DIRS,
    ActTools,
    called_workflows,
    run_bounded,
    workflow_uses,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STUBS_DIR = REPO_ROOT / "tests" / "act-stubs"
SCENARIO_SCRIPT = Path(__file__).with_name("act_scenario.py")

# The stub that stands in for each action a workflow may use (act cannot clone from GitHub offline).
# The stubs, platforms, install and variable names are the ones `incidentops demo --via-actions` uses.
STUBS = {action: STUBS_DIR / name for action, name in STUB_DIRS.items()}

# Variables from the caller that must not leak into act's host runner (it inherits our environment).
_LEAKY_PREFIXES = ("UV_", "GITHUB_", "RUNNER_", "ACTIONS_", "VIRTUAL_ENV", "PIP_", "PYTHONPATH", "ACT_")


# The host binaries an act run needs (act, uv, the interpreter the cache was warmed for, the cache).
Tools = ActTools


@dataclass(frozen=True)
class ActResult:
    returncode: int
    output: str
    seconds: float
    command: list[str]


def find_tools() -> Tools:
    """Locate act, uv, the base interpreter and the uv cache, as `incidentops demo --via-actions` does."""
    return act_module.find_tools(REPO_ROOT)


def prewarm_uv_cache(tools: Tools, project: Path = REPO_ROOT) -> float:
    """Install the runtime deps from uv.lock once into a scratch venv so the same cache works offline."""
    started = time.monotonic()
    act_module.prewarm_uv_cache(tools, project)
    return time.monotonic() - started


@cache
def _prewarm_once(tools: Tools) -> float:
    """Pre-warm once per test session: the lock cannot change under a running session."""
    return prewarm_uv_cache(tools)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that would change how a workflow step behaves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env.update(extra or {})
    return env


@cache
def namespace_problem() -> str | None:
    """Why no loopback-only network namespace can be made here, or None if it can (asked once a session)."""
    return act_module.namespace_problem()


def local_repository_args(workflow: Path) -> list[str]:
    """`--local-repository` flags mapping each action the workflow uses to its stub."""
    args: list[str] = []
    for uses in dict.fromkeys(workflow_uses(workflow)):
        name, _, ref = uses.partition("@")
        stub = STUBS.get(name)
        if stub is None or not ref:
            raise LookupError(f"{workflow.name} uses {uses!r}, which has no stub in {STUBS_DIR}")
        args += ["--local-repository", f"{name}@{ref}={stub}"]
    return args


def run_act(
    *,
    workdir: Path,
    event_name: str,
    event_path: Path,
    workflow: Path,
    sandbox: dict[str, Any],
    tools: Tools,
    scratch: Path,
    timeout: float = 300,
    verbose: bool = False,
    also_map: tuple[Path, ...] = (),
) -> ActResult:
    """Run one event through `workflow` with act on the host runner; never raises on act's failure.
    `also_map` names workflow files whose actions need stubs too: the remote reusable workflows `workflow`
    calls, which act fetches from the sandbox's git server itself."""
    home = scratch / "home"
    for sub in (home / ".config", home / ".cache"):
        sub.mkdir(parents=True, exist_ok=True)
    env = clean_env(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "ACT_DISABLE_VERSION_CHECK": "1",
            "NO_COLOR": "1",
        }
    )
    step_env = {
        "GITHUB_API_URL": sandbox["github_api_url"],
        "GITHUB_SERVER_URL": sandbox["github_server_url"],
        "GITHUB_GRAPHQL_URL": sandbox["github_api_url"].removesuffix("/v3") + "/graphql",
        "GITHUB_REPOSITORY": sandbox["repository"],
        # Where the emulated Cloudflare API lives; the account id comes from incidentops.yaml, as in production.
        "CLOUDFLARE_API_BASE_URL": sandbox["cloudflare_api_base_url"],
        # For the stubs: where origin really lives, which uv and cache to use, for which interpreter.
        "ACT_GIT_REMOTE": sandbox["bare_repo"],
        "ACT_UV": str(tools.uv),
        "ACT_UV_CACHE_DIR": str(tools.uv_cache_dir),
        "ACT_PYTHON": str(tools.python),
        "UV_NO_PROGRESS": "1",
    }
    command = [str(tools.act), event_name, "-e", str(event_path), "-W", str(workflow)]
    if verbose:
        command.append("--verbose")  # the only way act says why it skipped a job
    for label in PLATFORMS:
        command += ["-P", f"{label}=-self-hosted"]
    command += ["--action-cache-path", str(scratch / "act-cache"), "--no-cache-server"]
    mapped = local_repository_args(workflow)
    for other in also_map:
        mapped += local_repository_args(other)
    command += _dedupe_flags(mapped)
    command += secret_and_var_args(sandbox)
    for key, value in step_env.items():
        command += ["--env", f"{key}={value}"]
    started = time.monotonic()
    returncode, output = run_bounded(command, cwd=workdir, env=env, timeout=timeout)
    return ActResult(returncode, output, time.monotonic() - started, command)


def _dedupe_flags(args: list[str]) -> list[str]:
    """`--local-repository X` pairs, each mapping once."""
    pairs = dict.fromkeys(args[i + 1] for i in range(0, len(args), 2))
    return [flag for value in pairs for flag in ("--local-repository", value)]


def secret_and_var_args(sandbox: dict[str, Any]) -> list[str]:
    """What a repository's settings would hold, from the sandbox's ready line: the secrets (`-s`: the job
    token, the Cloudflare token, the smoke checks' tenant tokens) and the base-URL variable (`--var`)."""
    secrets = {"GITHUB_TOKEN": sandbox["actions_token"], "CLOUDFLARE_API_TOKEN": sandbox["cloudflare_api_token"]}
    secrets.update(sandbox.get("smoke_env") or {})
    args: list[str] = []
    for name, value in secrets.items():
        args += ["-s", f"{name}={value}"]
    if sandbox.get("base_urls"):
        args += ["--var", f"{BASE_URLS_VAR}={json.dumps(sandbox['base_urls'], separators=(',', ':'))}"]
    return args


def filter_run(*, workflow: Path, event_name: str, payload: dict[str, Any], tools: Tools, scratch: Path) -> ActResult:
    """Does the job's `if:` let this payload through? Asked of act itself, on a copy of the workflow.

    The copy keeps `on:` and every job's `if:` verbatim but replaces the steps with one `echo` (act's
    `--dryrun` still executes run steps on the host runner, so it is no help). Runs in a loopback-only
    namespace; `repository.full_name` in the payload names the repository.
    """
    yaml = YAML()
    repo = scratch / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    copy = repo / ".github" / "workflows" / workflow.name
    # The workflow and the reusable workflows it calls, every job's steps replaced (a calling job has none).
    for name in [workflow.name, *called_workflows(workflow)]:
        doc = yaml.load((workflow.parent / name).read_text(encoding="utf-8"))
        for job in doc["jobs"].values():
            if "uses" not in job:
                job["steps"] = [{"name": "filter passed", "run": "echo job-ran"}]
        with (repo / ".github" / "workflows" / name).open("w", encoding="utf-8") as handle:
            yaml.dump(doc, handle)
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    full_name = payload["repository"]["full_name"]
    origin = f"https://github.com/{full_name}.git"
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", origin], check=True)
    event_path = scratch / "event.json"
    event_path.write_text(json.dumps(payload), encoding="utf-8")
    home = scratch / "home"
    env = clean_env(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "ACT_DISABLE_VERSION_CHECK": "1",
            "NO_COLOR": "1",
        }
    )
    command = [str(tools.act), event_name, "--verbose", "-e", str(event_path), "-W", str(copy)]
    for label in PLATFORMS:
        command += ["-P", f"{label}=-self-hosted"]
    command += ["--action-cache-path", str(scratch / "act-cache"), "--no-cache-server"]
    command += ["--env", f"GITHUB_REPOSITORY={full_name}"]
    script = "ip link set lo up && exec " + shlex.join(command)
    started = time.monotonic()
    returncode, output = run_bounded(["unshare", "-n", "sh", "-c", script], cwd=repo, env=env, timeout=120)
    return ActResult(returncode, output, time.monotonic() - started, command)


def job_ran(output: str) -> bool:
    """True if act actually started a job (a skipped job prints nothing at all)."""
    return "Run Set up job" in output or re.search(r"Job (succeeded|failed)", output) is not None


def skipped_by_if(output: str) -> bool:
    """True if act (run with --verbose) reports skipping a job because its `if:` was false."""
    return re.search(r"Skipping job '[^']+' due to", output) is not None


def run_scenario(scenario: str, out: Path, timeout: float = 600) -> dict[str, Any]:
    """Pre-warm the uv cache, then run one act_scenario.py scenario in a loopback-only namespace."""
    problem = namespace_problem()
    if problem:
        raise RuntimeError(problem)
    tools = find_tools()
    prewarm_seconds = _prewarm_once(tools)
    inner = [
        sys.executable,
        str(SCENARIO_SCRIPT),
        "--scenario",
        scenario,
        "--out",
        str(out),
        "--act",
        str(tools.act),
        "--uv",
        str(tools.uv),
        "--python",
        str(tools.python),
        "--uv-cache-dir",
        str(tools.uv_cache_dir),
    ]
    script = "ip link set lo up && exec " + shlex.join(inner)
    returncode, output = run_bounded(
        ["unshare", "-n", "sh", "-c", script], cwd=REPO_ROOT, env=clean_env(), timeout=timeout
    )
    if not out.is_file():
        raise RuntimeError(f"scenario {scenario} wrote no result (exit {returncode}):\n{output}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["prewarm_seconds"] = prewarm_seconds
    result["scenario_exit"] = returncode
    result["scenario_output"] = output[-5000:]
    return result
