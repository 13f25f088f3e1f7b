"""The sandbox's Actions scheduler: which workflow runs each recorded event starts, and when they run.

For every delivery the emulated GitHub records (and every push into the bare repository), the scheduler
decides as GitHub would (rules and sources in `actions_rules`):

- which workflow files trigger (`on:` event, activity types, `branches`/`paths` filters); events made with
  the actions token start nothing except `workflow_dispatch`/`repository_dispatch`; a completed run
  delivers `workflow_run` to the workflows that follow it (at most three levels);
- each job's `if:` (a job skipped by its `if:` never joins a job-level concurrency group: ROCm/rocm-systems
  PR #9087 observed exactly that on github.com; a workflow-level group is joined by every run);
- concurrency: at most one active and one pending run per group (case-insensitive name); a newly queued run
  cancels the pending one and takes its place ("Control the concurrency of workflows and jobs", `queue`
  default `single`); `cancel-in-progress: true` cancels the active one instead (not used by our files).

Every started run goes through `execute` (an ActRunner in `incidentops sandbox serve --actions` and the
tests: act with the real workflow file). Skipped and cancelled runs are recorded like the others, and
every decision not to start a run is recorded with its reason: `runs` and `decisions` read them back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from incidentops.sandbox import actions_rules as rules
from incidentops.sandbox.act import ActRunner


@dataclass
class WorkflowRun:
    """One run (of one job: every workflow we ship has one job, or jobs chained by `needs`)."""

    id: int
    workflow: str  # file name under .github/workflows
    name: str  # the workflow's `name:`
    event: str
    action: str | None
    delivery: str | None
    seq: int | None  # the sandbox's event number, when it came from there
    group: str | None
    status: str = "queued"  # queued | pending | in_progress | completed
    conclusion: str | None = None  # success | failure | cancelled | skipped
    reason: str = ""
    sha: str = ""
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    returncode: int | None = None
    output_tail: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False)
    workflow_run_depth: int = 0
    expected_to_run: bool = True  # what the sandbox's reading of the job's `if:` said; act decides too

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("payload")
        return data


@dataclass(frozen=True)
class Execution:
    """What running one job gave: act's exit code, whether the job ran at all, and its output."""

    returncode: int
    job_ran: bool
    succeeded: bool
    output: str


Executor = Callable[[WorkflowRun], Execution]


@dataclass
class Workflow:
    file: str
    doc: Mapping[Any, Any]
    # The workflows its jobs call (`jobs.<id>.uses`), by the `uses:` value; a call not found here is a problem.
    called: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.doc.get("name") or self.file)


LOCAL_CALL = "./.github/workflows/"


def load_workflows(directory: Path, resolve: Callable[[str], Mapping[Any, Any] | None] | None = None) -> list[Workflow]:
    """The workflow files in `directory`, each with the workflows its jobs call: a same-repository call
    (`./.github/workflows/x.yml`) is read from `directory` (GitHub takes it from the caller's commit), another
    repository's (`owner/repo/.github/workflows/x.yml@sha`) from `resolve`, when given."""
    yaml = YAML(typ="safe", pure=True)
    workflows: list[Workflow] = []
    for path in sorted(directory.glob("*.yml")):
        doc = yaml.load(path.read_text(encoding="utf-8")) or {}
        called: dict[str, Mapping[Any, Any]] = {}
        for job in (doc.get("jobs") or {}).values():
            uses = str(job.get("uses") or "") if isinstance(job, dict) else ""
            if uses.startswith(LOCAL_CALL) and (directory / uses[len(LOCAL_CALL) :]).is_file():
                called[uses] = yaml.load((directory / uses[len(LOCAL_CALL) :]).read_text(encoding="utf-8")) or {}
            elif uses and resolve is not None:
                found = resolve(uses)
                if found is not None:
                    called[uses] = found
        workflows.append(Workflow(path.name, doc, called))
    return workflows


@dataclass(frozen=True)
class EffectiveJob:
    """One job as it runs: a caller's own job, or a job of the workflow a caller's job calls. A called job runs
    only if the calling job's `if:` holds too, and sees `inputs` from the calling job's `with:`."""

    conditions: tuple[tuple[Any, Mapping[str, Any]], ...]  # (`if:`, the contexts it is evaluated in)
    concurrency: Any
    contexts: Mapping[str, Any]


def effective_jobs(workflow: Workflow, contexts: Mapping[str, Any]) -> tuple[list[EffectiveJob], list[str]]:
    """The jobs a run of `workflow` holds, calls expanded (one level, as ours are), and any problems."""
    jobs: list[EffectiveJob] = []
    problems: list[str] = []
    for name, job in (workflow.doc.get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        own = ((job.get("if"), contexts),)
        uses = job.get("uses")
        if not uses:
            jobs.append(EffectiveJob(own, job.get("concurrency"), contexts))
            continue
        if job.get("concurrency") is not None:  # a group on the calling job holds the whole called run
            jobs.append(EffectiveJob(own, job["concurrency"], contexts))
        called = workflow.called.get(str(uses))
        if called is None:
            problems.append(f"{workflow.file} job {name}: the called workflow {uses} was not found")
            jobs.append(EffectiveJob(own, None, contexts))
            continue
        inner = {**contexts, "inputs": called_inputs(called, job.get("with") or {}, contexts)}
        for called_job in (called.get("jobs") or {}).values():
            if isinstance(called_job, dict):
                conditions = (*own, (called_job.get("if"), inner))
                jobs.append(EffectiveJob(conditions, called_job.get("concurrency"), inner))
    return jobs, problems


def called_inputs(called: Mapping[Any, Any], given: Mapping[str, Any], contexts: Mapping[str, Any]) -> dict[str, Any]:
    """The `inputs` context of a called workflow: the calling job's `with:` (its expressions evaluated in the
    caller's contexts), else each input's default (docs, "on.workflow_call.inputs")."""
    declared = (rules.triggers(called).get("workflow_call") or {}).get("inputs") or {}
    values: dict[str, Any] = {}
    for key, spec in declared.items():
        if key in given:
            raw = given[key]
            values[key] = rules.interpolate(raw, contexts) if isinstance(raw, str) else raw
        elif isinstance(spec, dict) and "default" in spec:
            values[key] = spec["default"]
    return values


class ActionsScheduler:
    """Decide and run workflow runs for deliveries; `max_parallel` runners take active runs oldest first."""

    def __init__(
        self,
        workflows: list[Workflow],
        execute: Executor,
        *,
        repository: str,
        main_sha: Callable[[], str],
        vars_context: Mapping[str, str] | None = None,
        max_parallel: int = 1,
    ) -> None:
        self.workflows = workflows
        self.execute = execute
        self.repository = repository
        self.main_sha = main_sha
        self.vars = dict(vars_context or {})
        self.max_parallel = max_parallel
        self.lock = threading.Condition()
        self.runs: list[WorkflowRun] = []
        self.decisions: list[dict[str, Any]] = []  # deliveries and workflows that started no run, and why
        self.problems: list[str] = []  # disagreements with act, unsupported expressions
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- deciding ------------------------------------------------------------------------------------------

    def deliver(
        self,
        event: str,
        payload: Mapping[str, Any],
        *,
        delivery: str | None = None,
        seq: int | None = None,
        changed_files: tuple[str, ...] = (),
        workflow_run_depth: int = 0,
    ) -> list[WorkflowRun]:
        """Decide which runs this delivery starts and queue them; returns the runs it created."""
        item = rules.Delivery(event, payload, changed_files, workflow_run_depth)
        created: list[WorkflowRun] = []
        sha = self.main_sha() if event != "push" else str(payload.get("after") or self.main_sha())
        for workflow in self.workflows:
            why = rules.why_not_triggered(workflow.name, workflow.file, workflow.doc, item)
            if why is not None:
                if event in rules.triggers(workflow.doc):
                    self._decide(workflow, item, delivery, seq, why)
                continue
            created.append(self._queue(workflow, item, delivery, seq, sha))
        return created

    def _decide(
        self, workflow: Workflow, item: rules.Delivery, delivery: str | None, seq: int | None, why: str
    ) -> None:
        with self.lock:
            self.decisions.append(
                {
                    "workflow": workflow.file,
                    "event": item.event,
                    "action": item.action,
                    "delivery": delivery,
                    "seq": seq,
                    "started": False,
                    "reason": why,
                }
            )

    def _contexts(self, workflow: Workflow, item: rules.Delivery, sha: str) -> dict[str, Any]:
        return {
            "github": rules.github_context(item, self.repository, workflow.name, sha),
            "vars": self.vars,
            "inputs": dict(item.payload.get("inputs") or {}) if item.event == "workflow_dispatch" else {},
        }

    def _queue(
        self, workflow: Workflow, item: rules.Delivery, delivery: str | None, seq: int | None, sha: str
    ) -> WorkflowRun:
        contexts = self._contexts(workflow, item, sha)
        # The jobs of the run, with those of the workflows its jobs call (the run belongs to the caller's file).
        # The first job decides whether the run does anything (a gate, or the only job); the group the run waits
        # in is the last job-level group (a gate's per-event group never makes anyone wait: the privileged jobs
        # after it share the incident's group), else the caller's workflow-level group.
        jobs, problems = effective_jobs(workflow, contexts)
        if problems:
            with self.lock:
                self.problems.extend(problems)
        first = jobs[0] if jobs else EffectiveJob(((None, contexts),), None, contexts)
        grouped = [j for j in jobs if j.concurrency is not None]
        job_level = bool(grouped)
        concurrency: Any = grouped[-1].concurrency if job_level else workflow.doc.get("concurrency")
        group_contexts = grouped[-1].contexts if job_level else contexts
        with self.lock:
            run = WorkflowRun(
                id=len(self.runs) + 1,
                workflow=workflow.file,
                name=workflow.name,
                event=item.event,
                action=item.action,
                delivery=delivery,
                seq=seq,
                group=None,
                sha=sha,
                queued_at=time.monotonic(),
                payload=item.payload,
                workflow_run_depth=item.workflow_run_depth,
            )
            self.runs.append(run)
        try:
            passes = all(rules.condition(expression, where) for expression, where in first.conditions)
            group, cancel_running = _group(concurrency, group_contexts)
        except rules.UnsupportedExpression as exc:
            self._finish(run, "failure", f"expression not understood by the sandbox: {exc}")
            with self.lock:
                self.problems.append(f"{workflow.file}: {exc}")
            return run
        run.expected_to_run = passes
        if job_level and not passes:
            # Skipped before it could join the job's group: it neither waits nor cancels anything.
            self._finish(run, "skipped", "the job's `if:` is false")
            return run
        with self.lock:
            run.group = group
            if group is not None:
                self._admit(run, cancel_running)
            self.lock.notify_all()
        return run

    def _admit(self, run: WorkflowRun, cancel_running: bool) -> None:
        """Concurrency: one active and one pending run per group; the newest pending run wins."""
        same = [r for r in self.runs if r is not run and r.group == run.group and r.status != "completed"]
        for other in same:
            if other.status == "pending":
                self._finish(other, "cancelled", f"replaced as the pending run of group {run.group!r} by run {run.id}")
        active = [r for r in same if r.status in ("queued", "in_progress")]
        if active and cancel_running:
            for other in active:
                if other.status == "queued":
                    self._finish(other, "cancelled", f"cancel-in-progress by run {run.id}")
            active = [r for r in active if r.status == "in_progress"]
        if active:
            run.status = "pending"

    def _finish(self, run: WorkflowRun, conclusion: str, reason: str = "") -> None:
        run.status = "completed"
        run.conclusion = conclusion
        run.reason = reason
        run.finished_at = time.monotonic()
        if conclusion in ("success", "failure"):
            self._follow(run)

    def _follow(self, run: WorkflowRun) -> None:
        """A completed run delivers `workflow_run` (completed) to the workflows that follow it."""
        payload = {
            "action": "completed",
            "workflow_run": {
                "id": run.id,
                "name": run.name,
                "path": f".github/workflows/{run.workflow}",
                "event": run.event,
                "status": "completed",
                "conclusion": run.conclusion,
                "head_branch": "main",
                "head_sha": run.sha,
            },
            "repository": dict(run.payload.get("repository") or {}),
            "sender": dict(run.payload.get("sender") or run.payload.get("pusher") or {}),
        }
        # Decided at once, under the lock (it is re-entrant): waiting for idle never misses a follower.
        self.deliver("workflow_run", payload, workflow_run_depth=run.workflow_run_depth + 1)

    # -- running -------------------------------------------------------------------------------------------

    def start(self) -> ActionsScheduler:
        for index in range(self.max_parallel):
            thread = threading.Thread(target=self._runner, name=f"actions-runner-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        with self.lock:
            self._stopping = True
            self.lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next_run(self) -> WorkflowRun | None:
        """The oldest active run waiting for a runner; a pending run becomes active when its group frees."""
        for run in self.runs:
            if run.status == "pending" and not any(
                r.group == run.group and r.status in ("queued", "in_progress") for r in self.runs if r is not run
            ):
                run.status = "queued"
        queued = [r for r in self.runs if r.status == "queued"]
        return min(queued, key=lambda r: r.queued_at) if queued else None

    def _runner(self) -> None:
        while True:
            with self.lock:
                run = self._next_run()
                while run is None and not self._stopping:
                    self.lock.wait(0.5)
                    run = self._next_run()
                if self._stopping:
                    return
                assert run is not None
                run.status = "in_progress"
                run.started_at = time.monotonic()
            try:
                done = self.execute(run)
            except Exception as exc:  # an executor crash is the run's failure, never the scheduler's
                done = Execution(-1, False, False, f"executor failed: {exc!r}")
            with self.lock:
                run.returncode = done.returncode
                run.output_tail = done.output[-3000:]
                if done.job_ran != run.expected_to_run and done.returncode >= 0:
                    self.problems.append(
                        f"run {run.id} ({run.workflow}, {run.event}/{run.action}): the sandbox read the job's "
                        f"`if:` as {run.expected_to_run}, act {'ran' if done.job_ran else 'skipped'} the job"
                    )
                if not done.job_ran:
                    # act evaluated the job's `if:` to false (a workflow-level group was joined all the same).
                    self._finish(run, "skipped", "act skipped the job (its `if:` is false)")
                else:
                    self._finish(run, "success" if done.succeeded else "failure")
                self.lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no run is queued, pending or in progress (and no workflow_run is being decided)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                if all(r.status == "completed" for r in self.runs):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.lock.wait(min(remaining, 0.2))

    def report(self) -> dict[str, Any]:
        with self.lock:
            return {
                "runs": [r.summary() for r in self.runs],
                "decisions": list(self.decisions),
                "problems": list(self.problems),
            }


def _group(concurrency: Any, contexts: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The run's concurrency group (case-insensitive: compared lower-cased) and cancel-in-progress."""
    if concurrency is None:
        return None, False
    if isinstance(concurrency, str):
        return rules.interpolate(concurrency, contexts).casefold(), False
    group = rules.interpolate(str(concurrency.get("group") or ""), contexts).casefold()
    cancel = concurrency.get("cancel-in-progress", False)
    if isinstance(cancel, str):
        cancel = rules.condition(cancel, contexts)
    return group or None, bool(cancel)


# -- wiring: act as the runner, the sandbox's recorded events as the source -------------------------------

# The workflows a team's ops repository runs (ci.yml and lint.yml are this project's own checks).
PRODUCT_WORKFLOWS = ("incident.yml", "rollback.yml", "report.yml", "remind.yml")


def act_executor(runner: ActRunner) -> Executor:
    """Run each started job with act and the real workflow file, from the run's commit (one at a time: the
    runs share act's workspace)."""
    lock = threading.Lock()

    def execute(run: WorkflowRun) -> Execution:
        with lock:
            runner.move_workspace_to(run.sha)
            done = runner.act({"event": run.event, "action": run.action, "payload": run.payload}, workflow=run.workflow)
        return Execution(done.returncode, done.job_ran, done.succeeded, done.output)

    return execute


def changed_files(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The files a push changed, from its commits (what `on.push.paths` is matched against)."""
    files: dict[str, None] = {}
    for commit in payload.get("commits") or []:
        for key in ("added", "removed", "modified"):
            files.update(dict.fromkeys(str(path) for path in commit.get(key) or []))
    return tuple(files)


class EventPump:
    """Hands every event the sandbox records (webhook deliveries, pushes) to the scheduler, in order."""

    def __init__(
        self, scheduler: ActionsScheduler, events: Callable[[], list[dict[str, Any]]], interval: float = 0.05
    ) -> None:
        self.scheduler = scheduler
        self.events = events
        self.interval = interval
        self.seen = len(events())  # what happened before the scheduler started starts nothing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="actions-event-pump", daemon=True)

    def start(self) -> EventPump:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.pump()

    def pump(self) -> None:
        for event in self.events()[self.seen :]:
            payload = event.get("payload") or {}
            self.scheduler.deliver(
                str(event["event"]),
                payload,
                delivery=event.get("delivery"),
                seq=event.get("seq"),
                changed_files=changed_files(payload) if event["event"] == "push" else (),
            )
            self.seen += 1  # only now: wait_idle must not see it decided before its runs are queued

    def wait_idle(self, timeout: float) -> bool:
        """Until every recorded event was decided and every run finished (runs record new events: repeat)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events()) == self.seen and self.scheduler.wait_idle(0.1) and len(self.events()) == self.seen:
                return True
            time.sleep(self.interval)
        return False


def start_for_sandbox(
    sandbox: Any, repo_root: Path, scratch: Path, *, tools: Any = None
) -> tuple[ActionsScheduler, EventPump]:
    """An Actions scheduler running this checkout's product workflows under act against `sandbox` (a
    running server.Sandbox, in a loopback-only network namespace with a pre-warmed uv cache)."""
    info = sandbox.info
    runner = ActRunner(
        repo_root,
        info,
        scratch,
        tools=tools,
        workflows=PRODUCT_WORKFLOWS,
        step_env={"ACT_PAGES_DIR": str(scratch / "pages")},
    )
    git = sandbox.github.git
    workflows = [w for w in load_workflows(repo_root / ".github" / "workflows") if w.file in PRODUCT_WORKFLOWS]
    scheduler = ActionsScheduler(
        workflows,
        act_executor(runner),
        repository=str(info["repository"]),
        main_sha=lambda: str(git.branch_sha("main")),
        vars_context={"INCIDENTOPS_BASE_URLS": json.dumps(info.get("base_urls") or {})},
    ).start()
    sandbox.github.record_git_pushes(True)  # the report workflow triggers on push
    pump = EventPump(scheduler, lambda: list(sandbox.github.events)).start()
    sandbox.actions = scheduler
    return scheduler, pump
