"""The declare flow against the sandbox: real HTTP (PyGithub), real git, events as GitHub records them."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

from incidentops.config import parse_config
from incidentops.core import incidentfile as f
from tests.flows.conftest import FORM_BODY, NOW, ROOT, World, git

# Containment and rollback on declaration have their own tests (tests/contain, test_rollback.py).
NO_ROLLBACK = FORM_BODY.replace(
    "- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected"
).replace("- [x] Tenant isolation is at risk", "- [ ] Tenant isolation is at risk")


def declare(world: World, label: str = "sev-1", login: str = "oncall-write", **issue_kw: object) -> int:
    issue_kw.setdefault("body", NO_ROLLBACK)
    number = world.open_incident(**issue_kw)  # type: ignore[arg-type]
    world.label(number, label, login)
    return number


def test_sev1_label_declares_an_incident_file_commit_label_and_one_comment(world: World) -> None:
    number = declare(world)
    outcome = world.run(world.next_event("issues", "labeled"))

    assert outcome.status == "declared", outcome.message
    path = f"incidents/INC-{number:04d}.md"
    text = world.bare_file(path)
    fields = f.read_fields(text)
    assert fields["id"] == f"INC-{number:04d}" and fields["severity"] == "SEV-1"
    assert fields["commander"] == "oncall-write"  # no assignee: the person who labelled
    assert fields["comms_owner"] is None
    assert fields["started_at"] == "2026-11-27T03:12:09Z" and fields["declared_at"] == "2026-11-27T03:14:40Z"
    assert fields["impact"]["routes"] == ["/v1/reports"] and fields["impact"]["tenants"] == ["t-100", "t-200"]
    assert fields["tenant_isolation_risk"] is False and fields["deploy_regression_suspected"] is False
    assert any("Declared SEV-1" in row[2] for row in f.timeline_rows(text))
    assert world.bare_log(path)[-1] == f"INC-{number:04d}: declare SEV-1 (@oncall-write, #{number})"
    assert "measured" in fields["impact"] or "blast radius" in world.bare_log(path)[0]

    labels = {label.name for label in world.repo().get_issue(number).get_labels()}
    assert {"sev-1", "incident"} <= labels
    comments = world.comments(number)
    assert len(comments) == 1
    body = comments[0]
    assert f"INC-{number:04d}" in body and "SEV-1" in body and "@oncall-write" in body
    assert f"/acme/ops/blob/main/{path}" in body
    assert "- [x] Capture incident start time" in body  # the form answered it
    assert "- [ ] Assign incident commander and communications owner" in body  # comms owner unassigned
    assert world.violations() == []


def test_assignee_becomes_commander(world: World) -> None:
    number = declare(world, assignees=["oncall-admin"])
    world.run(world.next_event("issues", "labeled"))
    assert f.read_fields(world.bare_file(f"incidents/INC-{number:04d}.md"))["commander"] == "oncall-admin"


def test_the_same_event_delivered_twice_changes_nothing_and_posts_nothing(world: World) -> None:
    declare(world)
    delivery = world.next_event("issues", "labeled")
    world.run(delivery)
    writes_before = len(world.writes())
    log_before = world.bare_log()

    again = world.run(delivery, now=NOW + timedelta(minutes=3))

    assert again.status == "unchanged"
    assert world.bare_log() == log_before
    assert len(world.writes()) == writes_before  # no comment, no label, no commit


def test_escalation_updates_the_same_incident_and_posts_one_comment(world: World) -> None:
    number = declare(world, label="sev-2")
    world.run(world.next_event("issues", "labeled"))
    world.label(number, "sev-1")
    outcome = world.run(world.next_event("issues", "labeled"), now=NOW + timedelta(minutes=10))

    assert outcome.status == "escalated"
    path = f"incidents/INC-{number:04d}.md"
    text = world.bare_file(path)
    assert f.read_fields(text)["severity"] == "SEV-1"
    assert f.read_fields(text)["escalations"] == [
        {"from": "SEV-2", "to": "SEV-1", "at": "2026-11-27T03:24:40Z", "by": "oncall-write"}
    ]
    assert any("Escalated SEV-2 → SEV-1" in row[2] for row in f.timeline_rows(text))
    assert len(list((Path(world.workspace) / "incidents").glob("INC-*.md"))) == 1
    comments = world.comments(number)
    assert len(comments) == 2 and "escalated: SEV-2 → SEV-1" in comments[1]
    # Replaying the escalation is a no-op too.
    writes = len(world.writes())
    assert world.run(world.next_event("issues", "labeled")).status == "unchanged"
    assert len(world.writes()) == writes


def test_missing_and_malformed_fields_still_declare_and_are_listed(world: World) -> None:
    body = "### Summary\n\n_No response_\n\n### Start time (UTC)\n\nsoon\n\n### Affected services\n\nmainframe\n"
    number = declare(world, body=body)
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "declared"
    fields = f.read_fields(world.bare_file(f"incidents/INC-{number:04d}.md"))
    assert fields["started_at"] == "unknown" and fields["environment"] == "unknown"
    assert fields["impact"]["routes"] == "unknown"
    assert "Summary" in fields["unknown_fields"]
    comment = world.comments(number)[0]
    assert "Not answered by the form" in comment and "Tenant IDs" in comment
    assert "soon" in comment and "mainframe" in comment  # what could not be read, quoted


def test_someone_below_the_configured_role_gets_a_refusal_and_nothing_is_written(world: World) -> None:
    strict = parse_config({**_shipped(), "permissions": {**_shipped()["permissions"], "declare": "maintain"}})
    world.config_override = strict
    number = declare(world, login="oncall-write")
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "refused"
    assert world.bare_log() == []
    comments = world.comments(number)
    assert len(comments) == 1 and "needs at least the **maintain** role" in comments[0]
    assert "incident" not in {label.name for label in world.repo().get_issue(number).get_labels()}


def test_events_that_are_not_for_us_exit_quietly(world: World) -> None:
    number = declare(world, label="bug")
    assert "not a severity label" in world.run(world.next_event("issues", "labeled")).message
    # A bot adding a severity label (e.g. our own token) does not declare.
    world.label(number, "sev-1", login=world.info["actions_token"])
    assert "bot" in world.run(world.next_event("issues", "labeled")).message
    assert world.bare_log() == [] and world.comments(number) == []


def test_a_push_rejected_twice_lands_on_the_third_attempt_without_losing_others_commits(world: World) -> None:
    bare = Path(world.info["bare_repo"])
    hook = bare / "hooks" / "pre-receive"
    # Each of the first two pushes loses a race: someone else's commit lands on main first.
    hook.write_text(
        """#!/bin/sh
count_file="$GIT_DIR/race-count"
n=$(cat "$count_file" 2>/dev/null || echo 0)
if [ "$n" -lt 2 ]; then
  # Step out of the push's object quarantine so the competing commit really lands.
  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  echo $((n + 1)) > "$count_file"
  tree=$(git rev-parse main^{tree})
  parent=$(git rev-parse main)
  c=$(GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=o@x \\
      git commit-tree "$tree" -p "$parent" -m "someone else's change $n")
  git update-ref refs/heads/main "$c" "$parent"
  echo "simulated race: main moved" >&2
  exit 1
fi
"""
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    number = declare(world)
    ports = world.ports()
    from incidentops.core.events import parse_event
    from incidentops.flows.declare import declare as run_declare

    delivery = world.next_event("issues", "labeled")
    outcome = run_declare(parse_event("issues", delivery["payload"]), ports)
    assert outcome.status == "declared"
    assert any("push attempt 3" in step for step in outcome.steps)
    subjects = git("log", "--format=%s", "main", cwd=bare).split("\n")
    assert subjects[0].startswith(f"INC-{number:04d}: declare")
    assert subjects[1:3] == ["someone else's change 1", "someone else's change 0"], subjects
    merges = git("rev-list", "--merges", "main", cwd=bare).strip()
    assert merges == ""  # history stays linear
    os.remove(hook)


def _shipped() -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load((ROOT / "incidentops.yaml").read_text())


def test_a_suspected_deploy_regression_also_opens_the_rollback_pr(world: World) -> None:
    number = declare(world, body=FORM_BODY)
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "declared"
    assert any("rollback PR #" in step for step in outcome.steps), outcome.steps
    pulls = list(world.repo().get_pulls(state="open"))
    assert [p.head.ref for p in pulls] == [f"rollback/INC-{number:04d}"]
    comments = world.comments(number)  # declared, route contained (tenant isolation at risk), rollback PR
    assert len(comments) == 3 and "Rollback PR" in comments[2]
