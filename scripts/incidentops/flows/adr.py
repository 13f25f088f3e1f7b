"""ADR stubs for architecture-significant decisions, committed together with the incident's rows.

The ADR number is computed inside the commit's edit function from the files on the tip being committed
to, so when two incidents add an ADR at the same moment the push that loses the race re-runs the edit on
the new tip and takes the next free number (adr-tools numbering: four digits, one more than the highest).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping

from incidentops.adapters.git import Edit
from incidentops.core import commands as core
from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_id, incident_path
from incidentops.flows.base import Ports, file_url
from incidentops.render import render

ADR_DIR = "docs/adrs"


def adr_names(ports: Ports) -> list[str]:
    """ADR file names on the commit the work tree is at (the fresh tip, inside `GitRepo.commit`)."""
    listed = ports.git.run("ls-tree", "--name-only", "HEAD", f"{ADR_DIR}/", check=False).stdout
    return [posixpath.basename(line) for line in listed.split("\n") if line.strip()]


def adr_edit(
    ports: Ports,
    number: int,
    *,
    decision: str,
    ctx: core.Context,
    title: str | None = None,
    before: Edit | None = None,
    seen: dict[str, bool] | None = None,
) -> Edit:
    """An edit adding `docs/adrs/NNNN-<slug>.md`, a Decision log row linking it and a timeline row (key ctx.key).

    `before` runs first on the same files (e.g. the rollback flow's timeline rows), so both land in one
    commit; the ADR part is skipped when a row with `ctx.key` is already in the incident file.
    """
    path = incident_path(ports.config, number)
    inc = incident_id(number)
    heading = f.clean_line(title or decision, limit=120)

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        out = dict(before(read)) if before else {}
        text = out.get(path) or read(path)
        if text is None:
            return out
        if f.has_event(text, ctx.key):
            if seen is not None:
                seen["replay"] = True
            return out
        names = adr_names(ports) + [posixpath.basename(p) for p in out if p.startswith(ADR_DIR + "/")]
        n = core.next_adr_number(names)
        adr_path = f"{ADR_DIR}/{n:04d}-{core.slug(heading)}.md"
        adr_text = render(
            "adr.md.j2",
            ports.workspace,
            number=n,
            title=heading,
            date=ctx.at[:10],
            decision=decision,
            actor=ctx.actor,
            at=ctx.at,
            incident_id=inc,
            incident_link=posixpath.relpath(path, ADR_DIR),
            incident_url=file_url(ports, path),
            comment_link=ctx.link,
        )
        adr_link = f"[ADR-{n:04d}]({posixpath.relpath(adr_path, posixpath.dirname(path))})"
        text = f.append_table_row(
            text, "Decision log", core.decision_row(ctx, decision, adr_link), core.DECISION_HEADER
        )
        text = f.append_timeline(
            text, f.TimelineRow(ctx.at, ctx.actor, f"Decision (ADR {n:04d}): {decision}", ctx.link, ctx.key)
        )
        out[path] = ports.redact(text)
        out[adr_path] = ports.redact(adr_text)
        return out

    return edit
