"""#15 Low items: well-known secret shapes redacted, the git credential and errors too, roles only for people
who can see the incident.

Before: a pasted AWS access key id reached the incident file in git through a `/note`; the base64 git credential
the workflows build had no redaction; an error message or traceback was printed as it was.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from incidentops.core.redact import MASK, Redactor
from tests.flows.conftest import FORM_BODY, World

QUIET = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")
AWS = "AKIA" + "IOSFODNN7EXAMPL3"  # the documented example shape, split so scanners do not flag this file


@pytest.mark.parametrize(
    "secret",
    [
        AWS,
        "ASIA" + "Y34FZKBOKMUTVV7A",
        "xoxb-" + "123456789012-abcdefghijkl",
        "AIza" + "SyD-1234567890abcdefghijklmnopqrstu",
        "sk_live_" + "abcdefghijklmnop1234",
        base64.b64encode(b"x-access-token:ghs_abcdefghijklmnopqrstuvwxyz012345").decode(),
    ],
)
def test_well_known_shapes_are_redacted(secret: str) -> None:
    assert Redactor()(f"see {secret} here") == f"see {MASK} here"


def test_a_pasted_aws_key_never_reaches_git(world: World) -> None:
    number = world.open_incident(body=QUIET)
    world.label(number, "sev-1", "oncall-write")
    world.run(world.next_event("issues", "labeled"))
    world.repo("oncall-write").get_issue(number).create_comment(f"/note rotated the key {AWS} just now")
    assert world.run(world.next_event("issue_comment", "created")).status == "recorded"
    assert AWS not in world.bare_file(f"incidents/INC-{number:04d}.md")
    assert all(AWS not in c for c in world.comments(number)[1:] if "incidentops:" in c)


def test_errors_are_redacted_before_they_are_printed(tmp_path: Path) -> None:
    secret = "cf-secret-value-123456"
    env = {"PATH": "/usr/bin:/bin", "CLOUDFLARE_API_TOKEN": secret, "GITHUB_EVENT_NAME": "issues"}
    env["GITHUB_EVENT_PATH"] = str(tmp_path / f"{secret}.json")  # an error that quotes the secret
    done = subprocess.run(
        [sys.executable, "-m", "incidentops", "handle-event"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1 and "does not exist" in done.stdout + done.stderr
    assert secret not in done.stdout + done.stderr


def test_an_incident_role_goes_only_to_someone_with_access(world: World) -> None:
    number = world.open_incident(body=QUIET)
    world.label(number, "sev-1", "oncall-write")
    world.run(world.next_event("issues", "labeled"))
    world.repo("oncall-write").get_issue(number).create_comment("/ic @outsider")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "rejected" and "no access" in outcome.message
    assert "commander: outsider" not in world.bare_file(f"incidents/INC-{number:04d}.md")
