"""#15 item 3: a merged rollback PR deploys only what was approved.

The attacks, each against the sandbox (real git, emulated GitHub and Cloudflare over HTTP):
- someone with write access adds a commit to the bot's `rollback/INC-…` branch that re-pins ANOTHER service; a
  person with the apply role merges the PR as usual;
- that foreign pin, now on main, would ride along with the NEXT approved rollback;
- a triager puts the `rollback` label on an ordinary pull request that edits the ledger.
"""

from __future__ import annotations

from typing import Any

from incidentops.core.ledger import dump_ledger, load_ledger
from incidentops.flows.rollback import open_rollback_pr
from tests.flows.conftest import World
from tests.flows.test_rollback import declared, merge, version

LEDGER = "deployments/production.yaml"


def _repin(world: World, login: str, branch: str, service: str, pin: str, force: bool = False) -> None:
    """`login` commits a ledger change on `branch` through the contents API, as the GitHub web editor would."""
    repo = world.repo(login)
    current = repo.get_contents(LEDGER, ref=branch)
    doc = load_ledger(current.decoded_content.decode())
    doc["services"][service]["version"] = pin
    if force:
        doc["services"][service]["force"] = True
    repo.update_file(LEDGER, f"Pin {service}", dump_ledger(doc), current.sha, branch=branch)


def _rollback_pr(world: World, number: int, services: list[str]) -> Any:
    assert open_rollback_pr(None, world.ports(), number, services, "oncall-write").status == "planned"
    return next(p for p in world.repo().get_pulls(state="open") if p.head.ref == f"rollback/INC-{number:04d}")


def test_a_foreign_pin_on_the_bots_branch_is_not_deployed_now_or_with_the_next_rollback(world: World) -> None:
    ingest_before = world.live("ingest-worker")
    unverified = version("ingest-worker", 2)  # exists, deployable, never verified: not what the bot would pick
    number = declared(world, "api-worker")
    pr = _rollback_pr(world, number, ["api-worker"])
    _repin(world, "oncall-write", pr.head.ref, "ingest-worker", unverified)

    outcome = world.run(merge(world, pr.number, login="oncall-maintain"))
    assert world.live("api-worker") == version("api-worker", 2)  # the approved pin is deployed
    assert world.live("ingest-worker") == ingest_before  # the smuggled one is not
    assert outcome.exit_code == 1 and "not deployed: ingest-worker" in outcome.message
    review = next(c for c in world.comments(pr.number) if "incidentops:rollback-review" in c)
    assert "ingest-worker" in review and "not deployed" in review and "someone else" in review

    # The smuggled pin is on main now. The next approved rollback (another service) must not deploy it.
    assert f"version: {unverified}" in world.bare_file(LEDGER)
    second = declared(world, "user-portal")
    pr2 = _rollback_pr(world, second, ["user-portal"])
    outcome2 = world.run(merge(world, pr2.number, login="oncall-maintain"))
    assert world.live("ingest-worker") == ingest_before, outcome2.steps
    assert any(s.startswith("drift: ingest-worker") for s in outcome2.steps)
    assert "Drift" in next(c for c in world.comments(pr2.number) if "incidentops:rollback-review" in c)


def test_a_foreign_pin_is_deployed_on_an_override_role_merge_and_recorded(world: World) -> None:
    number = declared(world, "api-worker")
    pr = _rollback_pr(world, number, ["api-worker"])
    _repin(world, "oncall-write", pr.head.ref, "ingest-worker", version("ingest-worker", 2))
    outcome = world.run(merge(world, pr.number, login="oncall-admin"))  # admin holds rollback_override
    assert world.live("ingest-worker") == version("ingest-worker", 2)
    assert any(s.startswith("ingest-worker: approved") and "override" in s for s in outcome.steps)
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    assert "override" in text and "ingest-worker" in text


def test_a_rollback_label_on_someone_elses_pull_request_deploys_nothing(world: World) -> None:
    before = world.live("ingest-worker")
    repo = world.repo("oncall-write")
    main = repo.get_branch("main")
    repo.create_git_ref("refs/heads/tweak-ledger", main.commit.sha)
    _repin(world, "oncall-write", "tweak-ledger", "ingest-worker", version("ingest-worker", 2))
    pr = repo.create_pull(title="Tidy the ledger", body="", head="tweak-ledger", base="main")
    world.repo("triager").get_issue(pr.number).add_to_labels("rollback")
    outcome = world.run(merge(world, pr.number, login="oncall-admin"))
    assert outcome.status == "refused" and world.live("ingest-worker") == before
    assert any("not opened by incidentops" in c or "opened itself" in c for c in world.comments(pr.number))
