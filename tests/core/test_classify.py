"""Which `issues` events declare an incident, using GitHub's own example payload (label renamed to sev-1)."""

import copy
import json
from pathlib import Path

import pytest

from incidentops.config import load_config
from incidentops.core.declare import NotForUs, SeverityChange, classify, incident_id
from incidentops.core.events import parse_event

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = json.loads((ROOT / "tests/fixtures/webhooks/issues.labeled.json").read_text())
CONFIG = load_config(ROOT)


def variant(**changes: object) -> dict:
    payload = copy.deepcopy(PAYLOAD)
    for dotted, value in changes.items():
        target = payload
        *path, last = dotted.split("__")
        for key in path:
            target = target[key]
        target[last] = value
    return payload


def test_the_real_payload_declares_sev1() -> None:
    assert classify(parse_event("issues", PAYLOAD), CONFIG) == SeverityChange("SEV-1")


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("issues", variant(label={"name": "bug"}), "not a severity label"),
        ("issues", variant(label={"name": "SEV-1 "}), "not a severity label"),  # look-alike
        ("issues", variant(issue__pull_request={"url": "x"}), "is a pull request"),
        ("issues", variant(sender={"login": "github-actions[bot]", "type": "Bot"}), "bot"),
        ("issues", variant(issue__state="closed"), "is closed"),
        ("issues", variant(action="unlabeled"), "does not declare"),
        ("issue_comment", PAYLOAD, "not an issues event"),
        ("issues", variant(issue=None), "no issue"),
    ],
)
def test_not_for_us(name: str, payload: dict, reason: str) -> None:
    decision = classify(parse_event(name, payload), CONFIG)
    assert isinstance(decision, NotForUs) and reason in decision.reason


def test_incident_ids_are_derived_from_issue_numbers() -> None:
    assert incident_id(7) == "INC-0007" and incident_id(12345) == "INC-12345"


def test_replayed_event_has_the_same_key_and_a_new_labelling_a_new_one() -> None:
    first = parse_event("issues", PAYLOAD)
    assert parse_event("issues", copy.deepcopy(PAYLOAD)).key == first.key
    later = parse_event("issues", variant(issue__updated_at="2019-05-15T16:00:00Z"))
    assert later.key != first.key
