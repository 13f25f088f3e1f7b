"""The published site is public: tenant IDs, request IDs and security notes stay out of it by default."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from incidentops.config import parse_config
from incidentops.core import commands as c
from incidentops.core import incidentfile as f
from incidentops.flows.report import build_report

from .builders import make_incident

TENANTS = ("t-1001", "t-2002")
REQUEST = "8e1f0c2a9b7d6e54-AMS"


def incident_with_private_evidence() -> str:
    """A declared incident whose form and commands recorded tenants, a request ID and a security note, through
    the same edits the product makes."""
    text = make_incident(
        7,
        summary="Tenant t-1001 sees report rows of tenant t-2002.",
        fields={"impact": {"routes": ["/v1/reports"], "tenants": list(TENANTS), "request_ids": [REQUEST]}},
    )
    today = date(2026, 11, 27)
    for n, body in enumerate(
        (
            "/evidence tenant t-3003",
            f"/evidence request-id {REQUEST}",
            "/security-impact yes tenant t-3003 could read other tenants' rows",
            "/note cache flushed on api-worker",
        )
    ):
        name, args = c.find_command(body) or ("", "")
        parsed = c.parse_command(name, args, today)
        assert not isinstance(parsed, c.CommandError), parsed
        ctx = c.Context("oncall-write", f"2026-11-27T03:2{n}:00Z", f"[comment](https://x/{n})", f"comment-{n}")
        edited = c.apply(text, parsed, ctx)
        assert edited is not None
        text = edited
    return text


def site(tmp_path: Path, private: bool) -> str:
    incidents = tmp_path / "incidents"
    incidents.mkdir(parents=True, exist_ok=True)
    (incidents / "INC-0007.md").write_text(incident_with_private_evidence(), encoding="utf-8")
    out = tmp_path / ("private" if private else "public")
    build_report(incidents, out, private=private)
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.html")))


def test_the_public_site_withholds_tenants_request_ids_and_security_notes(tmp_path: Path) -> None:
    text = incident_with_private_evidence()
    assert all(value in text for value in (*TENANTS, "t-3003", REQUEST, "could read other tenants"))
    html = site(tmp_path, private=False)
    for value in (*TENANTS, "t-3003", REQUEST, "could read other tenants"):
        assert value not in html, value
    assert "withheld from the published site" in html
    assert "cache flushed on api-worker" in html  # the rest of the record is published as written
    assert "/v1/reports" in html


def test_a_private_site_shows_the_whole_record(tmp_path: Path) -> None:
    html = site(tmp_path, private=True)
    assert all(value in html for value in (*TENANTS, "t-3003", REQUEST))


def test_report_private_is_a_boolean_in_incidentops_yaml() -> None:
    base = {
        "version": 1,
        "severities": {"sev-1": "SEV-1"},
        "services": [{"name": "api-worker", "kind": "worker"}],
        "environments": [{"name": "production", "account_id": "0" * 32, "zone_id": "1" * 32}],
        "permissions": {},
    }
    assert parse_config(base).report_is_private is False
    assert parse_config({**base, "report": {"private": True}}).report_is_private is True
    try:
        parse_config({**base, "report": {"private": "yes"}})
    except Exception as exc:  # ConfigError names the key and what was expected
        assert "report.private" in str(exc) and "true or false" in str(exc)
    else:
        raise AssertionError("a non-boolean report.private was accepted")
    assert f.read_fields(incident_with_private_evidence())["security_impacting"] is True
