"""The breach-notification clock: the pure rules, and end to end against the sandbox on a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incidentops.core import breach
from incidentops.core import incidentfile as f
from incidentops.core.commands import Context
from incidentops.core.exit_criteria import Facts, evaluate
from incidentops.core.lint import lint_text
from incidentops.core.report import parse_incident
from incidentops.flows.remind import run_reminders
from tests.commands.helpers import comment, declared, path_of
from tests.flows.conftest import NOW, World

AWARE = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def clock_fields(**more: object) -> dict:
    block = {"aware_at": "2026-11-27T03:00:00Z", "deadline": "2026-11-30T03:00:00Z", "tenants": ["t-100", "t-200"]}
    return {"id": "INC-0009", "impact": {"tenants": ["t-100", "t-200"]}, "notification": block | dict(more)}


def test_parse_says_what_is_wrong() -> None:
    assert breach.parse("authority DPA case 2026-117") == breach.Authority("DPA case 2026-117")
    assert breach.parse("tenant t-100, t-200 t-100") == breach.Tenants(("t-100", "t-200"))
    assert breach.parse("waive no personal data was exposed") == breach.Waive("no personal data was exposed")
    for args, problem in (("authority", "reference"), ("tenant", "tenant IDs"), ("waive", "reason"), ("x y", "'x'")):
        parsed = breach.parse(args)
        assert isinstance(parsed, breach.Problem) and problem in parsed.message


def test_awareness_is_the_declaration_or_the_note_whichever_came_first() -> None:
    fields = {"declared_at": "2026-11-27T03:14:40Z", "impact": {"tenants": ["t-100"]}}
    later = breach.start(fields, Context("a", "2026-11-27T05:00:00Z", "", "k"))
    assert later["aware_at"] == "2026-11-27T03:14:40Z" and later["deadline"] == "2026-11-30T03:14:40Z"
    earlier = breach.start({"declared_at": "2026-11-27T09:00:00Z"}, Context("a", "2026-11-27T05:00:00Z", "", "k"))
    assert earlier["aware_at"] == "2026-11-27T05:00:00Z" and earlier["tenants"] == []


def test_reminders_at_24_48_66_hours_and_at_the_deadline_while_anything_is_open() -> None:
    fields = clock_fields()
    assert breach.due(fields, AWARE + timedelta(hours=23, minutes=59)) is None
    assert [breach.due(fields, AWARE + timedelta(hours=h))[0] for h in (24, 30, 48, 66, 72)] == [  # type: ignore[index]
        "breach-24h",
        "breach-24h",
        "breach-48h",
        "breach-66h",
        "breach-deadline-passed",
    ]
    _, facts = breach.due(fields, AWARE + timedelta(hours=50))  # type: ignore[misc]
    assert facts["open"] == ["the supervisory authority", "tenant t-100", "tenant t-200"] and facts["left_hours"] == 22
    done = clock_fields(authority={"by": "a", "at": "2026-11-27T10:00:00Z"}, notified={"t-100": {}, "t-200": {}})
    assert breach.due(done, AWARE + timedelta(hours=48)) is None and breach.closing_problem(done) is None
    assert breach.time_to_notify(done) == timedelta(hours=7)
    waived = clock_fields(waiver={"by": "root", "at": "2026-11-27T04:00:00Z", "reason": "no personal data"})
    assert breach.due(waived, AWARE + timedelta(hours=48)) is None and breach.closing_problem(waived) is None


def test_a_tenant_added_to_the_evidence_later_joins_the_checklist() -> None:
    fields = clock_fields(authority={"by": "a", "at": "2026-11-27T10:00:00Z"}, notified={"t-100": {}, "t-200": {}})
    fields["impact"] = {"tenants": ["t-100", "t-200", "t-300"]}
    assert breach.open_items(fields) == ["tenant t-300"]
    assert "t-300 not notified" in (breach.closing_problem(fields) or "")


def test_closing_is_gated_by_the_exit_criteria_and_by_lint() -> None:
    unmet = evaluate(Facts(clock_fields(), decision_rows=1)).unmet
    assert [c.code for c in unmet if c.code == "notification"] == ["notification"]
    assert "/notification waive <reason>" in next(c.message for c in unmet if c.code == "notification")
    done = clock_fields(authority={"by": "a", "at": "2026-11-27T10:00:00Z"}, notified={"t-100": {}, "t-200": {}})
    assert all(c.ok for c in evaluate(Facts(done, decision_rows=1)).checks if c.code == "notification")
    assert [c.code for c in evaluate(Facts({"id": "INC-1"}, decision_rows=1)).checks if c.code == "notification"] == []


def rows(world: World, number: int) -> list[str]:
    return [r[2] for r in f.timeline_rows(world.bare_file(path_of(number)))]


def notification(world: World, number: int) -> dict:
    return f.read_fields(world.bare_file(path_of(number)))["notification"]


def breach_posted(world: World, at: datetime) -> list[str]:
    return [k for k in run_reminders(world.ports(at)).details.get("posted", []) if ":breach-" in k]


def test_the_clock_end_to_end_with_reminders_checklist_and_report(world: World) -> None:
    number = declared(world)  # the form: tenant isolation at risk, tenants t-100 and t-200
    inc = f"INC-{number:04d}"
    world.run(comment(world, number, "/comms @reader"))
    # Before any security note there is no clock, and the checklist command says why.
    early = world.run(comment(world, number, "/notification tenant t-100", "reader"))
    assert early.status == "rejected" and "no breach-notification clock" in early.message
    world.run(comment(world, number, "/security-impact yes t-100 read t-200's reports"), now=NOW + timedelta(hours=1))
    clock = notification(world, number)
    assert clock["aware_at"] == "2026-11-27T03:14:40Z"  # the declaration came first
    assert clock["deadline"] == "2026-11-30T03:14:40Z" and clock["tenants"] == ["t-100", "t-200"]
    assert any(r.startswith("Breach-notification clock started") for r in rows(world, number))
    # A second security note does not restart the clock.
    world.run(comment(world, number, "/security-impact yes also exports"), now=NOW + timedelta(hours=2))
    assert notification(world, number)["aware_at"] == "2026-11-27T03:14:40Z"

    assert breach_posted(world, NOW + timedelta(hours=23, minutes=59)) == []
    assert breach_posted(world, NOW + timedelta(hours=24)) == [f"remind:{inc}:breach-24h"]
    assert breach_posted(world, NOW + timedelta(hours=25)) == []  # reminded once

    # The comms owner (read role) ticks the checklist; who and when are recorded.
    at = NOW + timedelta(hours=30)
    assert world.run(comment(world, number, "/notification tenant t-100", "reader"), now=at).status == "recorded"
    assert notification(world, number)["notified"] == {"t-100": {"by": "reader", "at": "2026-11-28T09:14:40Z"}}
    unknown = world.run(comment(world, number, "/notification tenant t-999", "reader"))
    assert unknown.status == "rejected" and "not among the affected tenants" in unknown.message
    refused = world.run(comment(world, number, "/notification waive it was a drill", "oncall-maintain"))
    assert refused.status == "refused" and "notification_waive needs 'admin'" in refused.message
    assert "waiver" not in notification(world, number)

    assert breach_posted(world, NOW + timedelta(hours=48)) == [f"remind:{inc}:breach-48h"]
    assert breach_posted(world, NOW + timedelta(hours=66)) == [f"remind:{inc}:breach-66h"]
    last = next(c for c in reversed(world.comments(number)) if f"remind:{inc}:breach-66h" in c)
    assert "6 hours left" in last and "the supervisory authority, tenant t-200" in last and "@reader" in last

    notified_at = NOW + timedelta(hours=67)
    world.run(comment(world, number, "/notification authority DPA case 2026-117", "oncall-write"), now=notified_at)
    world.run(comment(world, number, "/notification tenant t-200", "reader"), now=notified_at)
    assert rows(world, number)[-1] == "Breach notification: tenant(s) notified: t-200; checklist complete"
    assert breach_posted(world, NOW + timedelta(hours=72)) == []  # nothing open: no deadline reminder
    text = world.bare_file(path_of(number))
    assert breach.closing_problem(f.read_fields(text)) is None
    assert lint_text(path_of(number), text) == []

    # The report shows the time to notify, and no tenant ID on the public site.
    page = parse_incident(f"{inc}.md", text.encode())
    assert not isinstance(page, type(None)) and page.summary.time_to_notify == timedelta(hours=67)  # type: ignore[union-attr]
    assert page.summary.tenants_notified == (2, 2)  # type: ignore[union-attr]


def test_an_admin_waiver_with_a_reason_releases_the_gate(world: World) -> None:
    number = declared(world)
    world.run(comment(world, number, "/security-impact yes reports crossed tenants"))
    assert breach.closing_problem(f.read_fields(world.bare_file(path_of(number))))
    assert world.run(comment(world, number, "/notification waive drill on staging data", "oncall-admin")).status == (
        "recorded"
    )
    fields = f.read_fields(world.bare_file(path_of(number)))
    assert fields["notification"]["waiver"]["reason"] == "drill on staging data"
    assert breach.closing_problem(fields) is None
    assert breach_posted(world, NOW + timedelta(hours=30)) == []


def test_no_clock_without_a_tenant_isolation_risk(world: World) -> None:
    from tests.commands.helpers import NO_ROLLBACK

    body = NO_ROLLBACK.replace("- [x] Tenant isolation is at risk", "- [ ] Tenant isolation is at risk")
    number = declared(world, body=body)
    world.run(comment(world, number, "/security-impact yes an admin token leaked"))
    assert "notification" not in f.read_fields(world.bare_file(path_of(number)))
