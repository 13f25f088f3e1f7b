"""The GitOps ledger is edited round-trip: comments, order and untouched lines survive byte for byte."""

import difflib
from pathlib import Path

from incidentops.core.ledger import dump_ledger, load_ledger
from incidentops.core.rollback import Plan, ServicePlan, ledger_with_targets, pins_from_doc

ROOT = Path(__file__).resolve().parents[2]
LEDGER = (ROOT / "deployments/production.yaml").read_text()


def test_an_unchanged_ledger_round_trips_byte_for_byte() -> None:
    annotated = LEDGER.replace("  api-worker:\n", "  # owned by the reports team\n  api-worker:   # pinned by hand\n")
    assert dump_ledger(load_ledger(annotated)) == annotated


def test_a_rollback_pin_changes_only_that_services_pin_lines() -> None:
    annotated = LEDGER.replace("  api-worker:\n", "  # owned by the reports team\n  api-worker:\n")
    plan = Plan("INC-0007", [ServicePlan("api-worker", "worker", "v-bad", "v-good", "why")])
    new = dump_ledger(ledger_with_targets(load_ledger(annotated), plan, "alice", "2026-11-27T03:20:00Z"))
    before, after = annotated.split("\n"), new.split("\n")
    diff = list(difflib.ndiff(before, after))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert removed == [
        "    version: 92928297-c2eb-5e8f-b276-70d1d9fd00d6",
        "    set_by: carol",
        "    set_at: '2026-11-26T21:00:00Z'",
    ]
    assert added == [
        "    version: v-good",
        "    set_by: alice",
        "    set_at: '2026-11-27T03:20:00Z'",
        "    incident: INC-0007",
    ]
    assert "  # owned by the reports team" in after  # comments survive
    assert list(pins_from_doc(load_ledger(new), "c")) == [
        "api-worker",
        "ingest-worker",
        "queue-consumer",
        "admin-pages",
        "user-portal",
    ]
