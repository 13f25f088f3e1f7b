from pathlib import Path

import pytest
from ruamel.yaml import YAML

from incidentops.config import load_config, parse_config
from incidentops.errors import ConfigError, IncidentOpsError

ROOT = Path(__file__).resolve().parents[2]


def shipped() -> dict:
    return YAML(typ="safe").load((ROOT / "incidentops.yaml").read_text())


def test_shipped_config_has_the_five_playbook_services() -> None:
    config = load_config(ROOT)
    assert [(s.name, s.kind) for s in config.services] == [
        ("api-worker", "worker"),
        ("ingest-worker", "worker"),
        ("queue-consumer", "worker"),
        ("admin-pages", "pages"),
        ("user-portal", "pages"),
    ]
    assert config.severities["sev-1"] == "SEV-1"
    assert config.allows("declare", "triage") and not config.allows("declare", "read")
    assert config.allows("rollback_apply", "admin") and not config.allows("rollback_apply", "write")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(colour="red"), "colour: found 'an unknown key'"),
        (
            lambda d: d["services"][1].update(kind="lambda"),
            "services[1].kind: found 'lambda', expected one of worker, pages",
        ),
        (
            lambda d: d["environments"][0].update(zone_id="abc"),
            "environments[0].zone_id: found 'abc', expected a 32-character hex id",
        ),
        (lambda d: d["permissions"].update(declare="superuser"), "permissions.declare: found 'superuser'"),
        (lambda d: d["permissions"].update(deploy="write"), "permissions.deploy: found 'an unknown key'"),
        (
            lambda d: d["severities"].update({"sev-4": "critical"}),
            "severities.sev-4: found 'critical', expected a severity like SEV-1",
        ),
        (lambda d: d.pop("services"), "services: found 'nothing', expected this required key"),
        (
            lambda d: d["services"].append(dict(d["services"][0])),
            "services[5].name: found 'api-worker', expected a name not used",
        ),
    ],
)
def test_each_error_names_the_file_the_key_what_was_found_and_expected(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    data = shipped()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "incidentops.yaml: " + expected in str(info.value)


def test_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"incidentops\.yaml not found"):
        load_config(tmp_path)
    (tmp_path / "incidentops.yaml").write_text("services: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)


def test_optional_sections_are_validated_and_exposed() -> None:
    config = load_config(ROOT)
    assert config.extra["exit_criteria"]["baseline_lag_minutes"] == 10080
    assert config.extra["containment"]["expiry_hours"] == 4.0
    data = shipped()
    data["exit_criteria"]["latency_tolerance"] = "a lot"
    data["containment"]["expire_hours"] = 2
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "exit_criteria.latency_tolerance: found 'a lot', expected a non-negative number" in str(info.value)
    assert "containment.expire_hours: found 'an unknown key'" in str(info.value)


def test_the_story_clock_is_refused_outside_the_sandbox() -> None:
    from datetime import UTC, datetime

    from incidentops.wiring import clock_from_env

    local = {"GITHUB_API_URL": "http://127.0.0.1:9/api/v3", "CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:9/client/v4"}
    clock = clock_from_env({**local, "INCIDENTOPS_SANDBOX_NOW": "2026-11-27T03:14:40Z"})
    assert datetime(2026, 11, 27, 3, 14, 40, tzinfo=UTC) <= clock() < datetime(2026, 11, 27, 3, 15, 40, tzinfo=UTC)
    with pytest.raises(IncidentOpsError, match="honoured only against the sandbox"):
        clock_from_env({"GITHUB_API_URL": "https://api.github.com", "INCIDENTOPS_SANDBOX_NOW": "2026-11-27T03:14:40Z"})
    assert clock_from_env({})().year >= 2026  # no override: the real clock


def test_the_config_is_read_by_the_pure_yaml_parser_as_always(tmp_path: Path) -> None:
    # ruamel.yaml.clib (installed for the runbook's blocks) would make YAML(typ="safe") use libyaml, which refuses
    # YAML 1.2 that the pure parser reads, such as a ':' inside a flow collection's plain scalar.
    text = (ROOT / "incidentops.yaml").read_text()
    old = "{name: api-worker, kind: worker, cloudflare_name: api-worker, hosts: [api]}"
    assert old in text
    (tmp_path / "incidentops.yaml").write_text(text.replace(old, old.replace("hosts: [api]", "hosts: [api], x: [a:b]")))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "not valid YAML" not in str(info.value) and "services[0].x: found 'an unknown key'" in str(info.value)
