"""The pin check on caller workflows (pure), on what `incidentops init` writes and on this repository's own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from incidentops.core.callers import called_secrets, calls, pin_check
from incidentops.core.doctor import FAIL, OK, WARN
from incidentops.render import render

ROOT = Path(__file__).resolve().parents[2]
OLD = "a" * 40
NEW = "b" * 40


def caller(name: str, sha: str = OLD, upstream: str = "incidentops/incidentops") -> str:
    gh = lambda inner: "${{ " + inner + " }}"  # noqa: E731
    return render(f"adopt/caller-{name}.yml.j2", None, upstream=upstream, sha=sha, version="0.1.0", gh=gh)


def docs(texts: dict[str, str]) -> dict[str, Any]:
    return {name: YAML(typ="safe").load(text) for name, text in texts.items()}


def dependabot_moves(text: str, declaration: str, new_ref: str) -> str:
    """What Dependabot does to a workflow file when it moves a pin: every copy of the old `uses:` string preceded
    by a non-word character and followed by whitespace or the end of the line is rewritten (dependabot-core,
    github_actions/lib/dependabot/github_actions/file_updater.rb, updated_workflow_file_content)."""
    new = re.sub(r"@.*", f"@{new_ref}", declaration)
    pattern = re.compile(r"(?:(?<=[^a-zA-Z_-])|(?<=\")|(?<='))" + re.escape(declaration) + r"[\"']?(\s+#.*)?(?=\s|$)")
    return pattern.sub(lambda m: m.group(0).replace(declaration, new), text)


def test_what_init_writes_passes() -> None:
    texts = {f"{n}.yml": caller(n) for n in ("incident", "rollback", "remind", "lint", "doctor")}
    found = calls(docs(texts))
    assert {c.called for c in found} == {
        f"reusable-{n}.yml" for n in ("incident", "rollback", "remind", "lint", "doctor")
    }
    result = pin_check(found)
    assert result.status == OK, result
    assert "incidentops/incidentops@aaaaaaaaaaaa" in result.detail


def test_dependabot_moving_the_pin_moves_both_copies() -> None:
    text = caller("incident")
    declaration = f"incidentops/incidentops/.github/workflows/reusable-incident.yml@{OLD}"
    assert text.count(declaration) == 2  # `uses:` and `incidentops-uses:`
    moved = dependabot_moves(text, declaration, NEW)
    assert declaration not in moved and moved.count(declaration.replace(OLD, NEW)) == 2
    assert pin_check(calls(docs({"incident.yml": moved}))).status == OK


def test_a_hand_edited_pin_that_no_longer_matches_fails() -> None:
    text = caller("rollback").replace(f"reusable-rollback.yml@{OLD} #", f"reusable-rollback.yml@{NEW} #")
    result = pin_check(calls(docs({"rollback.yml": text})))
    assert result.status == FAIL
    assert "rollback.yml (job rollback)" in result.detail and "different commits" in result.detail
    assert "repeat `uses:` exactly" in result.fix


def test_a_tag_or_a_missing_input_fails() -> None:
    tagged = caller("lint").replace(f"@{OLD}", "@v1")
    result = pin_check(calls(docs({"lint.yml": tagged})))
    assert result.status == FAIL and "can be moved" in result.detail
    bare = "\n".join(line for line in caller("lint").splitlines() if "incidentops-uses" not in line)
    bare = bare.replace("    with:\n", "")
    result = pin_check(calls(docs({"lint.yml": bare})))
    assert result.status == FAIL and "does not pass `incidentops-uses`" in result.detail


def test_callers_on_different_commits_warn_and_none_at_all_warns() -> None:
    result = pin_check(calls(docs({"incident.yml": caller("incident"), "lint.yml": caller("lint", sha=NEW)})))
    assert result.status == WARN and "different commits" in result.detail
    assert pin_check([]).status == WARN


def test_this_repository_calls_its_own_reusable_workflows() -> None:
    folder = ROOT / ".github" / "workflows"
    found = calls(docs({p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.yml")}))
    assert {c.file for c in found} == {
        "incident.yml",
        "rollback.yml",
        "remind.yml",
        "lint.yml",
        "report.yml",
        "doctor.yml",
    }
    assert pin_check(found).status == OK


def test_the_secrets_an_inheriting_caller_passes_on_are_those_of_its_environment() -> None:
    found = calls(docs({"incident.yml": caller("incident"), "lint.yml": caller("lint")}))
    assert called_secrets(found) == {"production": {"incident.yml:incident": ["CLOUDFLARE_API_TOKEN"]}}
    # The reusable workflows read exactly what the table says (besides the job token and the runbook's secrets).
    for name in ("incident", "rollback", "remind", "doctor"):
        text = (ROOT / ".github" / "workflows" / f"reusable-{name}.yml").read_text(encoding="utf-8")
        read = set(re.findall(r"secrets\.([A-Z0-9_]+)", text)) - {"GITHUB_TOKEN"}
        assert {n for n in read if not n.startswith("SMOKE_")} == {"CLOUDFLARE_API_TOKEN"}, name
