"""Issue #15 (Low): the job summary a run writes ($GITHUB_STEP_SUMMARY) shows user text as text.

An issue title, a command's words or a check's detail end up in the run's headline and steps. Rendered raw, they
could put a link, a tracking image, raw HTML or a heading into the job page that looks like the tool's own words.
"""

from __future__ import annotations

import re

from incidentops.core import doctor
from tests.flows.conftest import World
from tests.flows.test_cli import run_cli

HOSTILE = (
    "[click here](https://evil.example/x) ![pixel](https://evil.example/p.png) <img src=x onerror=alert(1)> "
    "**bold** `code`"
)


def assert_inert(markdown: str) -> None:
    assert "](https://evil.example" not in markdown.replace("\\]", "")  # no link or image syntax survives
    assert not re.search(r"(?<!\\)\]\(", markdown)
    assert "<img" not in markdown and "<script" not in markdown.lower()
    for line in markdown.splitlines():
        # Only the template's own heading; user text never starts one.
        assert not line.startswith("#") or line.startswith(("### incidentops:", "## incidentops doctor:")), line


def test_a_hostile_title_and_note_stay_text_in_the_job_summary(world: World) -> None:
    number = world.open_incident(title=f"{HOSTILE}\n# Fake heading")
    world.label(number, "sev-2")
    result = run_cli(world, world.next_event("issues", "labeled"))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    world.repo().get_issue(number).create_comment(f"/note {HOSTILE}")
    run_cli(world, world.next_event("issue_comment", "created"))
    # A refused route is quoted back in the run's headline.
    world.repo().get_issue(number).create_comment("/contain api.example.com/[x](https://evil.example/x)")
    result = run_cli(world, world.next_event("issue_comment", "created"))
    summary = (world.tmp / "summary.md").read_text()
    assert "evil.example" in summary
    assert_inert(summary)


def test_the_summary_template_escapes_headline_and_steps() -> None:
    from incidentops.cli import _summary
    from incidentops.flows.base import Outcome

    outcome = Outcome("done", f"noted: {HOSTILE}", steps=[f"step with {HOSTILE}", "## not a heading"])
    summary = _summary(outcome)
    assert "click here" in summary and "pixel" in summary  # the words are all there, as text
    assert_inert(summary)


def test_doctor_summary_cells_escape_api_text() -> None:
    check = doctor.check("x", "GitHub", "t", doctor.FAIL, f"answer: {HOSTILE}", f"fix {HOSTILE}")
    markdown = doctor.render_markdown([check])
    assert "click here" in markdown
    assert_inert(markdown)
