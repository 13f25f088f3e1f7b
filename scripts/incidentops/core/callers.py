"""The caller workflows of an ops repository (pure): which incidentops workflows they call, and at which pin.

An adopting repository's callers (written by `incidentops init`) name the pin twice, in one string:
`uses: OWNER/REPO/.github/workflows/reusable-<x>.yml@<SHA>` and `with: incidentops-uses:` the same value, from which
the called workflow checks its package code out (inside a called workflow the github context is the caller's, so it
cannot tell its own commit). Dependabot rewrites every copy of the old `uses:` string when it moves the pin
(dependabot-core, github_actions/file_updater.rb), so the two stay equal unless a person edits one: then the workflow
and the package would come from different commits, which `pin_check` reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentops.core.doctor import FAIL, OK, WARN, Check, check

_REMOTE = re.compile(r"^(?P<repo>[^/\s]+/[^/\s]+)/\.github/workflows/(?P<file>reusable-[a-z-]+\.yml)@(?P<ref>\S+)$")
_LOCAL = re.compile(r"^\./\.github/workflows/(?P<file>reusable-[a-z-]+\.yml)$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
PIN_INPUT = "incidentops-uses"
# The environment a called workflow's privileged job declares when the caller passes no `environment` input.
DEFAULT_ENVIRONMENT = "production"
# What the environment-gated job of each reusable workflow reads besides GITHUB_TOKEN and the runbook's smoke
# secrets (.github/workflows/reusable-*.yml). A caller passes them with `secrets: inherit`, so its own text names none.
ENVIRONMENT_SECRETS: dict[str, tuple[str, ...]] = {
    "reusable-incident.yml": ("CLOUDFLARE_API_TOKEN",),
    "reusable-rollback.yml": ("CLOUDFLARE_API_TOKEN",),
    "reusable-remind.yml": ("CLOUDFLARE_API_TOKEN",),
    "reusable-doctor.yml": ("CLOUDFLARE_API_TOKEN",),
}


@dataclass(frozen=True)
class Call:
    """One job that calls an incidentops reusable workflow."""

    file: str  # the caller's file name
    job: str
    uses: str
    called: str  # reusable-<x>.yml
    repository: str | None  # None for a same-repository call (this repository dogfooding)
    ref: str | None
    passed: str | None  # the `incidentops-uses` input, verbatim
    environment: str
    inherits: bool

    @property
    def where(self) -> str:
        return f"{self.file} (job {self.job})"


def calls(workflows: Mapping[str, Any]) -> list[Call]:
    """Every job of every workflow (file name -> parsed YAML) that calls an incidentops reusable workflow."""
    found: list[Call] = []
    for filename, doc in sorted(workflows.items()):
        jobs = doc.get("jobs") if isinstance(doc, Mapping) else None
        for job_id, job in (jobs or {}).items() if isinstance(jobs, Mapping) else ():
            uses = job.get("uses") if isinstance(job, Mapping) else None
            if not isinstance(uses, str):
                continue
            remote, local = _REMOTE.match(uses.strip()), _LOCAL.match(uses.strip())
            if remote is None and local is None:
                continue
            given = job.get("with") if isinstance(job.get("with"), Mapping) else {}
            passed = given.get(PIN_INPUT)
            environment = given.get("environment")
            found.append(
                Call(
                    file=filename,
                    job=str(job_id),
                    uses=uses.strip(),
                    called=(remote or local)["file"],  # type: ignore[index]
                    repository=remote["repo"] if remote else None,
                    ref=remote["ref"] if remote else None,
                    passed=str(passed).strip() if passed is not None else None,
                    environment=_literal(environment) or DEFAULT_ENVIRONMENT,
                    inherits=job.get("secrets") == "inherit",
                )
            )
    return found


def _literal(value: Any) -> str | None:
    """A plain environment name, or the last quoted fallback of an expression (`vars.X || 'production'`)."""
    if not isinstance(value, str) or not value.strip():
        return None
    if "${{" not in value:
        return value.strip()
    quoted = re.findall(r"'([^']+)'", value)
    return quoted[-1] if quoted else None


def pin_check(found: list[Call]) -> Check:
    """The callers pin incidentops by a full SHA, and each one's `incidentops-uses` repeats its `uses:`."""
    title = "caller workflows pin incidentops"
    if not found:
        return check(
            "github.callers",
            "GitHub",
            title,
            WARN,
            "no workflow calls the incidentops reusable workflows",
            "run `incidentops init` to write the caller workflows, or call them as README shows",
        )
    remote = [c for c in found if c.repository is not None]
    if not remote:
        return check(
            "github.callers", "GitHub", title, OK, "this repository's own reusable workflows, from the same commit"
        )
    problems: list[str] = []
    fixes: list[str] = []
    for call in remote:
        if not _SHA.match(call.ref or ""):
            problems.append(f"{call.where} pins {call.called}@{call.ref}, which can be moved")
            fixes.append("pin the full 40-character commit SHA of an incidentops release, with `# vX.Y.Z` after it")
        if call.passed is None:
            problems.append(f"{call.where} does not pass `{PIN_INPUT}`: the called workflow cannot find its package")
            fixes.append(f"add `with: {PIN_INPUT}:` set to the same value as `uses:`")
        elif call.passed != call.uses:
            problems.append(
                f"{call.where}: `{PIN_INPUT}: {call.passed}` differs from `uses: {call.uses}`, so the workflow and "
                "the package code it runs would come from different commits"
            )
            fixes.append(f"make `{PIN_INPUT}` repeat `uses:` exactly; Dependabot then moves both together")
    if problems:
        return check("github.callers", "GitHub", title, FAIL, "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    pins = sorted({f"{c.repository}@{c.ref}" for c in remote})
    if len(pins) > 1:
        return check(
            "github.callers",
            "GitHub",
            title,
            WARN,
            f"the callers pin different commits: {', '.join(pins)}",
            "merge Dependabot's grouped update, or pin every caller to the same release",
        )
    repo, _, ref = pins[0].partition("@")
    return check(
        "github.callers",
        "GitHub",
        title,
        OK,
        f"{len(remote)} caller(s) pin {repo}@{ref[:12]}, and pass the same pin as `{PIN_INPUT}`",
    )


def called_secrets(found: list[Call]) -> dict[str, dict[str, list[str]]]:
    """Environment -> {"file:job": secrets}, for the secrets the called workflows read in that environment and
    that their callers pass on with `secrets: inherit` (in the shape of `core.doctor.secret_environments`)."""
    out: dict[str, dict[str, list[str]]] = {}
    for call in found:
        names = ENVIRONMENT_SECRETS.get(call.called)
        if names and call.inherits:
            out.setdefault(call.environment, {})[f"{call.file}:{call.job}"] = sorted(names)
    return out
