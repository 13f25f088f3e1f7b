"""The emulated GitHub API, driven by PyGithub and raw HTTP, over a real bare repository."""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from github import Auth, Github, GithubException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from incidentops.sandbox.gitstore import GitStore, Identity, TreeEntry

from .conftest import GitHubWorld

SANDBOX = Path(__file__).resolve().parents[2] / "scripts" / "incidentops" / "sandbox"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
ROLES = {
    "oncall-admin": ("admin", "admin"),
    "oncall-maintain": ("write", "maintain"),
    "oncall-write": ("write", "write"),
    "triager": ("read", "triage"),
    "reader": ("read", "read"),
    "outsider": ("none", "none"),
}


def client(world: GitHubWorld, token: str) -> Github:
    return Github(
        auth=Auth.Token(token),
        base_url=world.api_url,
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def http(world: GitHubWorld, token: str | None = "oncall-write") -> httpx.Client:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.Client(base_url=f"{world.api_url}/repos/acme/ops", headers=headers, timeout=10)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@functools.cache
def webhook_validator(event: str, action: str) -> Draft7Validator:
    schema = json.loads((SANDBOX / "specs" / "webhooks-schema.json").read_text())
    return Draft7Validator({"$ref": f"#/definitions/{event}${action}", "definitions": schema["definitions"]})


def webhook_errors(entry: dict[str, Any]) -> list[str]:
    validator = webhook_validator(entry["event"], entry["action"] or "event")  # push has no action
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(entry["payload"])]


def test_whole_incident_flow_with_pygithub(github_world: GitHubWorld) -> None:
    gh = client(github_world, "oncall-write")
    repo = gh.get_repo("acme/ops")
    assert (repo.full_name, repo.default_branch, repo.private) == ("acme/ops", "main", True)
    assert repo.html_url == f"{github_world.server_url}/acme/ops"

    issue = repo.create_issue(title="Checkout API returns 500", body="Since 10:02 UTC")
    assert issue.html_url == f"{github_world.server_url}/acme/ops/issues/{issue.number}"
    issue.add_to_labels("sev-1", "incident")
    assert sorted(label.name for label in repo.get_issue(issue.number).labels) == ["incident", "sev-1"]

    comment = issue.create_comment("Rolling back worker `checkout`")
    issue.create_comment("Second update")
    assert [c.body for c in issue.get_comments()] == ["Rolling back worker `checkout`", "Second update"]
    comment.edit("Rolled back worker `checkout`")
    assert repo.get_issue(issue.number).get_comment(comment.id).body == "Rolled back worker `checkout`"

    issue.edit(state="closed", state_reason="completed")
    closed = repo.get_issue(issue.number)
    assert (closed.state, closed.state_reason, closed.closed_by.login) == ("closed", "completed", "oncall-write")

    for login, (legacy, role) in ROLES.items():
        assert repo.get_collaborator_permission(login) == legacy
        assert repo.get_collaborator_role_name(login) == role

    main = repo.get_git_ref("heads/main")
    repo.create_git_ref("refs/heads/incident/1", main.object.sha)
    created = repo.create_file("incidents/INC-1.md", "Record INC-1", "# INC-1\n", branch="incident/1")
    fetched = repo.get_contents("incidents/INC-1.md", ref="incident/1")
    assert not isinstance(fetched, list)
    assert fetched.decoded_content == b"# INC-1\n"
    assert fetched.sha == created["content"].sha

    pull = repo.create_pull(title="Record INC-1", body="Closes the loop", head="acme:incident/1", base="main")
    assert pull.number == issue.number + 1  # issues and pull requests share one sequence
    assert pull.mergeable is True
    assert [p.number for p in repo.get_pulls(state="open", head="acme:incident/1", base="main")] == [pull.number]
    assert pull.merge(sha=pull.head.sha).merged
    merged = repo.get_pull(pull.number)
    assert merged.merged and merged.merged_by.login == "oncall-write"

    bare = github_world.bare_repo
    head = git("rev-parse", "main", cwd=bare)
    assert head == merged.merge_commit_sha
    assert len(git("log", "-1", "--format=%P", "main", cwd=bare).split()) == 2
    assert git("show", "main:incidents/INC-1.md", cwd=bare) == "# INC-1"
    assert repo.get_branch("main").commit.sha == head
    assert [f.filename for f in repo.get_commit(head).files] == ["incidents/INC-1.md"]

    assert github_world.emulator.violations == []


def test_contents_update_is_guarded_by_the_blob_sha(github_world: GitHubWorld) -> None:
    repo = client(github_world, "oncall-write").get_repo("acme/ops")
    first = repo.create_file("services/checkout.yaml", "add", "version: 1\n")["content"]
    second = repo.update_file("services/checkout.yaml", "bump", "version: 2\n", first.sha)["content"]
    assert second.sha != first.sha

    with pytest.raises(GithubException) as stale:
        repo.update_file("services/checkout.yaml", "stale", "version: 3\n", first.sha)
    assert stale.value.status == 409

    with http(github_world) as api:
        missing_sha = api.put(
            "/contents/services/checkout.yaml",
            json={"message": "no sha", "content": base64.b64encode(b"x").decode()},
        )
        assert missing_sha.status_code == 422
        listing = api.get("/contents/services")
        assert [(e["name"], e["type"]) for e in listing.json()] == [("checkout.yaml", "file")]
        assert api.get("/contents/nope.txt").status_code == 404

    assert git("show", "main:services/checkout.yaml", cwd=github_world.bare_repo) == "version: 2"
    assert github_world.emulator.violations == []


def test_bad_request_bodies_are_rejected_and_recorded(github_world: GitHubWorld) -> None:
    with http(github_world) as api:
        no_title = api.post("/issues", json={"body": "who needs a title"})
        assert no_title.status_code == 422
        assert "title" in no_title.json()["message"]
        no_head = api.post("/pulls", json={"title": "x"})
        assert no_head.status_code == 422
        no_comment_body = api.post("/issues/1/comments", json={})
        assert no_comment_body.status_code == 422

        broken = api.post("/issues", content=b'{"title": ', headers={"Content-Type": "application/json"})
        assert broken.status_code == 400
        assert broken.json()["message"] == "Problems parsing JSON"

        nul = api.post("/issues", json={"title": "nul\u0000byte", "body": "a\u0000b"})
        assert nul.status_code == 201
        assert api.get(f"/issues/{nul.json()['number']}").json()["body"] == "a\u0000b"

    violations = github_world.emulator.violations
    assert [(v["method"], v["path"], v["kind"]) for v in violations] == [
        ("POST", "/repos/acme/ops/issues", "request"),
        ("POST", "/repos/acme/ops/pulls", "request"),
        ("POST", "/repos/acme/ops/issues/1/comments", "request"),
    ]
    assert "'title' is a required property" in violations[0]["errors"][0]


def test_length_limits_match_github(github_world: GitHubWorld) -> None:
    with http(github_world) as api:
        too_long = api.post("/issues", json={"title": "t", "body": "x" * 65537})
        assert too_long.status_code == 422
        assert "body is too long (maximum is 65536 characters)" in json.dumps(too_long.json())
        at_limit = api.post("/issues", json={"title": "t" * 256, "body": "x" * 65536})
        assert at_limit.status_code == 201
        long_title = api.post("/issues", json={"title": "t" * 257})
        assert long_title.status_code == 422
        long_comment = api.post(f"/issues/{at_limit.json()['number']}/comments", json={"body": "y" * 65537})
        assert long_comment.status_code == 422


def test_events_are_ordered_webhooks_that_validate(github_world: GitHubWorld) -> None:
    gh = client(github_world, "oncall-write")
    repo = gh.get_repo("acme/ops")
    issue = repo.create_issue(title="Latency spike", body="p99 > 2s", labels=["sev-2"], assignees=["reader"])
    issue.add_to_labels("incident")
    issue.remove_from_labels("sev-2")
    comment = issue.create_comment("Investigating")
    comment.edit("Mitigated")
    issue.edit(title="Latency spike on checkout")
    issue.edit(state="closed")
    issue.edit(state="open")

    sha = repo.get_git_ref("heads/main").object.sha
    repo.create_git_ref("refs/heads/rollback/1", sha)
    repo.create_file("rollback.txt", "rollback", "1\n", branch="rollback/1")
    pull = repo.create_pull(title="Roll back", body="", head="rollback/1", base="main")
    pull.add_to_labels("rollback")
    pull.merge()
    repo.create_git_ref("refs/heads/abandoned", sha)
    repo.create_file("abandoned.txt", "x", "x\n", branch="abandoned")
    repo.create_pull(title="Abandoned", body="", head="abandoned", base="main").edit(state="closed")

    events = github_world.emulator.events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [(e["event"], e["action"]) for e in events] == [
        ("issues", "opened"),
        ("issues", "labeled"),
        ("issues", "assigned"),
        ("issues", "labeled"),
        ("issues", "unlabeled"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("issues", "edited"),
        ("issues", "closed"),
        ("issues", "reopened"),
        ("push", None),  # the file committed on rollback/1 through the contents API
        ("pull_request", "opened"),
        ("pull_request", "labeled"),
        ("pull_request", "closed"),
        ("push", None),  # the merge, onto main
        ("push", None),
        ("pull_request", "opened"),
        ("pull_request", "closed"),
    ]
    assert len({e["delivery"] for e in events}) == len(events)
    for entry in events:
        assert webhook_errors(entry) == [], (entry["event"], entry["action"])
        assert entry["payload"].get("action") == entry["action"]
        assert entry["payload"]["repository"]["full_name"] == "acme/ops"
        assert entry["payload"]["sender"]["login"] == "oncall-write"

    assert events[1]["payload"]["label"]["name"] == "sev-2"
    assert events[2]["payload"]["assignee"]["login"] == "reader"
    assert events[6]["payload"]["changes"] == {"body": {"from": "Investigating"}}
    assert events[7]["payload"]["changes"] == {"title": {"from": "Latency spike"}}
    merged, unmerged = events[13]["payload"]["pull_request"], events[17]["payload"]["pull_request"]
    push = events[14]["payload"]
    assert (push["ref"], push["after"], push["pusher"]["name"]) == (
        "refs/heads/main",
        merged["merge_commit_sha"],
        "oncall-write",
    )
    assert push["head_commit"]["added"] == ["rollback.txt"]
    assert merged["merged"] is True and merged["merged_by"]["login"] == "oncall-write"
    assert merged["merge_commit_sha"] == git("rev-parse", "main", cwd=github_world.bare_repo)
    assert unmerged["merged"] is False and unmerged["merged_at"] is None
    assert github_world.emulator.violations == []


def test_event_payloads_have_the_shape_of_real_deliveries(github_world: GitHubWorld) -> None:
    repo = client(github_world, "oncall-write").get_repo("acme/ops")
    issue = repo.create_issue(title="x", labels=["sev-1"])
    issue.create_comment("y")
    issue.edit(state="closed")
    sha = repo.get_git_ref("heads/main").object.sha
    repo.create_git_ref("refs/heads/b", sha)
    repo.create_file("b.txt", "b", "b\n", branch="b")
    repo.create_pull(title="b", body="", head="b", base="main").merge()
    by_name = {f"{e['event']}.{e['action']}": e["payload"] for e in github_world.emulator.events}
    pairs = [
        ("issues.labeled", "issues.labeled"),
        ("issue_comment.created", "issue_comment.created"),
        ("issues.closed", "issues.closed"),
        ("pull_request.closed", "pull_request.closed.merged"),
    ]
    for ours, fixture in pairs:
        real = json.loads((FIXTURES / f"{fixture}.json").read_text())
        # The sandbox repository belongs to an organization, so every delivery names it; `installation`
        # only appears in deliveries to GitHub Apps.
        assert by_name[ours]["organization"]["login"] == "acme"
        optional = {"organization", "installation"}
        assert set(by_name[ours]) - optional == set(real) - optional, ours
        main_object = next(k for k in ("pull_request", "issue") if k in real)
        assert set(real[main_object]) - set(by_name[ours][main_object]) == set(), ours


def test_permissions_are_enforced(github_world: GitHubWorld) -> None:
    owner_issue = client(github_world, "oncall-write").get_repo("acme/ops").create_issue(title="owned")
    reader = client(github_world, "reader").get_repo("acme/ops")
    own = reader.create_issue(title="reader's issue", labels=["sev-1"])
    assert own.labels == []  # GitHub silently drops labels from users without triage
    own.create_comment("a reader may comment")
    own.edit(state="closed")  # and close their own issue

    with pytest.raises(GithubException) as no_label:
        reader.get_issue(owner_issue.number).add_to_labels("sev-1")
    assert no_label.value.status == 403
    with pytest.raises(GithubException) as no_close:
        reader.get_issue(owner_issue.number).edit(state="closed")
    assert no_close.value.status == 403
    with pytest.raises(GithubException) as no_write:
        reader.create_file("x.txt", "x", "x")
    assert no_write.value.status == 403

    triager = client(github_world, "triager").get_repo("acme/ops")
    triager.get_issue(owner_issue.number).add_to_labels("sev-2")
    with pytest.raises(GithubException) as no_ref:
        triager.create_git_ref("refs/heads/t", triager.get_branch("main").commit.sha)
    assert no_ref.value.status == 403

    with pytest.raises(GithubException) as hidden:
        client(github_world, "outsider").get_repo("acme/ops")
    assert hidden.value.status == 404

    with http(github_world, token="not-a-token") as api:
        bad = api.get("")
        assert bad.status_code == 401
        assert bad.json()["message"] == "Bad credentials"
        assert "documentation_url" in bad.json()

    bot = client(github_world, "sandbox-actions-token").get_repo("acme/ops")
    commit = bot.create_file("bot.txt", "from the workflow", "hi\n")["commit"]
    assert commit.author.name == "github-actions[bot]"
    bot.get_issue(owner_issue.number).add_to_labels("incident")
    assert bot.get_collaborator_permission("github-actions[bot]") == "write"
    assert github_world.emulator.events[-1]["payload"]["sender"]["type"] == "Bot"


def test_direct_push_between_contents_puts_is_kept(github_world: GitHubWorld, tmp_path: Path) -> None:
    repo = client(github_world, "oncall-write").get_repo("acme/ops")
    repo.create_file("a.txt", "api write 1", "a\n")

    work = tmp_path / "clone"
    git("clone", "-q", str(github_world.bare_repo), str(work), cwd=tmp_path)
    (work / "pushed.txt").write_text("pushed\n")
    git("add", "pushed.txt", cwd=work)
    git("-c", "user.name=dev", "-c", "user.email=dev@example.invalid", "commit", "-qm", "direct push", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    repo.create_file("b.txt", "api write 2", "b\n")
    log = git("log", "--format=%s", "main", cwd=github_world.bare_repo).splitlines()
    assert log[:3] == ["api write 2", "direct push", "api write 1"]
    assert git("show", "main:pushed.txt", cwd=github_world.bare_repo) == "pushed"


def test_a_push_landing_mid_write_is_retried_not_lost(github_world: GitHubWorld) -> None:
    store = GitStore(github_world.bare_repo)
    before = store.branch_sha("main")
    assert before is not None
    me = Identity("t", "t@example.invalid")
    # A concurrent writer: a commit whose parent is the current tip, pushed while we hold the old tip.
    racer_tree = git("rev-parse", "main^{tree}", cwd=github_world.bare_repo)
    racer = store.commit_tree(racer_tree, [before], "racing push", me, me)
    seen: list[TreeEntry | None] = []

    def guard(current: TreeEntry | None) -> None:
        seen.append(current)
        if len(seen) == 1:
            store.update_ref("refs/heads/main", racer, before)

    info, _ = store.commit_file("main", "c.txt", b"c\n", "after the race", me, me, guard)
    assert len(seen) == 2  # the write noticed the moved branch and went round again
    assert info.parents == (racer,)
    assert git("log", "--format=%s", "-2", "main", cwd=github_world.bare_repo).splitlines() == [
        "after the race",
        "racing push",
    ]


def test_injected_faults_reach_the_client(github_world: GitHubWorld) -> None:
    repo = client(github_world, "oncall-write").get_repo("acme/ops")
    github_world.hub.add_fault({"path": r"/issues$", "method": "POST", "status": 502})
    with pytest.raises(GithubException) as failed:
        repo.create_issue(title="first try")
    assert failed.value.status == 502
    assert repo.create_issue(title="second try").number == 1  # the fault fired once and nothing was stored

    github_world.hub.add_fault({"path": "/labels", "status": 429, "retry_after": 7})
    with http(github_world) as api:
        limited = api.get("/labels")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "7"
        assert api.get("/labels").status_code == 200


def test_pull_request_guards(github_world: GitHubWorld) -> None:
    repo = client(github_world, "oncall-write").get_repo("acme/ops")
    main_sha = repo.get_git_ref("heads/main").object.sha
    with pytest.raises(GithubException) as no_head:
        repo.create_pull(title="x", body="", head="missing", base="main")
    assert no_head.value.status == 422
    repo.create_git_ref("refs/heads/empty", main_sha)
    with pytest.raises(GithubException) as nothing:
        repo.create_pull(title="x", body="", head="empty", base="main")
    assert nothing.value.status == 422

    for branch in ("left", "right"):
        repo.create_git_ref(f"refs/heads/{branch}", main_sha)
        repo.create_file("same.txt", branch, f"{branch}\n", branch=branch)
    left = repo.create_pull(title="left", body="", head="left", base="main")
    right = repo.create_pull(title="right", body="", head="right", base="main")
    with pytest.raises(GithubException) as duplicate:
        repo.create_pull(title="again", body="", head="left", base="main")
    assert duplicate.value.status == 422

    with pytest.raises(GithubException) as stale:
        left.merge(sha=main_sha)
    assert stale.value.status == 409
    assert left.merge().merged
    with pytest.raises(GithubException) as twice:
        left.merge()
    assert twice.value.status == 405
    assert repo.get_pull(right.number).mergeable is False
    with pytest.raises(GithubException) as conflict:
        right.merge()
    assert conflict.value.status == 405

    assert [p.number for p in repo.get_pulls(state="closed")] == [left.number]
    assert [p.number for p in repo.get_pulls(state="all", base="main")] == [right.number, left.number]
    assert list(repo.get_pulls(head="acme:nope")) == []
    assert github_world.emulator.violations == []


def test_labels_and_assignees(github_world: GitHubWorld) -> None:
    repo = client(github_world, "oncall-write").get_repo("acme/ops")
    names = {label.name for label in repo.get_labels()}
    assert {"sev-1", "sev-2", "sev-3", "incident", "rollback", "incident-followup", "bug"} <= names

    issue = repo.create_issue(title="labels")
    issue.add_to_labels("brand-new")  # unknown labels are created, as GitHub does
    assert {label.name: label.color for label in repo.get_labels()}["brand-new"] == "ededed"
    issue.set_labels("sev-3", "incident")
    assert sorted(label.name for label in issue.get_labels()) == ["incident", "sev-3"]
    with pytest.raises(GithubException) as absent:
        issue.remove_from_labels("sev-1")
    assert absent.value.status == 404

    created = repo.create_label("customer-impact", "ff0000", "Customers noticed")
    assert created.name == "customer-impact"
    with pytest.raises(GithubException) as duplicate:
        repo.create_label("customer-impact", "ff0000")
    assert duplicate.value.status == 422

    issue.add_to_assignees("oncall-admin", "triager")
    assert sorted(a.login for a in repo.get_issue(issue.number).assignees) == ["oncall-admin", "triager"]

    milestone = repo.create_milestone("2024-Q3 follow-ups")
    issue.edit(milestone=milestone)
    assert repo.get_issue(issue.number).milestone.title == "2024-Q3 follow-ups"
    assert [m.title for m in repo.get_milestones()] == ["2024-Q3 follow-ups"]
    assert github_world.emulator.violations == []


def test_listing_users_headers_and_pagination(github_world: GitHubWorld) -> None:
    gh = client(github_world, "oncall-admin")
    repo = gh.get_repo("acme/ops")
    for n in range(5):
        repo.create_issue(title=f"issue {n}")
    repo.get_issue(2).edit(state="closed")
    assert [i.number for i in repo.get_issues(state="open")] == [5, 4, 3, 1]
    assert [i.number for i in repo.get_issues(state="all", direction="asc")] == [1, 2, 3, 4, 5]

    with http(github_world, token="oncall-admin") as api:
        page = api.get("/issues", params={"per_page": 2, "state": "all"})
        assert [i["number"] for i in page.json()] == [5, 4]
        assert 'rel="next"' in page.headers["link"]
        assert page.headers["x-ratelimit-limit"] == "5000"
        assert int(page.headers["x-ratelimit-remaining"]) < 5000
        assert page.headers["x-ratelimit-resource"] == "core"
        assert int(page.headers["x-ratelimit-used"]) >= 1

    assert gh.get_user().login == "oncall-admin"
    assert gh.get_user("reader").name == "Reader"
    with pytest.raises(GithubException) as unknown:
        gh.get_user("nobody-here")
    assert unknown.value.status == 404
    assert github_world.emulator.violations == []


def test_hostile_input_gets_client_errors_not_crashes(github_world: GitHubWorld) -> None:
    commits_before = git("rev-list", "--count", "main", cwd=github_world.bare_repo)
    with http(github_world) as api:
        number = api.post("/issues", json={"title": "target"}).json()["number"]
        content = base64.b64encode(b"x").decode()
        answers = {
            "nul in path": api.get("/contents/a%00b").status_code,
            "dot-dot path": api.put(
                "/contents/a/%2E%2E/escape.txt", json={"message": "m", "content": content}
            ).status_code,
            "git dir path": api.put("/contents/.git/config", json={"message": "m", "content": content}).status_code,
            "bad base64": api.put("/contents/x.txt", json={"message": "m", "content": "@@@"}).status_code,
            "unknown branch": api.put(
                "/contents/x.txt", json={"message": "m", "content": content, "branch": "nope"}
            ).status_code,
            "bad milestone": api.patch(f"/issues/{number}", json={"milestone": "abc"}).status_code,
            "blank title": api.post("/issues", json={"title": "   "}).status_code,
            "blank comment": api.post(f"/issues/{number}/comments", json={"body": ""}).status_code,
            "fork head": api.post("/pulls", json={"title": "t", "head": "evil:main", "base": "main"}).status_code,
            "bad ref": api.post("/git/refs", json={"ref": "refs/heads/a..b", "sha": "0" * 40}).status_code,
            "short ref": api.post("/git/refs", json={"ref": "main", "sha": "0" * 40}).status_code,
            "no such issue": api.get("/issues/999999999999999999999").status_code,
            "not a number": api.get("/issues/comments/abc").status_code,
            "other repo": api.get(f"{github_world.api_url}/repos/acme/secret").status_code,
            "unknown route": api.get("/wiki").status_code,
            "not json": api.post("/issues", content=b"\x00\xff\xfe").status_code,
            "json array": api.post("/issues", json=["title"]).status_code,
        }
    assert answers == {
        "nul in path": 404,
        "dot-dot path": 422,
        "git dir path": 422,
        "bad base64": 422,
        "unknown branch": 404,
        "bad milestone": 422,
        "blank title": 422,
        "blank comment": 422,
        "fork head": 422,
        "bad ref": 422,
        "short ref": 422,
        "no such issue": 404,
        "not a number": 404,
        "other repo": 404,
        "unknown route": 404,
        "not json": 400,
        "json array": 422,
    }
    assert git("rev-list", "--count", "main", cwd=github_world.bare_repo) == commits_before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "title": json_values,
        "body": json_values,
        "labels": json_values,
        "assignees": json_values,
        "state": json_values,
        "milestone": json_values,
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=fields)
def test_arbitrary_issue_bodies_never_break_the_emulator(github_world: GitHubWorld, body: dict[str, Any]) -> None:
    with http(github_world, token="oncall-admin") as api:
        created = api.post("/issues", json=body)
        assert created.status_code in (201, 422), created.text
        edited = api.patch("/issues/1", json=body)
        assert edited.status_code in (200, 404, 422), edited.text
    responses = [v for v in github_world.emulator.violations if v["kind"] == "response"]
    assert responses == []


def test_api_writes_racing_direct_pushes_all_land(github_world: GitHubWorld, tmp_path: Path) -> None:
    work = tmp_path / "racer"
    git("clone", "-q", str(github_world.bare_repo), str(work), cwd=tmp_path)
    ident = ["-c", "user.name=dev", "-c", "user.email=dev@example.invalid"]
    failures: list[BaseException] = []

    def push_some() -> None:
        try:
            for n in range(4):
                (work / f"pushed-{n}.txt").write_text(f"{n}\n")
                git("add", "-A", cwd=work)
                git(*ident, "commit", "-qm", f"push {n}", cwd=work)
                for _ in range(20):  # a real client: fetch, rebase onto the API's commits, push again
                    done = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, capture_output=True)
                    if done.returncode == 0:
                        break
                    git(*ident, "pull", "-q", "--rebase", "origin", "main", cwd=work)
                else:
                    raise AssertionError("push never landed")
        except BaseException as exc:
            failures.append(exc)

    def write_some() -> None:
        try:
            repo = client(github_world, "oncall-write").get_repo("acme/ops")
            for n in range(6):
                repo.create_file(f"api-{n}.txt", f"api {n}", f"{n}\n")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=push_some), threading.Thread(target=write_some)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    tree = set(git("ls-tree", "--name-only", "main", cwd=github_world.bare_repo).split())
    assert {f"pushed-{n}.txt" for n in range(4)} | {f"api-{n}.txt" for n in range(6)} <= tree
