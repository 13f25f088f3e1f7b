"""Command line: parse arguments, call a flow, map its outcome to exit codes and GitHub annotations."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from incidentops import __version__
from incidentops.errors import IncidentOpsError

if TYPE_CHECKING:  # the flows are imported lazily, per command, to keep start-up fast
    from incidentops.adapters.actions import Runner
    from incidentops.flows.base import Outcome

EXIT_OK = 0
EXIT_ERROR = 1  # a domain error: the message says what to do
EXIT_USAGE = 2
EXIT_BUG = 3  # anything else: a bug in incidentops


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
    import os

    from incidentops.adapters.actions import Runner
    from incidentops.core.redact import Redactor
    from incidentops.flows.dispatch import handle_from_env

    runner = Runner(redact=Redactor.from_env(os.environ))
    _, outcome = handle_from_env(os.environ)
    runner.say(f"incidentops: {outcome.message}")
    for step in outcome.steps:
        runner.say(f"  - {step}")
    if outcome.status != "skipped":
        runner.annotate(outcome.level, outcome.message)
    runner.summary(_summary(outcome))
    runner.output("status", outcome.status)
    if outcome.incident_id:
        runner.output("incident_id", outcome.incident_id)
    return outcome.exit_code


def _incident_number(value: str) -> int:
    digits = value.upper().removeprefix("INC-").lstrip("#")
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not an incident id like INC-0042 or an issue number")
    return int(digits)


def _cmd_rollback_plan(args: argparse.Namespace) -> int:
    import os

    from incidentops.flows.rollback import build_plan, plan_table
    from incidentops.wiring import ports_from_env

    ports = ports_from_env(os.environ)
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
    return 0 if not plan.refused else 1


def _cmd_rollback_apply(args: argparse.Namespace) -> int:
    import os

    from incidentops.adapters.actions import Runner
    from incidentops.core.timefmt import format_ts, utc_now
    from incidentops.flows.rollback import apply_ledger
    from incidentops.wiring import ports_from_env

    ports = ports_from_env(os.environ)
    actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "operator"
    role = ports.github.role_of(actor)
    if not ports.config.allows("rollback_apply", role):
        print(
            f"::error::{actor} has role {role!r}; rollback_apply needs {ports.config.permissions['rollback_apply']!r}. "
            "Nothing was changed."
        )
        return 1
    key = os.environ.get("GITHUB_RUN_ID") or f"manual-{format_ts(utc_now())}"
    outcome = apply_ledger(ports, args.incident, actor, f"run-{key}")
    runner = Runner(redact=ports.redact)
    runner.say(f"incidentops: {outcome.message}")
    for step in outcome.steps:
        runner.say(f"  - {step}")
    runner.summary(_summary(outcome))
    return outcome.exit_code


def _report(outcome: Outcome, runner: Runner) -> int:
    """Print a flow's outcome the way every command does: message, steps, annotation, summary."""
    runner.say(f"incidentops: {outcome.message}")
    for step in outcome.steps:
        runner.say(f"  - {step}")
    if outcome.status != "skipped":
        runner.annotate(outcome.level, outcome.message)
    runner.summary(_summary(outcome))
    runner.output("status", outcome.status)
    return outcome.exit_code


def _cmd_smoke(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from incidentops.adapters.actions import Runner
    from incidentops.core.redact import Redactor
    from incidentops.flows.smoke import smoke_from_env

    runner = Runner(redact=Redactor.from_env(os.environ))
    outcome = smoke_from_env(
        os.environ, args.env, args.service, args.incident, Path(args.junit) if args.junit else None
    )
    runner.say(outcome.details["table"])
    runner.say(f"incidentops: {outcome.message}")
    for step in outcome.steps:
        runner.say(f"  - {step}")
    runner.annotate(outcome.level, outcome.message)
    runner.summary(outcome.details["summary"])
    runner.output("status", outcome.status)
    return outcome.exit_code


def _cmd_lint(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from incidentops.flows.lint import run

    return run(Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()), args.path)


def _cmd_verify(args: argparse.Namespace) -> int:
    import os

    from incidentops.adapters.actions import Runner
    from incidentops.flows.verify import verify_incident
    from incidentops.wiring import ports_from_env

    ports = ports_from_env(os.environ)
    actor = os.environ.get("GITHUB_ACTOR", "incidentops")
    key = f"verify-{os.environ.get('GITHUB_RUN_ID', 'manual')}"
    outcome = verify_incident(ports, args.incident, actor, key, close=args.close)
    return _report(outcome, Runner(redact=ports.redact))


def _cmd_remind(args: argparse.Namespace) -> int:
    import os

    from incidentops.adapters.actions import Runner
    from incidentops.flows.remind import run_reminders, watch_reminders
    from incidentops.wiring import ports_from_env

    ports = ports_from_env(os.environ)
    if args.watch_minutes and args.watch_minutes > 0:
        outcome = watch_reminders(ports, minutes=args.watch_minutes, interval=args.interval)
    else:
        outcome = run_reminders(ports)
    return _report(outcome, Runner(redact=ports.redact))


def _cmd_sweep(args: argparse.Namespace) -> int:
    import os

    from incidentops.adapters.actions import Runner
    from incidentops.flows.reconcile import sweep
    from incidentops.wiring import ports_from_env

    ports = ports_from_env(os.environ)
    return _report(sweep(ports), Runner(redact=ports.redact))


def _cmd_report(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from incidentops.config import CONFIG_FILE, load_config
    from incidentops.flows.report import build_report

    workspace = Path(args.workspace)
    config = load_config(workspace) if (workspace / CONFIG_FILE).is_file() else None
    incidents = (
        Path(args.incidents) if args.incidents else workspace / (config.incidents_dir if config else "incidents")
    )
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    outcome = build_report(
        incidents,
        Path(args.out),
        workspace=workspace,
        repo_url=f"{server}/{repository}" if server and repository else None,
        private=config.report_is_private if config else False,
    )
    for bad in outcome.malformed:
        where = os.path.relpath(incidents / bad.source, workspace)
        print(f"::warning file={where}::{_escape_annotation(bad.reason)}", flush=True)
    print(f"incidentops: {outcome.message}", flush=True)
    return EXIT_OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    import os
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incidentops",
        description="GitOps incident response: incidents as markdown files in git, run from GitHub Actions.",
    )
    parser.add_argument("--version", action="version", version=f"incidentops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    handle = sub.add_parser(
        "handle-event",
        help="run the flow for the GitHub Actions event in GITHUB_EVENT_NAME / GITHUB_EVENT_PATH",
    )
    handle.set_defaults(handler=_cmd_handle_event)

    rollback = sub.add_parser("rollback", help="plan or apply a rollback to the ledger's pins")
    rollback_sub = rollback.add_subparsers(dest="rollback_command", metavar="ROLLBACK_COMMAND")
    plan = rollback_sub.add_parser("plan", help="print the rollback plan for an incident; changes nothing")
    plan.add_argument("--incident", required=True, type=_incident_number, help="INC-0042 or the issue number")
    plan.add_argument("--service", action="append", help="limit to a service (repeatable)")
    plan.set_defaults(handler=_cmd_rollback_plan)
    apply = rollback_sub.add_parser(
        "apply", help="reconcile Cloudflare to the ledger on the default branch (needs the rollback_apply role)"
    )
    apply.add_argument("--incident", type=_incident_number, help="record the rollback in this incident")
    apply.set_defaults(handler=_cmd_rollback_apply)

    smoke = sub.add_parser("smoke", help="run the deploy runbook's smoke checks for an environment")
    smoke.add_argument("--env", default="production", help="environment from incidentops.yaml (default: production)")
    smoke.add_argument("--service", action="append", default=[], help="only this service's checks (repeatable)")
    smoke.add_argument("--junit", metavar="PATH", help="also write JUnit XML here")
    smoke.add_argument("--incident", type=_incident_number, metavar="N", help="record the result on this incident")
    smoke.set_defaults(handler=_cmd_smoke)

    lint = sub.add_parser("lint", help="validate incident files (schema, timestamps in order, closed ones complete)")
    lint.add_argument("path", nargs="?", default=None, help="a file or folder (default: the incidents folder)")
    lint.set_defaults(handler=_cmd_lint)

    verify = sub.add_parser("verify", help="check an incident's exit criteria; --close closes it when all are met")
    verify.add_argument("incident", type=_incident_number, help="INC-0042 or the issue number")
    verify.add_argument("--close", action="store_true", help="resolve and close when met, else reopen and list")
    verify.set_defaults(handler=_cmd_verify)

    remind = sub.add_parser("remind", help="post due reminders (run every 30 minutes by a scheduled workflow)")
    remind.add_argument(
        "--watch-minutes",
        type=float,
        default=0,
        help="while a SEV-1 is open, keep checking for up to this many minutes (default: one pass)",
    )
    remind.add_argument("--interval", type=float, default=60, help="seconds between checks while watching")
    remind.set_defaults(handler=_cmd_remind)
    sweep = sub.add_parser(
        "sweep", help="apply what runs GitHub cancelled missed: untraced commands, unjudged closes (scheduled)"
    )
    sweep.set_defaults(handler=_cmd_sweep)

    report = sub.add_parser("report", help="build the static incident history site (HTML) from the incident files")
    report.add_argument("--out", default="site", help="directory to write the site into (default: site)")
    report.add_argument(
        "--incidents", default=None, help="folder of incident files (default: incidents_dir of incidentops.yaml)"
    )
    report.add_argument("--workspace", default=".", help="ops repository root, for templates/ (default: .)")
    report.set_defaults(handler=_cmd_report)

    doctor = sub.add_parser(
        "doctor",
        help="check the repository, GitHub and Cloudflare set-up: ✅/⚠️/❌ per check with the fix; reads only",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--workspace", default=".", help="the ops repository checkout (default: .)")
    doctor.set_defaults(handler=_cmd_doctor)

    demo = sub.add_parser("demo", help="run the incident playbook against the built-in sandbox, narrated")
    demo.add_argument("--seed", default=".", help="ops repository layout to seed the sandbox from (default: .)")
    demo.add_argument("--keep", metavar="DIR", help="keep the workspace and bare repository in DIR")
    demo.add_argument(
        "--via-actions",
        action="store_true",
        help="run each event through the real .github/workflows files with act, offline "
        "(in a loopback-only network namespace: needs root, unshare and ip)",
    )
    demo.set_defaults(handler=_cmd_demo)

    sandbox = sub.add_parser("sandbox", help="the emulated GitHub and Cloudflare used by the demo and tests")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SANDBOX_COMMAND")
    serve = sandbox_sub.add_parser("serve", help="serve the emulated world on 127.0.0.1 until interrupted")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except IncidentOpsError as err:
        print(f"::error::{_escape_annotation(str(err))}", flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in incidentops: say so plainly, keep the traceback for the report
        import traceback

        print(
            f"::error::incidentops failed unexpectedly ({type(exc).__name__}: {exc}). This is a bug in incidentops, "
            "not in your input; nothing after this point was done. Re-running the job is safe.",
            flush=True,
        )
        traceback.print_exc(file=sys.stderr)
        return EXIT_BUG


def _escape_annotation(message: str) -> str:
    # Workflow commands end at a newline; GitHub documents %-encoding for these characters.
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


if __name__ == "__main__":
    sys.exit(main())
