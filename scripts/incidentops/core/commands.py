"""Slash commands in issue comments: find the command line, parse its arguments, and edit the incident file.

Pure: no I/O, the date and time are passed in. Parsing returns either a typed command or a `CommandError`
whose message says exactly what was wrong and how the command is written. Every edit is a function of
(file text, command, actor, time, link, event key) that appends rows carrying the event marker, so the
caller can re-apply it on a newer tip of the branch and a replayed comment changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from incidentops.core import breach
from incidentops.core import incidentfile as f

# A command is a line that starts with `/name` followed by a space or the end of the line, so paths such as
# `/v1/reports` or `/tmp/x` at the start of a line are not mistaken for commands.
COMMAND_LINE = re.compile(r"^[ \t]*/([a-z][a-z-]*)(?=[ \t]|$)[ \t]*(.*)$")
FENCE = re.compile(r"^[ \t]*(```|~~~)")
LOGIN = re.compile(r"^@?([A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})$")
TEXT_LIMIT = 1000
VALUE_LIMIT = 200
MAX_VALUES = 50
MAX_FOLLOWUP_DAYS = 366  # a due date more than a year out is a typo, not a plan

USAGE = {
    "ic": "/ic @user",
    "comms": "/comms @user",
    "status": "/status <text>",
    "note": "/note <text>",
    "decision": "/decision [--adr] <text>",
    "evidence": "/evidence request-id|tenant|route <value …>",
    "security-impact": "/security-impact yes|no <why>",
    "risk": "/risk tenant-isolation|authz|data-integrity open|cleared <why>",
    "followup": '/followup "<task>" @owner YYYY-MM-DD',
    "public": "/public investigating|identified|monitoring|resolved <text for customers>",
    "publish": "/publish [draft number]",
    "help": "/help",
}

EVIDENCE_KINDS = {
    "request-id": "request_ids",
    "request-ids": "request_ids",
    "tenant": "tenants",
    "tenants": "tenants",
    "route": "routes",
    "routes": "routes",
}
EVIDENCE_LABELS = {"request_ids": "Request IDs", "tenants": "Tenant IDs", "routes": "Impacted routes"}
RISK_KINDS = ("tenant-isolation", "authz", "data-integrity")


@dataclass(frozen=True)
class CommandError:
    command: str
    message: str

    @property
    def usage(self) -> str:
        return USAGE.get(self.command, "")


@dataclass(frozen=True)
class Assign:
    role: str  # front matter key: commander | comms_owner
    login: str


@dataclass(frozen=True)
class Note:
    text: str
    status_update: bool = False  # /status: also sets last_status_at


@dataclass(frozen=True)
class Decision:
    text: str
    adr: bool


@dataclass(frozen=True)
class Evidence:
    kind: str  # impact key: request_ids | tenants | routes
    values: tuple[str, ...]


@dataclass(frozen=True)
class SecurityImpact:
    impacting: bool
    why: str


@dataclass(frozen=True)
class Risk:
    kind: str
    state: str  # open | cleared
    why: str


@dataclass(frozen=True)
class FollowUp:
    task: str
    owner: str
    due: date


@dataclass(frozen=True)
class Help:
    pass


Parsed = Assign | Note | Decision | Evidence | SecurityImpact | Risk | FollowUp | Help


def find_command(body: str) -> tuple[str, str] | None:
    """The command a comment starts with, as (name, rest of the comment after the name); None otherwise.

    A command must be the very start of the comment: the workflow's pre-filter lets only such comments start
    a run (`startsWith(github.event.comment.body, '/')` in incident.yml), since every run that does nothing
    still takes the incident's one pending slot, and a catch-up must apply exactly what a run would have.
    """
    if not body.startswith("/"):
        return None
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    match = COMMAND_LINE.match(lines[0])
    if match is None:
        return None
    return match.group(1), "\n".join([match.group(2), *lines[1:]]).strip()


def _first_line(args: str) -> str:
    return args.split("\n", 1)[0].strip()


def _text(args: str) -> str:
    # A note may run over several lines of the comment; a table cell holds one line.
    return f.clean_line(args, limit=TEXT_LIMIT)


def _login(name: str, token: str) -> str | CommandError:
    match = LOGIN.match(token)
    if not match:
        return CommandError(name, f"{token[:60]!r} is not a GitHub login; write it as @user")
    return match.group(1)


def _value(token: str) -> str:
    return f.clean_line(token, limit=VALUE_LIMIT)


def parse_command(name: str, args: str, today: date) -> Parsed | CommandError:
    """Parse the arguments of one of the commands this module owns."""
    if name in ("ic", "comms"):
        tokens = _first_line(args).split()
        if len(tokens) != 1:
            return CommandError(name, "expected exactly one @user")
        login = _login(name, tokens[0])
        if isinstance(login, CommandError):
            return login
        return Assign("commander" if name == "ic" else "comms_owner", login)
    if name in ("note", "status"):
        text = _text(args)
        if not text:
            return CommandError(name, "the text is empty")
        return Note(text, status_update=name == "status")
    if name == "decision":
        return _decision(args)
    if name == "evidence":
        return _evidence(args)
    if name == "security-impact":
        return _security_impact(args)
    if name == "risk":
        return _risk(args)
    if name == "followup":
        return parse_followup(args, today)
    if name == "help":
        return Help()
    return CommandError(name, f"/{name} is not a command")


def _decision(args: str) -> Decision | CommandError:
    flag = re.compile(r"(?:^|(?<=\s))--adr(?=\s|$)")
    adr = bool(flag.search(args))
    text = _text(flag.sub(" ", args))
    if not text:
        return CommandError("decision", "the decision text is empty")
    return Decision(text, adr)


def _evidence(args: str) -> Evidence | CommandError:
    tokens = [t for t in re.split(r"[\s,]+", _first_line(args)) if t]
    if not tokens or tokens[0].lower() not in EVIDENCE_KINDS:
        found = repr(tokens[0][:40]) if tokens else "nothing"
        return CommandError("evidence", f"found {found} where request-id, tenant or route was expected")
    kind = EVIDENCE_KINDS[tokens[0].lower()]
    values = list(dict.fromkeys(_value(t) for t in tokens[1:] if _value(t)))
    if not values:
        return CommandError("evidence", f"no {tokens[0].lower()} value given")
    if len(values) > MAX_VALUES:
        return CommandError("evidence", f"{len(values)} values; at most {MAX_VALUES} per command")
    if kind == "routes":
        bad = [v for v in values if not v.startswith("/")]
        if bad:
            return CommandError("evidence", f"route {bad[0][:60]!r} does not start with /")
    return Evidence(kind, tuple(values))


def _security_impact(args: str) -> SecurityImpact | CommandError:
    head, _, why = args.strip().partition(" ")
    answer = head.strip().lower()
    if answer not in ("yes", "no"):
        return CommandError("security-impact", f"found {head[:40]!r} where yes or no was expected")
    why_text = _text(why)
    if not why_text:
        return CommandError("security-impact", "say why (the audit trail needs the reason)")
    return SecurityImpact(answer == "yes", why_text)


def _risk(args: str) -> Risk | CommandError:
    parts = args.strip().split(None, 2)
    if not parts or parts[0].lower() not in RISK_KINDS:
        found = repr(parts[0][:40]) if parts else "nothing"
        return CommandError("risk", f"found {found} where one of {', '.join(RISK_KINDS)} was expected")
    if len(parts) < 2 or parts[1].lower() not in ("open", "cleared"):
        found = repr(parts[1][:40]) if len(parts) > 1 else "nothing"
        return CommandError("risk", f"found {found} where open or cleared was expected")
    why = _text(parts[2]) if len(parts) > 2 else ""
    if not why:
        return CommandError("risk", "say why (the audit trail needs the reason)")
    return Risk(parts[0].lower(), parts[1].lower(), why)


_FOLLOWUP = re.compile(r'^["“](?P<task>[^"”]*)["”]\s+(?P<owner>\S+)\s+(?P<due>\S+)\s*$')


def parse_followup(args: str, today: date) -> FollowUp | CommandError:
    """Parse `"<task>" @owner YYYY-MM-DD`; the due date must be from today to a year ahead."""
    line = _first_line(args)
    match = _FOLLOWUP.match(line)
    if not match:
        return CommandError("followup", "expected a quoted task, an @owner and a due date YYYY-MM-DD")
    task = f.clean_line(match.group("task"), limit=200)
    if not task:
        return CommandError("followup", "the task is empty")
    owner = _login("followup", match.group("owner"))
    if isinstance(owner, CommandError):
        return owner
    raw_due = match.group("due")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_due):
        return CommandError("followup", f"due date {raw_due[:40]!r} is not YYYY-MM-DD")
    try:
        due = date.fromisoformat(raw_due)
    except ValueError:
        return CommandError("followup", f"due date {raw_due} is not a calendar date")
    if due < today:
        return CommandError("followup", f"due date {raw_due} is in the past (today is {today.isoformat()} UTC)")
    if due > today + timedelta(days=MAX_FOLLOWUP_DAYS):
        return CommandError("followup", f"due date {raw_due} is more than a year away; pick a nearer date")
    return FollowUp(task, owner, due)


# -- edits of the incident file ------------------------------------------------------------------------

DECISION_HEADER = "| time (UTC) | who | decision | ADR |"
FOLLOWUP_HEADER = "| task | owner | due | issue |"


@dataclass(frozen=True)
class Context:
    """Who did what, when, and where: the parts every row carries."""

    actor: str
    at: str  # UTC timestamp
    link: str  # markdown link to the comment
    key: str  # event key (idempotency)


def _row(ctx: Context, what: str) -> f.TimelineRow:
    return f.TimelineRow(ctx.at, ctx.actor, what, ctx.link, ctx.key)


def append_section_line(text: str, section: str, line: str) -> str:
    """Append a line after the last non-blank line of a `## section` (creating the section if it was removed)."""
    front, body = f.split(text)
    lines = body.split("\n")
    start = next((i for i, item in enumerate(lines) if item.strip() == f"## {section}"), None)
    if start is None:
        while lines and lines[-1] == "":
            lines.pop()
        lines += ["", f"## {section}", "", line, ""]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        at = end
        while at > start + 1 and lines[at - 1].strip() == "":
            at -= 1
        lines.insert(at, line)
        if at == start + 1:
            lines.insert(at, "")
    return f.FENCE + "\n" + front + f.FENCE + "\n" + "\n".join(lines)


def _who(actor: str) -> str:
    return "@" + actor


def decision_row(ctx: Context, text: str, adr_link: str = "") -> str:
    """One Decision log line; the ADR cell is a link built by our own code, or a dash."""
    cells = [f.escape_cell(ctx.at), _who(f.escape_cell(ctx.actor)), f.escape_cell(text), adr_link or "—"]
    return "| " + " | ".join(cells) + " |"


def apply(text: str, command: Parsed, ctx: Context) -> str | None:
    """The incident text after `command`, or None when this event is already recorded (a replay)."""
    if f.has_event(text, ctx.key):
        return None
    if isinstance(command, Assign):
        fields = f.read_fields(text)
        previous = fields.get(command.role)
        label = "Incident commander" if command.role == "commander" else "Communications owner"
        was = f" (was @{previous})" if previous and previous != command.login else ""
        text = f.set_fields(text, {command.role: command.login})
        return f.append_timeline(text, _row(ctx, f"{label}: @{command.login}{was}"))
    if isinstance(command, Note):
        if command.status_update:
            text = f.set_fields(text, {"last_status_at": ctx.at})
            return f.append_timeline(text, _row(ctx, f"Status update: {command.text}"))
        return f.append_timeline(text, _row(ctx, f"Note: {command.text}"))
    if isinstance(command, Decision):
        text = f.append_table_row(text, "Decision log", decision_row(ctx, command.text), DECISION_HEADER)
        return f.append_timeline(text, _row(ctx, f"Decision: {command.text}"))
    if isinstance(command, Evidence):
        return _apply_evidence(text, command, ctx)
    if isinstance(command, SecurityImpact):
        answer = "yes" if command.impacting else "no"
        text = f.set_fields(text, {"security_impacting": command.impacting})
        why = f.escape_cell(command.why)
        line = f"- Security-impacting behavior changed: **{answer}** — {why} ({ctx.at}, @{ctx.actor})"
        text = append_section_line(text, "Evidence", line)
        text = f.append_timeline(text, _row(ctx, f"Security impact: {answer} — {command.why}"))
        fields = f.read_fields(text)
        if command.impacting and breach.tenant_isolation_at_risk(fields) and breach.block(fields) is None:
            clock = breach.start(fields, ctx)
            text = f.set_fields(text, {"notification": clock})
            what = (
                f"Breach-notification clock started: aware at {clock['aware_at']}, authority and tenants to be "
                f"notified by {clock['deadline']} (72 hours)"
            )
            text = f.append_timeline(text, f.TimelineRow(ctx.at, "incidentops", what, ctx.link, ""))
        return text
    if isinstance(command, Risk):
        fields = f.read_fields(text)
        risks = dict(fields.get("risks") or {}) if isinstance(fields.get("risks"), dict) else {}
        risks[command.kind] = command.state
        text = f.set_fields(text, {"risks": risks})
        return f.append_timeline(text, _row(ctx, f"Risk {command.kind}: {command.state} — {command.why}"))
    raise TypeError(f"{type(command).__name__} is not an incident file edit")  # FollowUp/Help have own flows


def _apply_evidence(text: str, command: Evidence, ctx: Context) -> str:
    fields = f.read_fields(text)
    impact: dict[str, Any] = dict(fields.get("impact") or {}) if isinstance(fields.get("impact"), dict) else {}
    current = impact.get(command.kind)
    # `unknown` (what the form left empty) is replaced by the first real values.
    known = [str(v) for v in current] if isinstance(current, list) else []
    added = [v for v in command.values if v not in known]
    impact[command.kind] = known + added
    updates: dict[str, Any] = {"impact": impact}
    unknown = fields.get("unknown_fields")
    label = EVIDENCE_LABELS[command.kind]
    if isinstance(unknown, list) and label in unknown:
        updates["unknown_fields"] = [u for u in unknown if u != label]
    text = f.set_fields(text, updates)
    shown = ", ".join("`" + v.replace("`", "'") + "`" for v in command.values)
    line = f"- {label} added by @{ctx.actor} at {ctx.at}: {f.escape_cell(shown)}"
    text = append_section_line(text, "Evidence", line)
    listed = ", ".join(command.values)
    note = f" ({len(command.values) - len(added)} already listed)" if len(added) < len(command.values) else ""
    return f.append_timeline(text, _row(ctx, f"Evidence {label.lower()}: {listed}{note}"))


def followup_row(task: str, owner: str, due: date, issue_link: str) -> str:
    """One Follow-ups table line."""
    return f"| {f.escape_cell(task)} | @{f.escape_cell(owner)} | {due.isoformat()} | {issue_link} |"


def apply_followup(text: str, command: FollowUp, issue_link: str, ctx: Context) -> str | None:
    """Add the follow-up row and its timeline row, once per event."""
    if f.has_event(text, ctx.key):
        return None
    text = f.append_table_row(
        text, "Follow-ups", followup_row(command.task, command.owner, command.due, issue_link), FOLLOWUP_HEADER
    )
    what = f"Follow-up: {command.task} (owner @{command.owner}, due {command.due.isoformat()})"
    return f.append_timeline(text, f.TimelineRow(ctx.at, ctx.actor, what, ctx.link, ctx.key))


def slug(text: str, limit: int = 50) -> str:
    """An adr-tools style file-name slug: lower-case words joined by dashes."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out or "decision"


ADR_NAME = re.compile(r"^(\d{4})-[^/]*\.md$")


def next_adr_number(names: list[str]) -> int:
    """One more than the highest `NNNN-*.md` number among file names (adr-tools numbering)."""
    numbers = [int(m.group(1)) for m in (ADR_NAME.match(n.rsplit("/", 1)[-1]) for n in names) if m]
    return max(numbers, default=0) + 1
