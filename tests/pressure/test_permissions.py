"""Every action that changes something × every kind of actor: allowed or refused exactly as configured.

Each case replays a real delivery the sandbox recorded, with the sender (and, for a merge, the merger)
swapped for the actor and the event's identity made unique, as if that person had done it. A refusal must
post a refusal comment and change nothing: no commit, no Cloudflare write, no label.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from incidentops.config import load_config
from incidentops.flows.rollback import open_rollback_pr
from tests.flows.conftest import FORM_BODY, ROOT, World, git

CONFIG = load_config(ROOT)
ACTORS = [  # (login, role); the sandbox seeds one user per role; the bot acts as a workflow's GITHUB_TOKEN
    ("outsider", "none"),
    ("reader", "read"),
    ("triager", "triage"),
    ("oncall-write", "write"),
    ("oncall-maintain", "maintain"),
    ("oncall-admin", "admin"),
    ("github-actions[bot]", "bot"),
    # Custom repository roles: the permission API names them in role_name; they act as their base role.
    ("ic-lead", "admin"),
    ("incident-scribe", "triage"),
]
CUSTOM_ROLES = {"ic-lead": ("incident-commander", "admin"), "incident-scribe": ("scribe", "triage")}
RANKS = ["none", "read", "triage", "write", "maintain", "admin"]
QUIET_FORM = FORM_BODY.replace(
    "- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected"
).replace("- [x] Tenant isolation is at risk", "- [ ] Tenant isolation is at risk")
_unique = itertools.count(1)


def declare(world: World, label: str = "sev-1") -> int:
    number = world.open_incident(body=QUIET_FORM, author="oncall-admin")
    world.label(number, label, "oncall-admin")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    return number


def comment_event(body: str) -> Callable[[World], dict[str, Any]]:
    def setup(world: World) -> dict[str, Any]:
        number = declare(world)
        if body.startswith("/lift"):
            world.repo("oncall-admin").get_issue(number).create_comment("/contain /v1/reports")
            assert world.run(world.next_event("issue_comment", "created")).status == "contained"
        world.repo("oncall-admin").get_issue(number).create_comment(body)
        return world.next_event("issue_comment", "created")

    return setup


def label_event(world: World) -> dict[str, Any]:
    number = world.open_incident(body=QUIET_FORM, author="oncall-admin")
    world.label(number, "sev-1", "oncall-admin")
    return world.next_event("issues", "labeled")


def escalate_event(world: World) -> dict[str, Any]:
    number = declare(world, "sev-2")
    world.label(number, "sev-1", "oncall-admin")
    return world.next_event("issues", "labeled")


def merge_event(world: World) -> dict[str, Any]:
    number = declare(world)
    assert open_rollback_pr(None, world.ports(), number, ["api-worker"], "oncall-admin").status == "planned"
    pr = next(iter(world.repo().get_pulls(state="open")))
    world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
    return world.next_event("pull_request", "closed")


CASES = {
    # action: (setup, config key, what the first allowed actor's run reports: the effect, what later runs report)
    "declare": (label_event, "declare", "declared", {"unchanged"}),
    "escalate": (escalate_event, "escalate", "escalated", {"unchanged"}),
    "contain": (comment_event("/contain /v1/reports"), "contain", "contained", {"unchanged"}),
    "lift": (comment_event("/lift /v1/reports"), "lift", "lifted", {"unchanged"}),
    "rollback plan": (comment_event("/rollback api-worker"), "rollback_plan", "planned", {"unchanged"}),
    "rollback apply": (merge_event, "rollback_apply", "rolled-back", {"unchanged"}),
    "resolve": (comment_event("/resolve"), "resolve", "unmet", {"unmet", "unchanged"}),
    "follow-up": (
        comment_event('/followup "Add a regression test" @oncall-write 2026-12-20'),
        "followup",
        "recorded",
        {"recorded"},
    ),
}


def as_actor(delivery: dict[str, Any], login: str, role: str) -> dict[str, Any]:
    """The same delivery as if `login` had done it (a distinct event, so idempotency keys differ)."""
    event = copy.deepcopy(delivery)
    payload = event["payload"]
    sender = payload["sender"]
    sender.update(login=login, id=900_000 + next(_unique), type="Bot" if role == "bot" else "User")
    if "comment" in payload:
        payload["comment"]["id"] = 800_000 + next(_unique)
        payload["comment"]["user"] = dict(sender)
    if "issue" in payload:
        payload["issue"]["updated_at"] = f"2026-11-27T04:{next(_unique) % 60:02d}:00Z"
    if "pull_request" in payload:
        payload["pull_request"]["merged_by"] = dict(sender)
        payload["pull_request"]["updated_at"] = f"2026-11-27T05:{next(_unique) % 60:02d}:00Z"
    return event


def state(world: World) -> tuple[str, int, frozenset[str]]:
    main = git("--git-dir", world.info["bare_repo"], "rev-parse", "main", cwd=world.workspace).strip()
    log = httpx.get(world.info["control_url"] + "/requests").json()
    cf_writes = sum(
        1 for r in log if r["path"].startswith("/client/v4") and r["method"] != "GET" and "graphql" not in r["path"]
    )
    labels = frozenset(label.name for issue in world.repo().get_issues(state="all") for label in issue.labels)
    return main, cf_writes, labels


@pytest.mark.slow
@pytest.mark.parametrize("action", list(CASES))
def test_each_actor_is_allowed_or_refused_as_configured(world: World, action: str) -> None:
    setup, key, effect, later_statuses = CASES[action]
    for login, (role_name, base_role) in CUSTOM_ROLES.items():
        answer = httpx.put(
            f"{world.info['control_url']}/github/collaborators/{login}",
            json={"role_name": role_name, "base_role": base_role},
        )
        assert answer.status_code == 200, answer.text
    delivery = setup(world)
    needed = CONFIG.permissions[key]
    results = {}
    effects: list[str] = []  # the allowed actors whose run made the change
    for login, role in ACTORS:
        before = state(world)
        comments_before = sum(len(world.comments(n)) for n in _numbers(world))
        outcome = world.run(as_actor(delivery, login, role))
        results[login] = outcome.status
        if role == "bot":
            # Bots never drive the automation: their label or comment events are not for us, and a merge by a bot
            # is judged by the bot's repository role.
            assert outcome.status in ("skipped", "refused"), (action, login, outcome.message)
            assert state(world) == before
        elif RANKS.index(role) < RANKS.index(needed):
            assert outcome.status == "refused", (action, login, outcome.message)
            assert state(world) == before, (action, login)  # nothing changed
            assert sum(len(world.comments(n)) for n in _numbers(world)) == comments_before + 1  # one refusal
            assert f"needs at least the **{needed}** role" in _last_comment(world)
        elif not effects:
            # The first actor allowed to do it does it: the action's effect, and the record or the world changed.
            assert outcome.status == effect, (action, login, outcome.status, outcome.message)
            assert state(world) != before, (action, login, "reported the effect but changed nothing")
            effects.append(login)
        else:
            assert outcome.status in later_statuses, (action, login, outcome.status, outcome.message)
    allowed = [login for login, role in ACTORS if role != "bot" and RANKS.index(role) >= RANKS.index(needed)]
    assert effects == allowed[:1], (action, results)


def _numbers(world: World) -> list[int]:
    return [issue.number for issue in world.repo().get_issues(state="all")]


def _last_comment(world: World) -> str:
    newest = max(
        (c for issue in world.repo().get_issues(state="all") for c in issue.get_comments()), key=lambda c: c.id
    )
    return str(newest.body)
