"""Route a GitHub Actions event to its flow: the entry point of `handle-event`, on top of every other flow."""

from __future__ import annotations

from collections.abc import Mapping

from incidentops.core import incidentfile as f
from incidentops.core.commands import find_command
from incidentops.core.events import Event, load_event
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome, Ports
from incidentops.flows.reconcile import reconcile
from incidentops.wiring import ports_from_env

# Each event imports the flows it runs, when it runs them: a comment does not load the rollback flow, a merge does
# not load the command table (benchmarks/startup.py measures each path's imports).


def _partial(outcome: Outcome, what: str) -> None:
    """A declaration whose automatic follow-through failed is not green: the job fails and says what is missing."""
    outcome.exit_code = 1
    outcome.level = "error"
    outcome.message += f"; but {what} (see the steps)"


def _after_declare(event: Event, ports: Ports, outcome: Outcome) -> Outcome:
    """A declaration that suspects a deploy regression also opens the rollback PR (never failing the declare)."""
    if outcome.status != "declared" or event.issue is None or not outcome.path:
        return outcome
    fields = f.read_fields(ports.git.read(outcome.path) or "")
    if not fields.get("deploy_regression_suspected"):
        return outcome
    from incidentops.flows.rollback import open_rollback_pr

    role = ports.github.role_of(event.sender)
    if not ports.config.allows("rollback_plan", role):
        outcome.steps.append(
            f"rollback PR not opened: @{event.sender} has role {role}, rollback_plan needs "
            f"{ports.config.permissions['rollback_plan']} (someone with it can comment /rollback)"
        )
        return outcome
    try:
        planned = open_rollback_pr(event, ports, event.issue.number, [], event.sender)
    except IncidentOpsError as err:
        outcome.steps.append(f"rollback PR not opened: {err} (comment /rollback to try again)")
        _partial(outcome, "the rollback PR could not be opened")
        return outcome
    outcome.steps.append(planned.message)
    outcome.steps.extend(planned.steps)
    return outcome


def _contain_and_measure(event: Event, ports: Ports, outcome: Outcome) -> Outcome:
    """Right after declaring: protect tenant data first (containment), then size the blast radius."""
    if outcome.status != "declared" or event.issue is None:
        return outcome
    from incidentops.flows.contain import contain_on_declare
    from incidentops.flows.verify import blast_radius, not_measured_lines

    contained = contain_on_declare(event, ports, event.issue.number)  # never raises
    if contained.status != "skipped" or contained.level == "warning":
        outcome.steps += [contained.message, *contained.steps]
        if contained.level in ("warning", "error"):
            outcome.level = "warning"
    if contained.status == "failed" or contained.exit_code:
        _partial(outcome, "containment failed")
    try:
        measured = blast_radius(ports, event.issue.number)
    except IncidentOpsError as err:
        measured = {"error": f"blast radius not measured: {err}"}
    if measured.get("error"):
        outcome.steps.append(str(measured["error"]))
    else:
        outcome.steps.append(
            f"blast radius: {measured['requests']} requests, {measured['errors']} errors since {measured['since']}"
        )
        outcome.steps += [f"blast radius {line}" for line in not_measured_lines(measured)]
    return outcome


def handle(event: Event, ports: Ports) -> Outcome:
    """Run the flow for this event, or say plainly why there is none."""
    # Every run on an incident issue also repairs what cancelled runs missed (flows/reconcile.py): a close is
    # judged after the commands and labels that came before it; the other events are handled first.
    if event.name == "issues" and event.action == "labeled":
        from incidentops.flows.declare import declare

        outcome = _after_declare(event, ports, _contain_and_measure(event, ports, declare(event, ports)))
        if outcome.status != "declared":  # a new incident has nothing earlier to repair
            outcome.steps += reconcile(event, ports)
        return outcome
    if event.name == "issues" and event.action == "closed":
        from incidentops.flows.verify import on_issue_closed

        repaired = reconcile(event, ports, include_close=False)
        outcome = on_issue_closed(event, ports)
        outcome.steps[:0] = repaired
        return outcome
    if event.name == "issue_comment":
        from incidentops.flows.commands import on_comment

        outcome = on_comment(event, ports)
        if not outcome.message.startswith("not for us: #"):
            outcome.steps += reconcile(event, ports)
        return outcome
    if event.name == "pull_request" and event.action == "closed":
        from incidentops.flows.rollback import on_pull_request_closed

        return on_pull_request_closed(event, ports)
    return Outcome("skipped", f"not for us: no flow handles {event.name}.{event.action or '?'} yet")


def handle_from_env(env: Mapping[str, str]) -> tuple[Event, Outcome]:
    event = load_event(env.get("GITHUB_EVENT_NAME"), env.get("GITHUB_EVENT_PATH"))
    return event, handle(event, ports_from_env(env))


# -- the unprivileged gate -------------------------------------------------------------------------------

SKIP, RECORD, PRODUCTION = "skip", "record", "production"


def gate(event: Event, ports: Ports) -> Outcome:
    """Decide, with a read-only token and no secrets, which job (if any) handles this event.

    `production`: an authorized command or event that needs Cloudflare and the smoke credentials; `record`: one that
    needs only the repository (notes, roles, refusals, help); `skip`: nothing for us. The privileged job re-checks
    everything; this only keeps secrets away from runs that cannot use them.
    """

    def decided(decision: str, why: str) -> Outcome:
        return Outcome(decision, f"gate: {decision}: {why}", details={"decision": decision})

    if event.sender_is_bot:
        return decided(SKIP, f"sent by a bot ({event.sender})")
    if event.name == "issues" and event.action in ("labeled", "closed"):
        action = ("declare", "escalate") if event.action == "labeled" else ("resolve",)
        if event.action == "labeled" and event.label not in ports.config.severities:
            return decided(SKIP, f"label {event.label!r} is not a severity label")
        role = ports.github.role_of(event.sender)
        if all(ports.config.allows(a, role) for a in action):
            return decided(PRODUCTION, f"@{event.sender} ({role}) may {'/'.join(action)}")
        return decided(RECORD, f"@{event.sender} ({role}) may not {'/'.join(action)}: refusal only")
    if event.name != "issue_comment" or event.action != "created" or event.issue is None:
        return decided(SKIP, f"no flow handles {event.name}.{event.action or '?'}")
    if event.issue.is_pull_request:
        return decided(SKIP, "a comment on a pull request")
    found = find_command(event.comment_body or "")
    if found is None:
        return decided(SKIP, "the comment has no /command")
    from incidentops.flows.commands import COMMANDS, PRODUCTION_COMMANDS

    command = COMMANDS.get(found[0])
    role = ports.github.role_of(event.sender)
    if command is None or not command.action:
        if not any(ports.config.allows(action, role) for action in ports.config.permissions):
            return decided(SKIP, f"@{event.sender} ({role}) holds no role that may run a command: no reply")
        return decided(RECORD, f"/{found[0]}: help reply")
    if not ports.config.allows(command.action, role):
        return decided(RECORD, f"@{event.sender} ({role}) may not {command.action}: refusal only")
    if found[0] in PRODUCTION_COMMANDS:
        return decided(PRODUCTION, f"/{found[0]} by @{event.sender} ({role})")
    return decided(RECORD, f"/{found[0]} by @{event.sender} ({role})")


def gate_from_env(env: Mapping[str, str]) -> Outcome:
    event = load_event(env.get("GITHUB_EVENT_NAME"), env.get("GITHUB_EVENT_PATH"))
    return gate(event, ports_from_env(env))
