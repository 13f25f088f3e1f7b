"""#15 item 7: a comment flood neither buries the incident in replies nor exhausts the token.

Before: every command from someone without the role got its own refusal, anyone got a help reply, and every marker
look-up re-read all of the issue's comments 30 at a time. benchmarks/comment_flood.py counts the requests per run
on 5,000 comments; this test pins the behaviour on a few hundred.
"""

from __future__ import annotations

import httpx

from tests.flows.conftest import FORM_BODY, World

QUIET = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")


def _declared(world: World) -> int:
    number = world.open_incident(body=QUIET.replace("- [x] Tenant isolation", "- [ ] Tenant isolation"))
    world.label(number, "sev-1", "oncall-write")
    world.run(world.next_event("issues", "labeled"))
    return number


def test_one_refusal_per_person_and_no_help_for_people_without_a_role(world: World) -> None:
    number = _declared(world)
    before = len(world.comments(number))
    for route in ("a/b", "c/d", "e/f"):
        world.repo("triager").get_issue(number).create_comment(f"/contain api.example.com/{route}")
        assert world.run(world.next_event("issue_comment", "created")).status == "refused"
    world.repo("reader").get_issue(number).create_comment("/help")
    assert world.run(world.next_event("issue_comment", "created")).status == "skipped"
    replies = [c for c in world.comments(number)[before:] if c.startswith("<!-- incidentops:")]
    assert len(replies) == 1 and "needs at least the **write** role" in replies[0]


def test_a_run_reads_the_comments_once_a_hundred_at_a_time(world: World) -> None:
    number = _declared(world)
    api = f"{world.info['github_api_url']}/repos/{world.info['repository']}/issues/{number}/comments"
    with httpx.Client(headers={"Authorization": "token triager"}) as client:
        for i in range(250):
            client.post(api, json={"body": f"+1 ({i})"}).raise_for_status()
    world.repo("oncall-write").get_issue(number).create_comment("/note flood checked")
    delivery = world.next_event("issue_comment", "created")
    mark = len(httpx.get(world.info["control_url"] + "/requests").json())
    assert world.run(delivery).status == "recorded"
    made = httpx.get(world.info["control_url"] + "/requests").json()[mark:]
    pages = [r for r in made if r["method"] == "GET" and r["path"].endswith(f"/issues/{number}/comments")]
    assert len(pages) == 3, [r.get("query") for r in pages]  # 252 comments: one read of three pages
