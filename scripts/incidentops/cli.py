"""Command line: parse arguments, call a flow, map its outcome to exit codes and GitHub annotations.

Exit codes, the same for every command:
  0  done (or nothing needed doing)
  1  not done: refused for a role, exit criteria unmet, a check failed, or an error whose message says what to do
  2  usage: bad arguments, an unknown command or event name
  3  a bug in incidentops (the message says so; re-running is safe, every step is keyed on its event)
"""

from __future__ import annotations

import os
import sys

from incidentops import __version__
from incidentops.errors import IncidentOpsError, UsageError

# Start-up is paid by every workflow run: the flows are imported per command, and not even `typing` is loaded here
# (mypy reads this name as true; benchmarks/startup.py measures what each command imports). `incidentops --help`
# imports no argparse either: the top-level help is printed from COMMANDS, which the parser also uses.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    from incidentops.adapters.actions import Runner
    from incidentops.flows.base import Outcome
    from incidentops.wiring import Ports

EXIT_OK = 0
EXIT_ERROR = 1  # not done: refused, unmet, failed, or a domain error whose message says what to do
EXIT_USAGE = 2
EXIT_BUG = 3  # anything else: a bug in incidentops

EXIT_CODES = """exit codes:
  0  done (or nothing needed doing)
  1  not done: refused for a role, exit criteria unmet, a check failed, or an error saying what to do
  2  usage: bad arguments, an unknown command or event name
  3  a bug in incidentops (re-running is safe: every step is keyed on its event)"""

# The commands, in the order --help lists them, with their one-line summaries.
COMMANDS = {
    "handle-event": "run the flow for the GitHub Actions event in GITHUB_EVENT_NAME / GITHUB_EVENT_PATH",
    "gate": "decide with a read-only token which job handles the event (output `decision`: skip, record, production)",
    "rollback": "plan or apply a rollback to the ledger's pins",
    "smoke": "run the deploy runbook's smoke checks for an environment",
    "lint": "validate incident files (schema, timestamps in order, closed ones complete)",
    "verify": "check an incident's exit criteria; --close closes it when all are met",
    "remind": "post due reminders (run every 30 minutes by a scheduled workflow)",
    "sweep": "apply what runs GitHub cancelled missed: untraced commands, unjudged closes (run by the reminder "
    "workflow)",
    "report": "build the static incident history site (HTML) and the public status page (status/) from the incident "
    "files",
    "init": "set this repository up from what Cloudflare shows: config, caller workflows, form, runbook, ledger, "
    "labels",
    "doctor": "check the repository, GitHub and Cloudflare set-up: ✅/⚠️/❌ per check with the fix",
    "demo": "run the incident playbook against the built-in sandbox, narrated",
    "sandbox": "the emulated GitHub and Cloudflare used by the demo and tests",
}
DESCRIPTION = "GitOps incident response: incidents as markdown files in git, run from GitHub Actions."
USAGE = "usage: incidentops [-h] [--version] COMMAND ..."
OPTIONS = {"-h, --help": "show this help message and exit", "--version": "show program's version number and exit"}

GITHUB_VARS = "GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL, GITHUB_SERVER_URL"
CLOUDFLARE_VARS = "CLOUDFLARE_API_TOKEN, CLOUDFLARE_API_BASE_URL, CLOUDFLARE_ACCOUNT_ID"
SMOKE_VARS = "SMOKE_* (the runbook's credentials), INCIDENTOPS_BASE_URLS"
BY_HAND = (
    "By hand (outside GitHub Actions) your checkout is never touched: git work happens in a private work tree at "
    "origin's default branch, and you act as the owner of GITHUB_TOKEN."
)


def _runner(redact: Callable[[str], str] | None = None) -> Runner:
    from incidentops.adapters.actions import Runner
    from incidentops.core.redact import Redactor

    return Runner(redact=redact or Redactor.from_env(os.environ))


def _ports() -> Ports:
    from incidentops.wiring import ports_from_env

    return ports_from_env(os.environ)


def _check_role(ports: Ports, action: str) -> str:
    from incidentops.flows.base import authorize

    return authorize(ports, os.environ, action)


def _report(outcome: Outcome, runner: Runner) -> int:
    """Print a flow's outcome the way every command does: message, steps, annotation, summary, outputs."""
    runner.say(f"incidentops: {outcome.message}")
    for step in outcome.steps:
        runner.say(f"  - {step}")
    if runner.in_actions and (outcome.status != "skipped" or outcome.exit_code):
        runner.annotate(outcome.level, outcome.message)  # on a terminal the line above already said it
    runner.summary(_summary(outcome))
    runner.output("status", outcome.status)
    if outcome.incident_id:
        runner.output("incident_id", outcome.incident_id)
    return outcome.exit_code


def _cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from incidentops.sandbox.serve import serve

    if args.actions:
        from pathlib import Path

        from incidentops.sandbox import act

        if not act.in_loopback_namespace():
            # act runs only where 127.0.0.1 is the whole network; fill the uv cache while PyPI is reachable.
            seed = Path(args.seed).resolve()
            act.prewarm_uv_cache(act.find_tools(seed), seed)
            again = [sys.executable, "-m", "incidentops", "sandbox", "serve", "--actions", "--seed", str(seed)]
            again += ["--port", str(args.port), "--latency-ms", str(args.latency_ms)]
            act.reexec_in_loopback_namespace(again + (["--workdir", args.workdir] if args.workdir else []))
    return serve(
        port=args.port,
        latency_ms=args.latency_ms,
        workdir=args.workdir,
        seed=args.seed,
        once=False,
        actions=args.actions,
    )


def _cmd_handle_event(args: argparse.Namespace) -> int:
    from incidentops.flows.dispatch import handle_from_env

    runner = _runner()
    _, outcome = handle_from_env(os.environ)
    return _report(outcome, runner)


def _cmd_gate(args: argparse.Namespace) -> int:
    from incidentops.flows.dispatch import gate_from_env

    runner = _runner()
    outcome = gate_from_env(os.environ)
    runner.say(f"incidentops: {outcome.message}")
    runner.output("decision", str(outcome.details["decision"]))
    return 0


def _incident_number(value: str) -> int:
    digits = value.upper().removeprefix("INC-").lstrip("#")
    if not digits.isdigit():
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not an incident id like INC-0042 or an issue number")
    return int(digits)


def _cmd_rollback_plan(args: argparse.Namespace) -> int:
    from incidentops.flows.rollback import build_plan, plan_table

    ports = _ports()
    plan, _, env = build_plan(ports, args.incident, args.service or [])
    print(f"Rollback plan for {plan.incident} ({env.name}); nothing was changed.")
    rows = plan_table(plan)
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in ("service", "live", "target")}
    print(f"{'service':<{widths['service']}}  {'live':<{widths['live']}}  {'target':<{widths['target']}}  preflight")
    for row in rows:
        print(
            f"{row['service']:<{widths['service']}}  {row['live']:<{widths['live']}}  "
            f"{row['target']:<{widths['target']}}  {row['preflight']}"
        )
        print(f"{'':<{widths['service']}}  why: {row['why']}")
    if plan.refused:
        raise IncidentOpsError(
            f"the plan refuses {len(plan.refused)} service(s); see 'preflight' above",
            hint="Fix what each preflight says (for example `force: true` on a pin whose secrets changed), then "
            "plan again.",
        )
    return EXIT_OK


def _cmd_rollback_apply(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from incidentops.adapters import cloudflare
    from incidentops.core.timefmt import format_ts, utc_now

    ports = _ports()
    # The role is read while git fetches the ledger and the rollback's code, httpx and the TLS context load: nothing
    # is deployed before it allows.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="role") as pool:
        checked = pool.submit(_check_role, ports, "rollback_apply")
        ports.git.sync()
        from incidentops.flows.rollback import apply_ledger

        cloudflare.prepare()
        actor = checked.result()
    key = os.environ.get("GITHUB_RUN_ID") or f"manual-{format_ts(utc_now())}"
    outcome = apply_ledger(ports, args.incident, actor, f"run-{key}")
    return _report(outcome, _runner(ports.redact))


def _cmd_smoke(args: argparse.Namespace) -> int:
    from pathlib import Path

    from incidentops.flows.smoke import smoke_from_env

    runner = _runner()
    outcome = smoke_from_env(
        os.environ, args.env, args.service, args.incident, Path(args.junit) if args.junit else None
    )
    # Each check once: the table; the steps repeat its rows, so they go to the job summary only.
    runner.say(outcome.details["table"])
    runner.say(f"incidentops: {outcome.message}")
    if runner.in_actions:
        runner.annotate(outcome.level, outcome.message)
    runner.summary(outcome.details["summary"])
    runner.output("status", outcome.status)
    return int(outcome.exit_code)


def _cmd_lint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from incidentops.flows.lint import lint

    runner = _runner()
    outcome = lint(Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()), args.path)
    for problem in outcome.details["problems"]:
        runner.problem(problem.path, problem.line, problem.message)
    runner.say(f"incidentops lint: {outcome.message}")
    return int(outcome.exit_code)


def _cmd_verify(args: argparse.Namespace) -> int:
    from incidentops.flows.verify import verify_incident

    ports = _ports()
    actor = _check_role(ports, "resolve") if args.close else os.environ.get("GITHUB_ACTOR") or "incidentops"
    key = f"verify-{os.environ.get('GITHUB_RUN_ID', 'manual')}"
    outcome = verify_incident(ports, args.incident, actor, key, close=args.close)
    if outcome.status == "unmet":
        outcome.exit_code = EXIT_ERROR  # asked to close, and it is still open: not done
    return _report(outcome, _runner(ports.redact))


def _cmd_remind(args: argparse.Namespace) -> int:
    from incidentops.flows.remind import run_reminders, watch_reminders
    from incidentops.wiring import in_actions

    ports = _ports()
    if not in_actions(os.environ):
        _check_role(ports, "note")  # reminders are comments on incident issues
    if args.watch_minutes and args.watch_minutes > 0:
        outcome = watch_reminders(ports, minutes=args.watch_minutes, interval=args.interval)
    else:
        outcome = run_reminders(ports)
    return _report(outcome, _runner(ports.redact))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from incidentops.flows.reconcile import sweep

    ports = _ports()
    return _report(sweep(ports), _runner(ports.redact))


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from incidentops.config import CONFIG_FILE, load_config
    from incidentops.flows.report import build_report

    runner = _runner()
    workspace = Path(args.workspace)
    config = load_config(workspace) if (workspace / CONFIG_FILE).is_file() else None
    incidents = (
        Path(args.incidents) if args.incidents else workspace / (config.incidents_dir if config else "incidents")
    )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise IncidentOpsError(f"--out {out} is a file, not a folder", hint="Give a folder for the site, e.g. site/.")
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    outcome = build_report(
        incidents,
        out,
        workspace=workspace,
        repo_url=f"{server}/{repository}" if server and repository else None,
        private=config.report_is_private if config else False,
    )
    for bad in outcome.malformed:
        runner.problem(os.path.relpath(incidents / bad.source, workspace), None, bad.reason, level="warning")
    runner.say(f"incidentops: {outcome.message}")
    if config is not None:
        from incidentops.core.timefmt import utc_now
        from incidentops.flows.statuspage import build_status_page

        status = build_status_page(incidents, out / "status", config, utc_now(), workspace=workspace)
        runner.say(f"incidentops: {status.message}")
    return EXIT_OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from incidentops.core import doctor as core
    from incidentops.core.redact import Redactor
    from incidentops.flows.doctor import run_doctor

    redact = Redactor.from_env(os.environ)
    checks = run_doctor(Path(args.workspace).resolve(), os.environ)
    print(redact(core.render_json(checks) if args.json else core.render_text(checks)), end="", flush=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(redact(core.render_markdown(checks)))
    return core.exit_code(checks)


def _ask(question: str, choices: list[str], multiple: bool) -> list[str]:
    """Prompt on the terminal: a numbered list of choices (several, comma-separated, when `multiple`)."""
    if not choices:
        return [input(f"{question} ").strip()]
    for number, choice in enumerate(choices, 1):
        print(f"  {number}. {choice}")
    hint = "numbers, comma-separated; empty for all" if multiple else "a number"
    picked = input(f"{question} ({hint}) ").strip()
    if not picked and multiple:
        return choices
    chosen = []
    for part in picked.split(","):
        part = part.strip()
        if part.isdigit() and 1 <= int(part) <= len(choices):
            chosen.append(choices[int(part) - 1])
        elif part:
            chosen.append(part)
    return chosen


def _cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from incidentops.flows.init import Answers, run_init

    services = [s.strip() for item in args.services or [] for s in item.split(",") if s.strip()] or None
    answers = Answers(
        services=services,
        environment=args.environment,
        zone=args.zone,
        uses=args.uses,
        force=args.force,
        health_path=args.health_path,
        owners=args.owners,
        ask=_ask if sys.stdin.isatty() and sys.stdout.isatty() else None,
    )
    result = run_init(Path(args.workspace).resolve(), os.environ, answers)  # a missing answer: UsageError, exit 2
    for line in result.lines:
        print(line, flush=True)
    return EXIT_OK


def _summary(outcome: Outcome) -> str:
    from incidentops.render import render

    return render(
        "summary-declare.md.j2", None, headline=outcome.message, incident=None, path=outcome.path, steps=outcome.steps
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from incidentops.demo import run_demo

    seed = Path(args.seed).resolve()
    keep = Path(args.keep).resolve() if args.keep else None
    if args.via_actions:
        from incidentops.sandbox import act

        if not act.in_loopback_namespace():
            # Fill the uv cache while PyPI is reachable, then run this same demo where only 127.0.0.1 exists;
            # the sandbox starts in there too, so act and the jobs it runs can reach it and nothing else.
            act.prewarm_uv_cache(act.find_tools(seed), seed)
            again = [sys.executable, "-m", "incidentops", "demo", "--seed", str(seed), "--via-actions"]
            act.reexec_in_loopback_namespace(again + (["--keep", str(keep)] if keep else []))
    return run_demo(seed=seed, keep=keep, via_actions=args.via_actions)


def _help(what: str, writes: str, env: str, example: str) -> str:
    """The description every subcommand's --help shows: what it does, what it writes, what it reads, an example."""
    return f"{what}\n\nwrites: {writes}\nreads the environment: {env}\n\nexample:\n  {example}\n\n{EXIT_CODES}"


def _wrap(text: str, indent: int, width: int = 100) -> list[str]:
    """Words of `text` in lines that fit `width` once indented by `indent` (no textwrap: it imports `re`, which
    costs --help a third of its time)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width - indent:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def top_help() -> str:
    """`incidentops --help`: what argparse would print for the top level, built from COMMANDS without argparse."""
    column = 2 + max(len(name) for name in [*COMMANDS, *OPTIONS]) + 2

    def rows(table: dict[str, str]) -> list[str]:
        out = []
        for name, summary in table.items():
            first, *rest = _wrap(summary, column)
            out.append(f"  {name:<{column - 2}}{first}")
            out += [" " * column + more for more in rest]
        return out

    parts = [USAGE, "", DESCRIPTION, "", *_wrap(BY_HAND, 0), "", "commands:", *rows(COMMANDS), ""]
    parts += ["options:", *rows(OPTIONS), "", EXIT_CODES, ""]
    parts += ["`incidentops COMMAND --help`: what a command does, writes and reads, with an example."]
    return "\n".join(parts) + "\n"


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse, but usage errors say what to do, on stderr, with exit code 2 (as argparse does)."""

        def error(self, message: str) -> Any:
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"error: {message}\nhint: `{self.prog} --help` lists the arguments.\n")

    return _Parser


class _Unused:
    """Stands for the arguments of a command this run does not parse: adding them costs time and changes nothing."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_defaults(self, **kwargs: Any) -> None:
        return None


def _command_in(argv: Sequence[str]) -> str:
    """The command named on the command line ("" for none, as with `--help`)."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def build_parser(command_only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `command_only` ("" for none) only that command's arguments: the others are
    listed for --help and usage errors, but their arguments are not built (most of --help's start-up time)."""

    import argparse

    def full(name: str) -> bool:
        return command_only is None or command_only == name

    _Parser = _parser_class()
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="incidentops",
        description=f"{DESCRIPTION}\n\n{BY_HAND}",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"incidentops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, summary: str, writes: str, env: str, example: str, on: Any = sub, top: str = "") -> Any:
        if not full(top or name):
            on.add_parser(name, help=summary, add_help=False)
            return _Unused()
        return on.add_parser(
            name,
            help=summary,
            description=_help(summary[0].upper() + summary[1:] + ".", writes, env, example),
            formatter_class=raw,
        )

    handle = command(
        "handle-event",
        COMMANDS["handle-event"],
        "git (incident files, ledger), issue comments and labels, pull requests, Cloudflare (WAF rules, deployments)",
        f"GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, {GITHUB_VARS}, GITHUB_WORKSPACE, {CLOUDFLARE_VARS}, {SMOKE_VARS}",
        "GITHUB_EVENT_NAME=issues GITHUB_EVENT_PATH=event.json incidentops handle-event",
    )
    handle.set_defaults(handler=_cmd_handle_event)

    gate = sub.add_parser(
        "gate",
        help=COMMANDS["gate"],
    )
    gate.set_defaults(handler=_cmd_gate)

    rollback = sub.add_parser("rollback", help=COMMANDS["rollback"], add_help=full("rollback"))
    rollback_sub = rollback.add_subparsers(dest="rollback_command", metavar="ROLLBACK_COMMAND", parser_class=_Parser)
    plan = command(
        "plan",
        "print the rollback plan for an incident",
        "nothing (reads git, GitHub and Cloudflare only)",
        f"{GITHUB_VARS}, {CLOUDFLARE_VARS}",
        "incidentops rollback plan --incident INC-0042",
        on=rollback_sub,
        top="rollback",
    )
    plan.add_argument("--incident", required=True, type=_incident_number, help="INC-0042 or the issue number")
    plan.add_argument("--service", action="append", help="limit to a service (repeatable)")
    plan.set_defaults(handler=_cmd_rollback_plan)
    apply = command(
        "apply",
        "reconcile Cloudflare to the ledger on the default branch (needs the rollback_apply role)",
        "Cloudflare deployments; git (timeline, verified pins) and a comment when --incident is given",
        f"{GITHUB_VARS}, {CLOUDFLARE_VARS}, {SMOKE_VARS}",
        "incidentops rollback apply --incident INC-0042",
        on=rollback_sub,
        top="rollback",
    )
    apply.add_argument("--incident", type=_incident_number, help="INC-0042 or the issue number: record it there")
    apply.set_defaults(handler=_cmd_rollback_apply)

    smoke = command(
        "smoke",
        COMMANDS["smoke"],
        "nothing; with --incident, the result in the incident file (git) and a comment; --junit writes that file",
        f"{SMOKE_VARS}; with --incident also {GITHUB_VARS}",
        "incidentops smoke --env production --service api-worker",
    )
    smoke.add_argument("--env", default="production", help="environment from incidentops.yaml (default: production)")
    smoke.add_argument("--service", action="append", default=[], help="only this service's checks (repeatable)")
    smoke.add_argument("--junit", metavar="PATH", help="also write JUnit XML here")
    smoke.add_argument("--incident", type=_incident_number, help="INC-0042 or the issue number: record it there")
    smoke.set_defaults(handler=_cmd_smoke)

    lint = command(
        "lint",
        COMMANDS["lint"],
        "nothing (reads the files in your checkout, as they are)",
        "GITHUB_WORKSPACE (default: the current folder)",
        "incidentops lint incidents/INC-0042.md",
    )
    lint.add_argument("path", nargs="?", default=None, help="a file or folder (default: the incidents folder)")
    lint.set_defaults(handler=_cmd_lint)

    verify = command(
        "verify",
        COMMANDS["verify"],
        "nothing; with --close the verification record (git), the issue state and a comment (needs resolve)",
        f"{GITHUB_VARS}, {CLOUDFLARE_VARS}, {SMOKE_VARS}",
        "incidentops verify --incident INC-0042",
    )
    verify.add_argument("--incident", required=True, type=_incident_number, help="INC-0042 or the issue number")
    verify.add_argument("--close", action="store_true", help="resolve and close when met, else reopen and list")
    verify.set_defaults(handler=_cmd_verify)

    remind = command(
        "remind",
        COMMANDS["remind"],
        "comments on incident issues",
        GITHUB_VARS,
        "incidentops remind --watch-minutes 26",
    )
    remind.add_argument(
        "--watch-minutes",
        type=float,
        default=0,
        help="while a SEV-1 is open, keep checking for up to this many minutes (default: one pass)",
    )
    remind.add_argument("--interval", type=float, default=60, help="seconds between checks while watching")
    remind.set_defaults(handler=_cmd_remind)
    sweep = command(
        "sweep",
        COMMANDS["sweep"],
        "incident files, comments and pull requests, as the missed runs would have",
        f"{GITHUB_VARS}, {CLOUDFLARE_VARS}, {SMOKE_VARS}",
        "incidentops sweep",
    )
    sweep.set_defaults(handler=_cmd_sweep)

    report = command(
        "report",
        COMMANDS["report"],
        "the site folder given by --out, nothing else",
        "GITHUB_SERVER_URL, GITHUB_REPOSITORY (for links; optional)",
        "incidentops report --out site",
    )
    report.add_argument("--out", default="site", help="directory to write the site into (default: site)")
    report.add_argument(
        "--incidents", default=None, help="folder of incident files (default: incidents_dir of incidentops.yaml)"
    )
    report.add_argument("--workspace", default=".", help="ops repository root, for templates/ (default: .)")
    report.set_defaults(handler=_cmd_report)

    init = command(
        "init",
        COMMANDS["init"],
        "files in the checkout (never one a person edited, without --force) and labels on GitHub; idempotent",
        f"{GITHUB_VARS}, {CLOUDFLARE_VARS}",
        "incidentops init --services api-worker,user-portal --environment production --zone example.com",
    )
    init.add_argument("--services", action="append", help="Workers/Pages names to manage, comma-separated")
    init.add_argument("--environment", help="the environment this zone serves, e.g. production")
    init.add_argument("--zone", help="the zone (name or id) the services answer on")
    init.add_argument("--uses", metavar="OWNER/REPO@SHA", help="the incidentops commit the workflows run")
    init.add_argument("--health-path", default="/healthz", help="each service's health route (default: /healthz)")
    init.add_argument(
        "--owners",
        action="append",
        help="who reviews changes to the ledger, runbook, config and workflows (.github/CODEOWNERS): @user or "
        "@org/team, comma-separated (default: you, the token's owner)",
    )
    init.add_argument("--force", action="store_true", help="overwrite files that differ from what init writes")
    init.add_argument("--workspace", default=".", help="the ops repository checkout (default: .)")
    init.set_defaults(handler=_cmd_init)

    doctor = command(
        "doctor",
        COMMANDS["doctor"],
        "nothing (reads only; the job summary in a workflow)",
        f"{GITHUB_VARS}, {CLOUDFLARE_VARS}, SMOKE_* (set or not)",
        "incidentops doctor --json",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--workspace", default=".", help="the ops repository checkout (default: .)")
    doctor.set_defaults(handler=_cmd_doctor)

    demo = command(
        "demo",
        COMMANDS["demo"],
        "a temporary workspace (kept in --keep DIR), nothing outside it",
        "none",
        "incidentops demo --keep /tmp/incidentops-demo",
    )
    demo.add_argument("--seed", default=".", help="ops repository layout to seed the sandbox from (default: .)")
    demo.add_argument("--keep", metavar="DIR", help="keep the workspace and bare repository in DIR")
    demo.add_argument(
        "--via-actions",
        action="store_true",
        help="run each event through the real .github/workflows files with act, offline "
        "(in a loopback-only network namespace: needs root, unshare and ip)",
    )
    demo.set_defaults(handler=_cmd_demo)

    sandbox = sub.add_parser("sandbox", help=COMMANDS["sandbox"], add_help=full("sandbox"))
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SANDBOX_COMMAND", parser_class=_Parser)
    serve = command(
        "serve",
        "serve the emulated world on 127.0.0.1 until interrupted",
        "a temporary folder (or --workdir) for its bare repository",
        "none",
        "incidentops sandbox serve --port 8080",
        on=sandbox_sub,
        top="sandbox",
    )
    serve.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    serve.add_argument("--latency-ms", type=int, default=0, help="delay every response by this much")
    serve.add_argument("--workdir", default=None, help="where to keep the bare repo (default: a temp dir)")
    serve.add_argument("--seed", default=".", help="ops repository layout to seed from (default: .)")
    serve.add_argument(
        "--actions",
        action="store_true",
        help="run the seed's workflows for every event as GitHub would (act, in a loopback-only namespace)",
    )
    serve.set_defaults(handler=_cmd_sandbox_serve)
    return parser


PATIENCE = 2.0  # seconds of silence on a terminal before saying what the run is waiting on


def _say_what_we_wait_on(stream: Any = None) -> None:
    """On a terminal, name each Cloudflare request that has taken longer than PATIENCE, once (a daemon thread)."""
    import threading
    import time

    stream = stream or sys.stderr

    def watch() -> None:
        from incidentops.adapters.cloudflare import IN_FLIGHT

        told: set[int] = set()
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            for key, (what, since) in list(IN_FLIGHT.items()):
                if key not in told and now - since >= PATIENCE:
                    told.add(key)
                    print(f"… waiting on Cloudflare: {what} ({now - since:.0f} s so far)", file=stream, flush=True)

    threading.Thread(target=watch, name="incidentops-progress", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given in (["-h"], ["--help"], []):
        # The top level needs no parser (a person's first command, and what a new runner's log shows first).
        (sys.stdout if given else sys.stderr).write(top_help())
        return EXIT_OK if given else EXIT_USAGE
    if given == ["--version"]:
        print(f"incidentops {__version__}")
        return EXIT_OK
    parser = build_parser(_command_in(given))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if os.environ.get("GITHUB_ACTIONS") != "true" and sys.stderr.isatty():
        _say_what_we_wait_on()
    try:
        return handler(args)
    except UsageError as err:
        _runner().error(err.message, err.hint)
        return EXIT_USAGE
    except IncidentOpsError as err:
        _runner().error(err.message, err.hint)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in incidentops: say so plainly, keep the (redacted) traceback for the report
        import traceback

        runner = _runner()
        runner.error(
            f"incidentops failed unexpectedly ({type(exc).__name__}: {exc}). This is a bug in incidentops, "
            "not in your input.",
            "Some steps may already have been done (look at the incident file and the issue). Re-running is safe: "
            "every step is keyed on its event and looked up before it is repeated.",
        )
        runner.trace(traceback.format_exc())
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
