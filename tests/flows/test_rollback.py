"""Rollback plan and apply against the sandbox: ledger history in real git, emulated Cloudflare over HTTP."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from incidentops.core import incidentfile as f
from incidentops.core import rollback as core
from incidentops.core.ledger import load_ledger
from incidentops.flows.rollback import _gather_facts, apply_ledger, build_plan, open_rollback_pr
from incidentops.sandbox import world as seeded
from tests.flows.conftest import NOW, World, git

FORM_NO_ROLLBACK = (
    (Path(__file__).resolve().parents[1] / "fixtures/forms/full.md")
    .read_text()
    .replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")
)


def version(service: str, number: int) -> str:
    return seeded.stable_id(service, "version", str(number))


def declared(world: World, services: str = "api-worker") -> int:
    """An incident declared without the automatic rollback, for services of our choosing."""
    body = FORM_NO_ROLLBACK.replace("### Affected services\n\napi-worker", f"### Affected services\n\n{services}")
    number = world.open_incident(body=body)
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    return number


def fault(world: World, **spec: object) -> None:
    httpx.post(world.info["control_url"] + "/faults", json=spec).raise_for_status()


def cf_writes(world: World) -> list[dict]:
    log = httpx.get(world.info["control_url"] + "/requests").json()
    # Writes only: analytics queries are POSTs too, but they read.
    return [
        r for r in log if r["method"] == "POST" and r["path"].startswith("/client/v4") and "graphql" not in r["path"]
    ]


def merge(world: World, pr_number: int, login: str = "oncall-admin") -> dict:
    world.repo(login).get_pull(pr_number).merge(merge_method="merge")
    return world.next_event("pull_request", "closed")


ALL = "api-worker, ingest-worker, queue-consumer, admin-pages, user-portal"


def test_plan_picks_verified_ledger_pins_and_preflights_each_target(world: World) -> None:
    number = declared(world, ALL)
    plan, _, _ = build_plan(world.ports(), number, [])
    by = {s.service: s for s in plan.services}
    # Newest earlier verified pins from the ledger's git history:
    assert by["api-worker"].target == version("api-worker", 2)
    assert "last verified ledger pin" in by["api-worker"].why
    assert by["ingest-worker"].target == version("ingest-worker", 3)
    # queue-consumer's good version predates a secret rotation: refused until a person sets force.
    qc = by["queue-consumer"]
    assert qc.target == version("queue-consumer", 2) and not qc.ok
    assert "set `force: true`" in qc.preflight
    for pages in ("admin-pages", "user-portal"):
        assert by[pages].ok and by[pages].live == world.live(pages) and by[pages].target != by[pages].live
    assert {s.service for s in plan.actionable} == {"api-worker", "ingest-worker", "admin-pages", "user-portal"}


def test_a_pin_only_unverified_in_newer_commits_is_still_found_in_older_history(world: World) -> None:
    number = declared(world)
    ws = Path(world.workspace)
    git("pull", "-q", "origin", "main", cwd=ws)
    ledger = ws / "deployments/production.yaml"
    ledger.write_text(ledger.read_text().replace("set_by: carol", "set_by: erin"))  # a newer, unrelated edit
    subprocess.run(
        ["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "x"], check=True
    )
    git("push", "-q", "origin", "main", cwd=ws)
    planned = build_plan(world.ports(), number, ["api-worker"])[0].services[0]
    assert planned.target == version("api-worker", 2)


def test_unknown_service_is_a_clear_error(world: World) -> None:
    number = declared(world)
    from incidentops.errors import IncidentOpsError

    with pytest.raises(IncidentOpsError, match="unknown service"):
        build_plan(world.ports(), number, ["mainframe"])


def test_rollback_pr_once_then_merge_rolls_back_and_rerun_makes_no_write(world: World) -> None:
    number = declared(world, "api-worker, admin-pages")
    outcome = open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    assert outcome.status == "planned", outcome.message
    pulls = list(world.repo().get_pulls(state="open"))
    assert len(pulls) == 1
    pr = pulls[0]
    assert pr.head.ref == f"rollback/INC-{number:04d}"
    assert {label.name for label in pr.labels} >= {"rollback", "incident"}
    assert "| api-worker |" in pr.body and "preflight" in pr.body
    # The PR changes only the two pins (one-line diffs), nothing else in the ledger.
    diff = git(
        "diff",
        "main",
        f"rollback/INC-{number:04d}",
        "--",
        "deployments/production.yaml",
        cwd=Path(world.info["bare_repo"]),
    )
    changed = [line for line in diff.split("\n") if line.startswith(("+ ", "- ", "+  ", "-  "))]
    assert sum(1 for line in changed if "version:" in line) == 4
    # Asking twice gives the same PR.
    again = open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    assert again.status == "unchanged" and f"#{pr.number}" in again.message
    assert len(list(world.repo().get_pulls(state="open"))) == 1

    before = {s: world.live(s) for s in ("api-worker", "admin-pages")}
    result = world.run(merge(world, pr.number), now=NOW + timedelta(minutes=20))
    assert result.status == "rolled-back", result.message
    assert world.live("api-worker") == version("api-worker", 2) != before["api-worker"]
    assert world.live("admin-pages") != before["admin-pages"] and world.sandbox.cloudflare.is_good("admin-pages")
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    rollback = f.read_fields(text)["rollback"]
    assert rollback["pr"] == pr.number
    assert rollback["services"]["api-worker"]["status"] == "done"
    rows = [r for r in f.timeline_rows(text) if r[2].startswith("Rollback api-worker")]
    assert rows and "POST /accounts/" in rows[0][3] and "/deployments" in rows[0][3]
    rollback_section = text.split("## Rollback\n", 1)[1].split("\n## ", 1)[0]
    assert (
        f"| api-worker | `{before['api-worker'][:8]}` | `{version('api-worker', 2)[:8]}` | done |" in rollback_section
    )

    writes = len(cf_writes(world))
    rerun = world.run(world.next_event("pull_request", "closed"), now=NOW + timedelta(minutes=25))
    assert rerun.status == "unchanged"
    assert len(cf_writes(world)) == writes  # no deployment created by the re-run


def test_partial_failure_then_rerun_converges(world: World) -> None:
    number = declared(world, "api-worker, ingest-worker, user-portal")
    open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    pr = next(iter(world.repo().get_pulls(state="open")))
    delivery = merge(world, pr.number)
    fault(world, method="POST", path="/ingest-worker/deployments", status=500, count=None)
    first = world.run(delivery)
    assert first.status == "failed" and first.exit_code == 1
    assert "ingest-worker failed" in first.message and "Re-run" in first.message
    assert world.live("api-worker") == version("api-worker", 2)  # the others still finished
    status = f.read_fields(world.bare_file(f"incidents/INC-{number:04d}.md"))["rollback"]["services"]
    assert status["ingest-worker"]["status"] == "failed" and status["api-worker"]["status"] == "done"

    httpx.delete(world.info["control_url"] + "/faults")
    posts_before = len(cf_writes(world))
    second = world.run(delivery, now=NOW + timedelta(minutes=1))
    assert second.status == "rolled-back" and "ingest-worker" in second.message
    new_posts = cf_writes(world)[posts_before:]
    assert [p["path"].split("/")[-2] for p in new_posts] == ["ingest-worker"]  # only what was still off
    status = f.read_fields(world.bare_file(f"incidents/INC-{number:04d}.md"))["rollback"]["services"]
    assert status["ingest-worker"]["status"] == "done"


def test_ambiguous_deploy_is_reread_not_blindly_reposted(world: World) -> None:
    number = declared(world)
    open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    pr = next(iter(world.repo().get_pulls(state="open")))
    delivery = merge(world, pr.number)
    # The deployment lands but its answer is lost: the connection drops after the server acted.
    fault(world, method="POST", path="/api-worker/deployments$", drop_response=True, count=1)
    outcome = world.run(delivery)
    assert outcome.status == "rolled-back", outcome.message
    api_posts = [p for p in cf_writes(world) if "/api-worker/deployments" in p["path"]]
    assert len(api_posts) == 1  # confirmed by re-reading, not posted twice
    assert any("confirmed by re-reading" in step for step in outcome.steps), outcome.steps
    assert world.live("api-worker") == version("api-worker", 2)


def test_merge_by_someone_below_rollback_apply_is_refused(world: World) -> None:
    number = declared(world)
    open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    pr = next(iter(world.repo().get_pulls(state="open")))
    live = world.live("api-worker")
    outcome = world.run(merge(world, pr.number, login="oncall-write"))  # write < maintain
    assert outcome.status == "refused"
    assert world.live("api-worker") == live and cf_writes(world) == []
    assert "needs at least the **maintain** role" in list(world.repo().get_issue(pr.number).get_comments())[-1].body


def test_force_set_by_a_person_unblocks_the_secret_change_case(world: World) -> None:
    number = declared(world, "queue-consumer")
    blocked = open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    assert blocked.status == "refused" and "force: true" in blocked.message
    ws = Path(world.workspace)
    git("pull", "-q", "origin", "main", cwd=ws)
    ledger = ws / "deployments/production.yaml"
    doc_text = ledger.read_text()
    doc_text = doc_text.replace(
        "  queue-consumer:\n    kind: worker\n", "  queue-consumer:\n    kind: worker\n    force: true\n"
    )
    ledger.write_text(doc_text)
    assert load_ledger(doc_text)["services"]["queue-consumer"]["force"] is True
    subprocess.run(
        ["git", "-C", str(ws), "-c", "user.name=p", "-c", "user.email=p@x", "commit", "-qam", "force"], check=True
    )
    git("push", "-q", "origin", "main", cwd=ws)
    planned = open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    assert planned.status == "planned", planned.message
    pr = next(iter(world.repo().get_pulls(state="open")))
    result = world.run(merge(world, pr.number))
    assert result.status == "rolled-back", result.message
    assert world.live("queue-consumer") == version("queue-consumer", 2)
    assert any("force=true" in p["query"] for p in cf_writes(world) if "queue-consumer" in p["path"])


def test_apply_by_hand_matches_the_merge_path(world: World) -> None:
    number = declared(world)
    open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    pr = next(iter(world.repo().get_pulls(state="open")))
    world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
    outcome = apply_ledger(world.ports(), number, "oncall-admin", "manual-1")
    assert outcome.status == "rolled-back"
    assert world.live("api-worker") == version("api-worker", 2)


def test_rollback_comment_opens_the_pr_and_a_reader_is_refused(world: World) -> None:
    number = declared(world, "api-worker, user-portal")
    world.repo("reader").get_issue(number).create_comment("/rollback api-worker")
    refused = world.run(world.next_event("issue_comment", "created"))
    assert refused.status == "refused" and list(world.repo().get_pulls(state="open")) == []
    world.repo("oncall-write").get_issue(number).create_comment("/rollback api-worker")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "planned", outcome.message
    pr = next(iter(world.repo().get_pulls(state="open")))
    assert "| api-worker |" in pr.body and "| user-portal |" not in pr.body


def test_an_architecture_significant_rollback_pr_commits_its_adr_with_the_timeline(world: World) -> None:
    number = declared(world)
    open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    pr = next(iter(world.repo().get_pulls(state="open")))
    world.repo("oncall-admin").get_issue(pr.number).add_to_labels("architecture-significant")
    outcome = world.run(merge(world, pr.number))
    assert outcome.status == "rolled-back", outcome.message
    bare = Path(world.info["bare_repo"])
    last = git("log", "-1", "--grep", "rollback applied", "--stat", "--format=%s", "main", cwd=bare)
    assert last.startswith(f"INC-{number:04d}: rollback applied") and "docs/adrs/0005-" in last
    assert f"incidents/INC-{number:04d}.md" in last  # one commit: the ADR stub and the timeline rows
    adr = git("show", "main:" + next(p for p in last.split() if p.startswith("docs/adrs/0005-")), cwd=bare)
    assert f"INC-{number:04d}" in adr and "api-worker" in adr


# -- targets from Cloudflare's real lists (issue #13) ---------------------------------------------------------


def test_a_pages_target_is_found_past_pages_of_preview_builds(world: World) -> None:
    emulator = world.sandbox.cloudflare
    emulator.add_pages_deployments("admin-pages", 120)  # a busy preview branch: 5 pages of 25 newer than the pin
    emulator.add_pages_deployments("admin-pages", environment="production", skipped=True)
    number = declared(world, "admin-pages")
    plan, _, _ = build_plan(world.ports(), number, [])
    (item,) = plan.services
    assert item.target == seeded.seed().good_target("admin-pages") and item.ok, (item.why, item.preflight)
    log = httpx.get(world.info["control_url"] + "/requests").json()
    lists = [r["query"] for r in log if r["path"].endswith("/pages/projects/admin-pages/deployments")]
    assert lists and all("env=production" in q and "per_page=25" in q for q in lists)


def _worker_facts(world: World, service: str) -> core.WorkerFacts:
    async def gather() -> dict:
        return await _gather_facts(world.cloudflare(seeded.ACCOUNT_ID), world.ports(), [service])

    return asyncio.run(gather())[service]


def test_workers_fallback_reads_the_versions_list_past_the_10_listed_deployments(world: World) -> None:
    emulator = world.sandbox.cloudflare
    live = world.live("ingest-worker")
    emulator.deploy_versions("ingest-worker", [live] * 11)  # re-deploys of the bad build push out the history
    facts = _worker_facts(world, "ingest-worker")
    assert len(facts.deployments) == 10 and {v for _, v in facts.deployments} == {live}
    # No verified pin reachable (e.g. a ledger without history): the fallback decides.
    item = core.plan_worker("ingest-worker", facts, [], None)
    assert item.target == version("ingest-worker", 3) and "versions list" in item.why and item.ok


def test_the_fallback_never_picks_a_secret_triggered_deployment_of_bad_code(world: World) -> None:
    emulator = world.sandbox.cloudflare
    for _ in range(11):
        emulator.rotate_secret("queue-consumer", ("QUEUE_SIGNING_KEY",))
    facts = _worker_facts(world, "queue-consumer")
    assert all(trigger == "secret" for trigger in facts.deployment_triggers)
    item = core.plan_worker("queue-consumer", facts, [], None)
    # v3 is the bad code every rotation re-deployed; v2 is the code before it.
    assert item.target == version("queue-consumer", 2)
    assert [c.name for c in item.checks if not c.ok] == ["secrets"]  # and it still needs a person's force
