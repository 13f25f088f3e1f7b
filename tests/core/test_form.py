from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML

from incidentops.core.form import (
    DEFAULT_FIELDS,
    fields_from_template,
    parse_form_body,
    parse_utc,
    read_intake,
)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")
ENVS = ("production", "staging")
NOW = datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC)

# A body as GitHub renders it from .github/ISSUE_TEMPLATE/incident.yml (### label, blank line, value).
FULL_BODY = """### Summary

Tenant A can read tenant B's reports.
Seen by support at 03:20.

### Environment

production

### Start time (UTC)

2026-11-27T03:12:09Z

### Impacted routes

/v1/reports
/v1/reports/export

### Tenant IDs

t-100, t-200

### Request IDs

req-aaa
req-bbb

### Request volume

1200/min

### Affected services

api-worker, user-portal

### Risk assessment

- [x] Tenant isolation is at risk
- [X] A deploy regression is suspected
"""


def test_default_fields_match_the_shipped_issue_form() -> None:
    doc = YAML(typ="safe").load((ROOT / ".github/ISSUE_TEMPLATE/incident.yml").read_text())
    assert fields_from_template(doc) == DEFAULT_FIELDS


def test_every_field_is_parsed_from_real_form_output() -> None:
    intake = read_intake(FULL_BODY, SERVICES, ENVS, now=NOW)
    assert intake.summary == "Tenant A can read tenant B's reports.\nSeen by support at 03:20."
    assert intake.environment == "production"
    assert intake.started_at == "2026-11-27T03:12:09Z"
    assert intake.routes == ["/v1/reports", "/v1/reports/export"]
    assert intake.tenants == ["t-100", "t-200"]
    assert intake.request_ids == ["req-aaa", "req-bbb"]
    assert intake.request_volume == "1200/min"
    assert intake.services == ["api-worker", "user-portal"]
    assert intake.tenant_isolation_risk is True
    assert intake.deploy_regression_suspected is True  # upper-case X, as older GitHub rendered it
    assert intake.missing == []
    assert intake.problems == []


def test_no_response_and_unchecked_boxes_are_empty_and_listed_as_missing() -> None:
    body = FULL_BODY.replace("req-aaa\nreq-bbb", "_No response_").replace("1200/min", "None")
    body = body.replace("- [x] Tenant", "- [ ] Tenant").replace("- [X] A deploy", "- [ ] A deploy")
    intake = read_intake(body, SERVICES, ENVS, now=NOW)
    assert intake.request_ids == []
    assert intake.request_volume is None
    assert intake.missing == ["Request IDs", "Request volume"]
    assert not intake.tenant_isolation_risk and not intake.deploy_regression_suspected


def test_crlf_fences_and_user_headings_are_handled() -> None:
    body = FULL_BODY.replace("Seen by support at 03:20.", "### not a field\n```\ncode\n```").replace("\n", "\r\n")
    values = parse_form_body(body)
    assert "### not a field" in values["summary"]  # an unknown ### line stays with the field above
    assert values["environment"] == "production"


def test_malformed_fields_become_unknown_with_a_problem_each() -> None:
    body = (
        FULL_BODY.replace("2026-11-27T03:12:09Z", "yesterday-ish")
        .replace("api-worker, user-portal", "api-worker, mainframe")
        .replace("production", "prod-eu")
    )
    intake = read_intake(body, SERVICES, ENVS, now=NOW)
    assert intake.started_at is None and intake.environment is None
    assert intake.services == ["api-worker"]
    assert "Start time (UTC)" in intake.missing and "Environment" in intake.missing
    joined = "\n".join(intake.problems)
    assert "yesterday-ish" in joined and "mainframe" in joined and "prod-eu" in joined


def test_an_empty_or_foreign_body_still_yields_an_intake() -> None:
    for body in ("", "just some text", "### Summary", "\x00\x01"):
        intake = read_intake(body, SERVICES, ENVS, now=NOW)
        assert "Summary" in intake.missing


def test_future_and_absurd_dates_are_rejected() -> None:
    for text in ("2999-01-01T00:00:00Z", "1970-01-01T00:00:00Z"):
        intake = read_intake(FULL_BODY.replace("2026-11-27T03:12:09Z", text), SERVICES, ENVS, now=NOW)
        assert intake.started_at is None
        assert intake.problems


def test_parse_utc_accepts_common_spellings() -> None:
    expected = datetime(2026, 11, 27, 3, 12, 0, tzinfo=UTC)
    for text in (
        "2026-11-27T03:12:00Z",
        "2026-11-27 03:12 UTC",
        "2026-11-27T04:12:00+01:00",
        "2026-11-27 03:12",
    ):
        assert parse_utc(text) == expected, text
    assert parse_utc("27/11/2026") is None
