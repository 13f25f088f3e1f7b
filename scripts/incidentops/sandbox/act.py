"""Run the real workflow files under act, offline, against the sandbox: `incidentops demo --via-actions`.

`ActRunner.run(delivery)` hands one webhook delivery the sandbox recorded to act, which runs the workflow
GitHub would run for it (incident.yml for `issues` and `issue_comment`, rollback.yml for `pull_request`) on
its host runner, with every action mapped to a stub from tests/act-stubs, uv pointed at a cache pre-warmed
from uv.lock, and the sandbox's URLs, secrets and base-URL variable passed the way a repository's settings
would. The job's own report (`incidentops: <message>`, `  - <step>` lines and the `status=`/`incident_id=`
outputs act echoes) is read back into an `Outcome`.

act must not reach anything but 127.0.0.1, so it runs inside a loopback-only network namespace:
`reexec_in_loopback_namespace` re-executes a command (the demo itself) inside one, and the sandbox is then
started in that same namespace. Everything that needs the internet (pre-warming the uv cache) happens before.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome

# Which workflow GitHub runs for which event.
WORKFLOW_FOR_EVENT = {"issues": "incident.yml", "issue_comment": "incident.yml", "pull_request": "rollback.yml"}

# The stub (under tests/act-stubs) for every action the event workflows use, by action name.
STUB_DIRS = {
    "actions/checkout": "checkout",
    "astral-sh/setup-uv": "setup-uv",
    "actions/upload-pages-artifact": "upload-pages-artifact",
    "actions/deploy-pages": "deploy-pages",
}
STUBS_REL = Path("tests") / "act-stubs"
WORKFLOWS_REL = Path(".github") / "workflows"

# Every runs-on label needs a mapping: act skips a job on an unmapped one and still exits 0.
PLATFORMS = ("ubuntu-latest",)

# What the workflows install (see incident.yml): the locked runtime dependencies, never the project.
UV_SYNC_ARGS = ("sync", "--locked", "--no-dev", "--no-install-project", "--quiet")

# The origin act reads the repository name from; pushes go to the sandbox's bare repository instead.
PUBLIC_ORIGIN = "https://github.com/{repository}.git"

# The repository variable the workflows read as `vars.INCIDENTOPS_BASE_URLS`.
BASE_URLS_VAR = "INCIDENTOPS_BASE_URLS"

# Set in the environment of a command re-executed by `reexec_in_loopback_namespace`.
NAMESPACE_MARKER = "INCIDENTOPS_LOOPBACK_NETNS"

# Caller variables that must not reach act's host runner (its steps inherit act's environment): they would
# change how uv or the CLI behave, or hand the job a secret or variable the workflow did not map.
_LEAKY_PREFIXES = (
    "UV_",
    "GITHUB_",
    "RUNNER_",
    "ACTIONS_",
    "VIRTUAL_ENV",
    "PIP_",
    "PYTHONPATH",
    "ACT_",
    "INCIDENTOPS_",
    "CLOUDFLARE_",
    "SMOKE_",
)

# act prefixes every line a step prints with `[<workflow>/<job>]   | `; its own lines have no `| `. It
# reports each output a step writes to $GITHUB_OUTPUT as `⚙  ::set-output:: name=value` (the file itself is
# deleted with the job's temp dir), and an annotation the step printed as `❓  ::notice::text`.
_STEP_START = re.compile(r"^\[[^\]]*\]\s+\S+\s+Run (Pre|Main|Post) ")
_STEP_LINE = re.compile(r"^\[[^\]]*\]\s+\| ?(?P<text>.*)$")
_SET_OUTPUT = re.compile(r"^\[[^\]]*\]\s+\S+\s+::set-output::\s*(?P<name>[A-Za-z0-9_-]+)=(?P<value>.*)$")
_ANNOTATION = re.compile(r"^\[[^\]]*\]\s+\S+\s+::(?P<level>notice|warning|error)(?: [^:]*)?::(?P<text>.*)$")

TAIL_CHARS = 4000


class ActFailed(IncidentOpsError):
    """act could not run the workflow for a delivery, or the job did not run; the message holds act's tail."""


@dataclass(frozen=True)
class ActTools:
    """The host binaries an act run needs."""

    act: Path
    uv: Path
    python: Path  # the interpreter the uv cache was pre-warmed for; the job's venv uses it too
    uv_cache_dir: Path


@dataclass(frozen=True)
class ActRun:
    """One act invocation: what was run and what it printed."""

    workflow: str
    event: str
    returncode: int
    output: str
    seconds: float
    command: list[str] = field(default_factory=list)

    @property
    def job_ran(self) -> bool:
        """act prints nothing at all for a job whose `if:` is false, so look for signs that it started."""
        return "Set up job" in self.output or re.search(r"Job (succeeded|failed)", self.output) is not None

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and "Job succeeded" in self.output

    def tail(self, chars: int = TAIL_CHARS) -> str:
        return self.output[-chars:]


# -- tools and the uv cache ------------------------------------------------------------------------------


def find_tools(repo_root: Path) -> ActTools:
    """Find act (beside this interpreter, or on PATH), uv (the Makefile's, then PATH) and uv's cache.

    INCIDENTOPS_ACT_UV and INCIDENTOPS_ACT_UV_CACHE override uv and its cache directory.
    """
    bindir = Path(sys.executable).parent
    act = _first_file([bindir / "act", shutil.which("act")], "act (install the dev dependencies: `make install`)")
    uv = _first_file(
        [os.environ.get("INCIDENTOPS_ACT_UV"), repo_root / ".tools" / "bin" / "uv", bindir / "uv", shutil.which("uv")],
        "uv (`make install` puts one in .tools/bin)",
    )
    python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    cache_env = os.environ.get("INCIDENTOPS_ACT_UV_CACHE")
    if cache_env:
        cache_dir = Path(cache_env)
    else:
        found = subprocess.run([str(uv), "cache", "dir"], capture_output=True, text=True, check=False)
        if found.returncode != 0 or not found.stdout.strip():
            raise ActFailed(f"`{uv} cache dir` failed: {found.stderr.strip()}")
        cache_dir = Path(found.stdout.strip())
    return ActTools(act=act, uv=uv, python=python, uv_cache_dir=cache_dir)


def _first_file(candidates: Sequence[str | Path | None], what: str) -> Path:
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ActFailed(f"cannot find {what}; looked at {[str(c) for c in candidates if c]}")


def prewarm_uv_cache(tools: ActTools, project: Path, *, offline: bool = False, timeout: float = 600) -> None:
    """Install uv.lock's runtime dependencies once into a throwaway venv, exactly as the workflows' install
    step does, so that the same cache serves every job offline. Run it before entering the namespace
    (`offline=True` checks, inside it, that the cache already has everything)."""
    scratch = Path(tempfile.mkdtemp(prefix="incidentops-act-prewarm-"))
    try:
        env = clean_env(
            {
                "UV_CACHE_DIR": str(tools.uv_cache_dir),
                "UV_PROJECT_ENVIRONMENT": str(scratch / "venv"),
                "UV_PYTHON": str(tools.python),
                "UV_PYTHON_DOWNLOADS": "never",
                "UV_NO_PROGRESS": "1",
            }
        )
        if offline:
            env["UV_OFFLINE"] = "1"
        try:
            done = subprocess.run(
                [str(tools.uv), *UV_SYNC_ARGS],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise ActFailed(f"pre-warming the uv cache took over {timeout:.0f}s") from err
        if done.returncode != 0:
            raise ActFailed(
                f"pre-warming the uv cache from {project / 'uv.lock'} failed (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-TAIL_CHARS:]}",
                hint="The first run needs PyPI; later ones work offline from the cache.",
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that would change how a workflow step behaves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env.update(extra or {})
    return env


# -- the loopback-only network namespace ---------------------------------------------------------------


def namespace_problem() -> str | None:
    """Why this process cannot make a loopback-only network namespace, or None if it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "`unshare` and `ip` (util-linux, iproute2) are needed to run act without network access"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "creating a network namespace needs root (`unshare -n`); run it as root, e.g. in a container"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip() or f'exit {probe.returncode}'}"
    return None


def in_loopback_namespace() -> bool:
    """True inside a namespace made by `reexec_in_loopback_namespace` that has no interface but `lo`."""
    return os.environ.get(NAMESPACE_MARKER) == "1" and network_interfaces() == ["lo"]


def network_interfaces() -> list[str]:
    """The network interfaces of this process's namespace (from /proc/net/dev, which follows the namespace;
    /sys/class/net shows the namespace sysfs was mounted in)."""
    try:
        text = Path("/proc/net/dev").read_text(encoding="ascii")
    except OSError:
        return []
    return sorted(line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line)


def loopback_command(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so that it runs in a new network namespace where only loopback is up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def reexec_in_loopback_namespace(argv: Sequence[str]) -> NoReturn:
    """Replace this process with `argv` run in a new loopback-only network namespace.

    The new process sees INCIDENTOPS_LOOPBACK_NETNS=1 (see `in_loopback_namespace`), so a command that
    re-executes itself this way does it once. Raises IncidentOpsError, before replacing anything, when
    no namespace can be made here.
    """
    problem = namespace_problem()
    if problem:
        raise IncidentOpsError(
            f"cannot run act offline: {problem}",
            hint="`incidentops demo` without --via-actions tells the same story in-process.",
        )
    command = loopback_command(argv)
    os.environ[NAMESPACE_MARKER] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)


# -- running one delivery -----------------------------------------------------------------------------


@dataclass
class StepReport:
    """What one step of the job showed: its printed lines, the outputs it set and its annotations."""

    lines: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    annotations: list[tuple[str, str]] = field(default_factory=list)  # (level, text)


def parse_steps(output: str) -> list[StepReport]:
    """Split act's output into its steps (each starts with a `⭐ Run …` line) and read each one."""
    steps: list[StepReport] = [StepReport()]
    for raw in output.splitlines():
        if _STEP_START.match(raw):
            steps.append(StepReport())
            continue
        step = steps[-1]
        printed = _STEP_LINE.match(raw)
        if printed is not None:
            step.lines.append(printed["text"])
            continue
        set_output = _SET_OUTPUT.match(raw)
        if set_output:
            step.outputs[set_output["name"]] = set_output["value"].strip()
            continue
        annotation = _ANNOTATION.match(raw)
        if annotation:
            step.annotations.append((annotation["level"], _unescape(annotation["text"])))
    return steps


def cli_report(output: str) -> StepReport | None:
    """The last step in act's output that printed an `incidentops: ` report, if any."""
    for step in reversed(parse_steps(output)):
        if any(line.startswith("incidentops: ") for line in step.lines):
            return step
    return None


def _unescape(message: str) -> str:
    return message.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def outcome_from_run(run: ActRun) -> Outcome:
    """Rebuild the CLI's Outcome from what act printed; ActFailed when there is no report to read."""
    if not run.job_ran:
        raise ActFailed(
            f"act did not run the job of {run.workflow} for this {run.event} event "
            f"(its `if:` was false or its platform unmapped; exit {run.returncode}):\n{run.tail()}"
        )
    report = cli_report(run.output)
    status = report.outputs.get("status") if report else None
    if report is None or not status:
        raise ActFailed(
            f"act ran {run.workflow} for this {run.event} event, but `incidentops handle-event` reported no "
            f"outcome (exit {run.returncode}):\n{run.tail()}"
        )
    lines = report.lines
    first = max(i for i, line in enumerate(lines) if line.startswith("incidentops: "))
    message = [lines[first].removeprefix("incidentops: ")]
    steps: list[str] = []
    for line in lines[first + 1 :]:
        if line.startswith("  - "):
            steps.append(line[4:])
        elif steps:
            steps[-1] += "\n" + line  # a step that spans lines
        else:
            message.append(line)
    text = "\n".join(message).rstrip()
    levels = [level for level, said in report.annotations if said.strip() == text.strip()]
    return Outcome(
        status=status,
        message=text,
        incident_id=report.outputs.get("incident_id") or None,
        steps=[s.rstrip() for s in steps if s.strip()],
        exit_code=0 if run.succeeded else 1,
        level=levels[-1] if levels else "notice",
        details={"act_seconds": round(run.seconds, 3), "act_returncode": run.returncode},
    )


class ActRunner:
    """Runs the real workflow for each delivery under act, against a running sandbox.

    `repo_root` holds .github/workflows and tests/act-stubs (the demo runs from a checkout); `info` is the
    sandbox's ready line; `scratch` receives the workspace act copies, the events and act's HOME. Must be
    used inside a loopback-only network namespace with a pre-warmed uv cache (see the module docstring).
    """

    def __init__(
        self,
        repo_root: Path,
        info: Mapping[str, Any],
        scratch: Path,
        *,
        tools: ActTools | None = None,
        timeout: float = 300,
        step_env: Mapping[str, str] | None = None,
        workflows: Sequence[str] | None = None,
    ) -> None:
        self.repo_root = repo_root.resolve()
        self.info = dict(info)
        self.scratch = scratch
        self.tools = tools or find_tools(self.repo_root)
        self.timeout = timeout
        self.step_env = dict(step_env or {})  # more `--env` for the job, e.g. a clock the CLI honours
        # The workflow files act may run (the Actions scheduler adds report.yml and remind.yml).
        self.workflows = tuple(sorted(set(workflows or WORKFLOW_FOR_EVENT.values())))
        self.runs: list[ActRun] = []
        scratch.mkdir(parents=True, exist_ok=True)
        self.workspace = self._prepare_workspace()

    def _prepare_workspace(self) -> Path:
        """A clone of the sandbox's repository whose origin names github.com (act takes the repository
        from it) while pushes go to the bare repository; it holds this checkout's event workflows."""
        workspace = self.scratch / "workspace"
        bare = str(self.info["bare_repo"])
        _git("clone", "--quiet", bare, str(workspace))
        _git("remote", "set-url", "origin", PUBLIC_ORIGIN.format(repository=self.info["repository"]), cwd=workspace)
        _git("config", "remote.origin.pushurl", bare, cwd=workspace)
        self._copy_workflows(workspace)
        return workspace

    def _copy_workflows(self, workspace: Path) -> None:
        target = workspace / WORKFLOWS_REL
        target.mkdir(parents=True, exist_ok=True)
        source_dir = self.repo_root / WORKFLOWS_REL
        for name in self.workflows:
            source = source_dir / name
            if not source.is_file():
                raise ActFailed(f"{source} does not exist; --via-actions runs from a checkout of incidentops")
            # With the reusable workflows each caller calls (act reads them from the workspace).
            for file in [name, *called_workflows(source)]:
                shutil.copy2(source_dir / file, target / file)

    def move_workspace_to(self, sha: str) -> None:
        """Make `sha` (fetched from the bare repository) the workspace's HEAD on main: act takes GITHUB_SHA
        from it, and a checkout without `ref:` fetches that commit, as on GitHub (the event's SHA)."""
        bare = str(self.info["bare_repo"])
        _git("fetch", "--quiet", bare, "+refs/heads/main:refs/remotes/origin/main", cwd=self.workspace)
        _git("checkout", "--quiet", "--force", "-B", "main", sha, cwd=self.workspace)
        self._copy_workflows(self.workspace)

    def run(self, delivery: Mapping[str, Any], *, extra_env: Mapping[str, str] | None = None) -> Outcome:
        """Run the workflow for one recorded delivery (`{"event", "action", "payload", ...}`) and return the
        CLI's outcome; ActFailed (with act's tail) when act failed before the CLI reported or the job was
        skipped. A job that reported and then failed (e.g. smoke checks failed) gives exit_code 1."""
        return outcome_from_run(self.act(delivery, extra_env=extra_env))

    def act(
        self,
        delivery: Mapping[str, Any],
        *,
        extra_env: Mapping[str, str] | None = None,
        verbose: bool = False,
        workflow: str | None = None,
    ) -> ActRun:
        """Run act for one delivery and return what it printed; never raises on act's own failure.
        `extra_env` adds `--env` variables for this run only; `workflow` names the file to run (default:
        the one GitHub runs for the event, see WORKFLOW_FOR_EVENT)."""
        event = str(delivery["event"])
        workflow_name = workflow or WORKFLOW_FOR_EVENT.get(event)
        if workflow_name is None:
            raise ActFailed(f"no workflow handles {event} events (known: {', '.join(sorted(WORKFLOW_FOR_EVENT))})")
        index = len(self.runs)
        run_dir = self.scratch / f"act-{index}"
        home = run_dir / "home"
        for sub in (home / ".config", home / ".cache"):
            sub.mkdir(parents=True, exist_ok=True)
        event_path = run_dir / "event.json"
        event_path.write_text(json.dumps(delivery["payload"]), encoding="utf-8")
        workflow_path = self.workspace / WORKFLOWS_REL / workflow_name
        command = [str(self.tools.act), event, "-e", str(event_path), "-W", str(workflow_path)]
        if verbose:
            command.append("--verbose")
        for label in PLATFORMS:
            command += ["-P", f"{label}=-self-hosted"]
        command += ["--action-cache-path", str(run_dir / "act-cache"), "--no-cache-server"]
        command += self._local_repository_args()
        command += self._secret_and_var_args()
        for key, value in {**self._step_env(), **(extra_env or {})}.items():
            command += ["--env", f"{key}={value}"]
        env = clean_env(
            {
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "ACT_DISABLE_VERSION_CHECK": "1",
                "NO_COLOR": "1",
            }
        )
        started = time.monotonic()
        returncode, output = run_bounded(command, cwd=self.workspace, env=env, timeout=self.timeout)
        run = ActRun(workflow_name, event, returncode, output, time.monotonic() - started, command)
        self.runs.append(run)
        return run

    def _local_repository_args(self) -> list[str]:
        """Map every action the event workflows use to its stub (act cannot clone from GitHub offline)."""
        args: list[str] = []
        for name in self.workflows:
            for uses in workflow_uses(self.workspace / WORKFLOWS_REL / name):
                action, _, ref = uses.partition("@")
                stub = STUB_DIRS.get(action)
                if stub is None or not ref:
                    raise ActFailed(f"{name} uses {uses!r}, which has no stub in {STUBS_REL}")
                stub_dir = self.repo_root / STUBS_REL / stub
                if not (stub_dir / "action.yml").is_file():
                    raise ActFailed(f"{stub_dir / 'action.yml'} does not exist; --via-actions runs from a checkout")
                mapping = f"{action}@{ref}={stub_dir}"
                if mapping not in args:
                    args += ["--local-repository", mapping]
        return args

    def _secret_and_var_args(self) -> list[str]:
        """What the repository's settings would hold: its secrets (`-s`) and the base-URL variable (`--var`)."""
        secrets = {
            "GITHUB_TOKEN": str(self.info["actions_token"]),
            "CLOUDFLARE_API_TOKEN": str(self.info["cloudflare_api_token"]),
            **{str(k): str(v) for k, v in (self.info.get("smoke_env") or {}).items()},
        }
        args: list[str] = []
        for name, value in secrets.items():
            args += ["-s", f"{name}={value}"]
        if self.info.get("base_urls"):
            args += ["--var", f"{BASE_URLS_VAR}={json.dumps(self.info['base_urls'], separators=(',', ':'))}"]
        return args

    def _step_env(self) -> dict[str, str]:
        api = str(self.info["github_api_url"])
        env = {
            "GITHUB_API_URL": api,
            "GITHUB_SERVER_URL": str(self.info["github_server_url"]),
            "GITHUB_GRAPHQL_URL": api.removesuffix("/v3") + "/graphql",
            "GITHUB_REPOSITORY": str(self.info["repository"]),
            "CLOUDFLARE_API_BASE_URL": str(self.info["cloudflare_api_base_url"]),
            # For the stubs: where origin really lives, which uv and cache to use, for which interpreter.
            "ACT_GIT_REMOTE": str(self.info["bare_repo"]),
            "ACT_UV": str(self.tools.uv),
            "ACT_UV_CACHE_DIR": str(self.tools.uv_cache_dir),
            "ACT_PYTHON": str(self.tools.python),
            "UV_NO_PROGRESS": "1",
        }
        env.update(self.step_env)
        return env


def workflow_uses(workflow: Path) -> list[str]:
    """Every `uses:` of every step in a workflow file and in the workflows it calls from the same repository
    (`jobs.<id>.uses: ./.github/workflows/<file>`, which act reads from the same directory), in order."""
    uses: list[str] = []
    for path in [workflow, *(workflow.parent / name for name in called_workflows(workflow))]:
        uses += [
            str(step["uses"])
            for job in (_load(path).get("jobs") or {}).values()
            for step in (job.get("steps") or [])
            if isinstance(step, dict) and "uses" in step
        ]
    return uses


LOCAL_CALL_PREFIX = "./.github/workflows/"


def called_workflows(workflow: Path) -> list[str]:
    """The files of the same-repository workflows that `workflow` calls (`uses: ./.github/workflows/x.yml`)."""
    names: list[str] = []
    for job in (_load(workflow).get("jobs") or {}).values():
        uses = str(job.get("uses") or "") if isinstance(job, dict) else ""
        if uses.startswith(LOCAL_CALL_PREFIX) and uses[len(LOCAL_CALL_PREFIX) :] not in names:
            names.append(uses[len(LOCAL_CALL_PREFIX) :])
    return names


def _load(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) or {}
    return doc if isinstance(doc, dict) else {}


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ActFailed(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def run_bounded(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `command` in its own process group (no stdin: act would prompt for a secret given no value);
    on timeout end that whole group, act's step processes included. Returns (exit code or -1, output)."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        out = ""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                out, _ = proc.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        return -1, f"{out}\n[incidentops] act timed out after {timeout:.0f}s"
