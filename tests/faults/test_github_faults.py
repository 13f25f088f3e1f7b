"""GitHub answering 5xx, losing answers and rate-limiting: reads are retried, writes are looked up before re-posting.

Each test drives the real declare flow (PyGithub over HTTP to the sandbox, real git) with faults injected into the
sandbox, then checks the state GitHub and the bare repository end up in: one incident file, one label, one comment.
"""

from __future__ import annotations

from typing import Any

import pytest

from incidentops.adapters.github import GitHubClient
from incidentops.errors import ApiError
from incidentops.flows.rollback import open_rollback_pr
from tests.faults.common import SECONDARY_RATE_LIMIT, labelled, path_of, run_declare
from tests.faults.conftest import Faults, Tally
from tests.flows.conftest import World

REPO = "/api/v3/repos/acme/ops"


def declaration_comments(world: World, number: int) -> list[str]:
    return [body for body in world.comments(number) if f"incidentops:declared:INC-{number:04d}" in body]


def labels(world: World, number: int) -> list[str]:
    return [label.name for label in world.repo().get_issue(number).get_labels()]


def statuses(faults: Faults, method: str, pattern: str) -> list[int]:
    return [r["status"] for r in faults.hits(method, pattern)]


def assert_declared_once(world: World, number: int) -> None:
    assert world.bare_log(path_of(number)) == [f"INC-{number:04d}: declare SEV-1 (@oncall-write, #{number})"]
    assert labels(world, number).count("incident") == 1
    assert len(declaration_comments(world, number)) == 1, world.comments(number)
    assert world.violations() == []


def test_reads_answering_5xx_are_retried_and_the_declaration_completes(
    world: World, faults: Faults, tally: Tally
) -> None:
    number, delivery = labelled(world)
    # A new declaration reads two things: the sender's permission and the comments (for its marker); it adds the
    # incident label without reading the labels first (adding one that is there changes nothing).
    permission = r"/collaborators/oncall-write/permission$"
    comment_list = rf"/issues/{number}/comments$"
    faults.add(method="GET", path=permission, status=502, count=1)
    faults.add(method="GET", path=comment_list, status=500, count=2)

    outcome = run_declare(delivery, world.ports(retries=3))

    assert outcome.status == "declared", outcome.message
    assert statuses(faults, "GET", permission)[:2] == [502, 200]
    assert statuses(faults, "GET", comment_list)[:3] == [500, 500, 200]
    assert_declared_once(world, number)
    tally("GitHub 5xx on reads (GET)", injected=faults.fired(), outcome="retried by GithubRetry; declared once")


def test_reads_failing_for_good_stop_with_a_clear_error_and_a_rerun_finishes(
    world: World, faults: Faults, tally: Tally
) -> None:
    number, delivery = labelled(world)
    comment_list = rf"/issues/{number}/comments$"
    faults.add(method="GET", path=comment_list, status=502, count=None)

    with pytest.raises(ApiError) as stopped:
        run_declare(delivery, world.ports(retries=1))

    text = str(stopped.value)
    assert f"reading comments of #{number} failed: gave up after retries" in text
    assert "re-running the job is safe" in text
    injected = faults.fired()
    assert statuses(faults, "GET", comment_list).count(502) == injected
    faults.clear()
    # What was done before the outage is kept; what was not is simply not there yet.
    assert world.bare_log(path_of(number)) == [f"INC-{number:04d}: declare SEV-1 (@oncall-write, #{number})"]
    assert declaration_comments(world, number) == []

    again = run_declare(delivery, world.ports(retries=1))
    assert again.status == "unchanged" and "already applied" in again.message
    assert_declared_once(world, number)
    tally("GitHub 5xx on reads, never recovering", injected=injected, outcome="clear error; re-run converged")


COMMENT_FAULTS: dict[str, dict[str, Any]] = {
    "502 before it was created": {"status": 502, "count": 1},
    "503 twice in a row": {"status": 503, "count": 2},
    "created, answer lost": {"drop_response": True, "count": 1},
    "connection dropped before it was created": {"drop": True, "count": 1},
}


@pytest.mark.parametrize("kind", list(COMMENT_FAULTS))
def test_a_failed_comment_post_is_looked_up_before_it_is_posted_again(
    world: World, faults: Faults, tally: Tally, kind: str
) -> None:
    number, delivery = labelled(world)
    post = rf"/issues/{number}/comments$"
    faults.add(method="POST", path=post, **COMMENT_FAULTS[kind])

    outcome = run_declare(delivery, world.ports(retries=3))

    assert outcome.status == "declared", outcome.message
    assert_declared_once(world, number)
    handled = faults.hits("POST", post)  # `drop` closes before handling, so it never reaches the log
    assert [r["status"] for r in handled].count(201) == 1
    tally(
        f"GitHub comment POST: {kind}",
        injected=faults.fired(),
        outcome="looked up, exactly one comment",
        posts_handled=len(handled),
    )


def test_a_comment_post_failing_for_good_stops_clearly_and_posts_nothing_twice(
    world: World, faults: Faults, tally: Tally
) -> None:
    number, delivery = labelled(world)
    post = rf"/issues/{number}/comments$"
    faults.add(method="POST", path=post, status=502, count=None)

    with pytest.raises(ApiError) as stopped:
        run_declare(delivery, world.ports(retries=3))

    assert f"commenting on #{number} failed: HTTP 502" in str(stopped.value)
    tried = faults.fired()
    assert tried == len(faults.hits("POST", post)) == 3  # the write is attempted three times, each after a look-up
    faults.clear()
    assert world.bare_log(path_of(number)) and "incident" in labels(world, number)
    assert declaration_comments(world, number) == []

    assert run_declare(delivery, world.ports(retries=3)).status == "unchanged"
    assert_declared_once(world, number)
    tally("GitHub comment POST 502 forever", injected=tried, outcome="clear error after 3 attempts; re-run converged")


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_rate_limits_on_reads_and_writes_are_waited_out(
    world: World, faults: Faults, tally: Tally, status: int
) -> None:
    number, delivery = labelled(world)
    permission = r"/collaborators/oncall-write/permission$"
    add_label = rf"/issues/{number}/labels$"
    post = rf"/issues/{number}/comments$"
    limited = {"status": status, "retry_after": 1, "body": SECONDARY_RATE_LIMIT, "count": 1}
    on_read = faults.add(method="GET", path=permission, **limited)
    on_writes = (faults.add(method="POST", path=add_label, **limited), faults.add(method="POST", path=post, **limited))
    waits: list[float] = []
    ports = world.ports(retries=3)
    ports.github.sleep = waits.append  # the flow's own back-off between write attempts, recorded
    since = len(faults.requests())

    outcome = run_declare(delivery, ports)

    assert outcome.status == "declared", outcome.message
    assert_declared_once(world, number)
    reads = faults.hits("GET", permission, since)
    assert [r["status"] for r in reads[:2]] == [status, 200]
    assert reads[1]["at"] - reads[0]["at"] >= 1.0  # PyGithub's retry honoured Retry-After: 1
    assert [r["status"] for r in faults.hits("POST", post, since)] == [status, 201]
    assert [r["status"] for r in faults.hits("POST", add_label, since)] == [status, 200]
    assert len(waits) == 2 and all(wait >= 1.0 for wait in waits), waits
    read_hits, write_hits = faults.fired(on_read), faults.fired(*on_writes)
    tally(
        f"GitHub secondary rate limit {status} + Retry-After: 1 on a read", read_hits, "waited, retried, declared once"
    )
    tally(
        f"GitHub secondary rate limit {status} + Retry-After: 1 on writes", write_hits, "waited, looked up, one comment"
    )


def test_a_rate_limited_write_waits_at_least_what_retry_after_asks(world: World, faults: Faults, tally: Tally) -> None:
    number, delivery = labelled(world)
    assert run_declare(delivery, world.ports()).status == "declared"
    waits: list[float] = []
    client = GitHubClient(
        token=world.info["actions_token"],
        repository=world.info["repository"],
        api_url=world.info["github_api_url"],
        retries=0,
        sleep=waits.append,
    )
    faults.add(method="POST", path=rf"/issues/{number}/comments$", status=403, retry_after=7, body=SECONDARY_RATE_LIMIT)
    posted = client.post_comment_once(number, "<!-- faults:retry-after -->", "hello")
    assert posted.created
    tally("GitHub 403 + Retry-After: 7 on a write", faults.fired(), f"posted once; waited {waits} s before retrying")
    assert waits and waits[0] >= 7, waits


def test_every_github_create_survives_a_lost_answer(world: World, faults: Faults, tally: Tally) -> None:
    """Label, pull request and follow-up issue: the object is created, the answer lost; none is made twice."""
    number, delivery = labelled(world)
    faults.add(method="POST", path=rf"/issues/{number}/labels$", drop_response=True, count=1)
    assert run_declare(delivery, world.ports(retries=3)).status == "declared"
    assert_declared_once(world, number)

    faults.add(method="POST", path=r"/repos/acme/ops/pulls$", drop_response=True, count=1)
    planned = open_rollback_pr(None, world.ports(retries=3), number, ["api-worker"], "oncall-write")
    assert planned.status == "planned", planned.message
    assert len(list(world.repo().get_pulls(state="all"))) == 1
    assert [r["status"] for r in faults.hits("POST", r"/repos/acme/ops/pulls$")] == [201]

    from incidentops.flows.followups import open_followup_issue
    from tests.flows.conftest import NOW

    faults.add(method="POST", path=r"/repos/acme/ops/issues$", drop_response=True, count=1)
    ports = world.ports(retries=3)
    created = open_followup_issue(
        ports, number, ident="faults-1", task="Add a test", owner=None, due=NOW.date(), actor="oncall-write"
    )
    again = open_followup_issue(
        ports, number, ident="faults-1", task="Add a test", owner=None, due=NOW.date(), actor="oncall-write"
    )
    assert created.created and not again.created and created.number == again.number
    followups = [i for i in world.repo().get_issues(state="all", labels=["incident-followup"])]
    assert len(followups) == 1
    assert world.violations() == []
    tally("GitHub POST answer lost (label, pull request, issue)", faults.fired(), "looked up; each object once")


def test_reads_through_a_dropped_connection_are_retried(world: World, faults: Faults, tally: Tally) -> None:
    number, delivery = labelled(world)
    faults.add(method="GET", path=rf"{REPO}/issues/{number}/comments$", drop=True, count=2)
    assert run_declare(delivery, world.ports(retries=3)).status == "declared"
    dropped = faults.fired()  # both drops hit the flow's own reads, which were retried
    assert_declared_once(world, number)
    tally("GitHub GET connection dropped", dropped, "retried; declared once")
