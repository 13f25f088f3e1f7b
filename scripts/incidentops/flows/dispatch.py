"""Route a GitHub Actions event to its flow: the entry point of `handle-event`, on top of every other flow."""

from __future__ import annotations

from collections.abc import Mapping

from incidentops.core import incidentfile as f
from incidentops.core.events import Event, load_event
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome, Ports
from incidentops.flows.commands import on_comment
from incidentops.flows.contain import contain_on_declare
from incidentops.flows.declare import declare
from incidentops.flows.reconcile import reconcile
from incidentops.flows.rollback import on_pull_request_closed, open_rollback_pr
from incidentops.flows.verify import blast_radius, on_issue_closed
from incidentops.wiring import ports_from_env


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
    return outcome


def handle(event: Event, ports: Ports) -> Outcome:
    """Run the flow for this event, or say plainly why there is none."""
    # Every run on an incident issue also repairs what cancelled runs missed (flows/reconcile.py): a close is
    # judged after the commands and labels that came before it; the other events are handled first.
    if event.name == "issues" and event.action == "labeled":
        outcome = _after_declare(event, ports, _contain_and_measure(event, ports, declare(event, ports)))
        if outcome.status != "declared":  # a new incident has nothing earlier to repair
            outcome.steps += reconcile(event, ports)
        return outcome
    if event.name == "issues" and event.action == "closed":
        repaired = reconcile(event, ports, include_close=False)
        outcome = on_issue_closed(event, ports)
        outcome.steps[:0] = repaired
        return outcome
    if event.name == "issue_comment":
        outcome = on_comment(event, ports)
        if not outcome.message.startswith("not for us: #"):
            outcome.steps += reconcile(event, ports)
        return outcome
    if event.name == "pull_request" and event.action == "closed":
        return on_pull_request_closed(event, ports)
    return Outcome("skipped", f"not for us: no flow handles {event.name}.{event.action or '?'} yet")


def handle_from_env(env: Mapping[str, str]) -> tuple[Event, Outcome]:
    event = load_event(env.get("GITHUB_EVENT_NAME"), env.get("GITHUB_EVENT_PATH"))
    return event, handle(event, ports_from_env(env))
