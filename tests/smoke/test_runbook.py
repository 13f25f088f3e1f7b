"""The runbook's ```smoke blocks: the shipped file, strict parsing with file and line, and the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidentops.core import runbook as rb
from incidentops.sandbox.services import TENANT_A_TOKEN, TENANT_B_TOKEN

ROOT = Path(__file__).resolve().parents[2]
X = "environment: production\nchecks:\n  - name: x\n    service: api-worker\n"
SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")


def parse(block: str, prose: str = "# Runbook\n\nSome steps.\n\n") -> rb.Runbook:
    return rb.parse_runbook(f"{prose}```smoke\n{block}```\n", SERVICES, "runbook.md")


def error(block: str) -> str:
    with pytest.raises(rb.RunbookError) as caught:
        parse(block)
    return str(caught.value)


def test_the_shipped_runbook_covers_every_service_and_keeps_secrets_out() -> None:
    text = (ROOT / rb.RUNBOOK_PATH).read_text()
    book = rb.parse_runbook(text, SERVICES)
    production = book.for_environment("production")
    assert {c.service for c in production} == set(SERVICES)
    isolation = [c for c in production if c.isolation]
    assert len(isolation) >= 2
    for check in isolation:
        assert set(check.expect.status) <= {403, 404} and check.expect.not_contains
        assert any(name.startswith("SMOKE_TENANT_") for name in check.secret_names())
    assert book.environments == ["production", "staging"]
    assert TENANT_A_TOKEN not in text and TENANT_B_TOKEN not in text
    # Line numbers point at the check's first line.
    first = production[0]
    assert text.split("\n")[first.line - 1].strip() == f"- name: {first.name}"


def test_a_minimal_check_gets_defaults() -> None:
    book = parse("environment: production\nchecks:\n  - name: up\n    service: api-worker\n    url: '{api}/healthz'\n")
    (check,) = book.checks
    assert (check.method, check.expect.status, check.line, check.where) == ("GET", (200,), 8, "runbook.md:8")


@pytest.mark.parametrize(
    ("block", "line", "problem"),
    [
        (
            X + "    url: '{api}/'\n    expect: {status: [200}\n",
            11,
            "not valid YAML",
        ),
        (
            "environment: production\nchecks:\n  - name: x\n    service: mainframe\n    url: '{api}/'\n",
            9,
            "unknown service 'mainframe' (known: api-worker",
        ),
        (
            X + "    url: '{api}/'\n    expect:\n      stauts: 200\n",
            12,
            "unknown expectation 'stauts'",
        ),
        (
            X + "    url: '{api}/'\n    expect: {status: ok}\n",
            11,
            "`status` must be an HTTP status",
        ),
        (
            X + "    url: '/healthz'\n",
            10,
            "`url` must start with a base URL name",
        ),
        (
            X + "    url: '{api}/'\n    headers: {Authorization: Bearer abc123}\n",
            11,
            "credential written in the file",
        ),
        (
            X + "    url: '{api}/'\n    headers: {X-Trace: '${HOME}'}\n",
            11,
            "secrets must come from SMOKE_* variables",
        ),
        (
            X + "    url: '{api}/'\n    tenant_isolation: {foreign_ids: [t-2]}\n    expect: {status: 200}\n",
            12,
            "must expect the request refused",
        ),
        (
            X + "    url: '{api}/'\n    tenant_isolation: {}\n",
            11,
            "needs `foreign_ids`",
        ),
        ("environment: production\nchecks: []\n", 7, "`checks` must be a non-empty list"),
        ("checks:\n  - name: x\n", 6, "`environment` must name an environment"),
        (
            X + "    url: '{api}/'\n  - name: x\n    service: api-worker\n    url: '{api}/'\n",
            11,
            "'x' is defined twice",
        ),
        (
            X + "    method: FETCH\n    url: '{api}/'\n",
            10,
            "method 'FETCH'",
        ),
    ],
)
def test_a_malformed_block_names_file_line_and_problem(block: str, line: int, problem: str) -> None:
    message = error(block)
    assert f"runbook.md:{line}: " in message, message
    assert problem in message, message


def test_every_problem_is_listed_not_just_the_first() -> None:
    message = error(
        "environment: production\nchecks:\n  - name: a\n    service: nope\n    url: '{api}/'\n"
        "  - name: b\n    service: api-worker\n    url: '{api}/'\n    expect: {max_latency_ms: -1}\n"
    )
    assert "runbook.md:9:" in message and "runbook.md:14:" in message


RICH = (
    "environment: production\nchecks:\n"
    "  - name: reports\n    service: api-worker\n    method: post\n    url: '{api}/v1/reports?x=1'\n"
    "    headers: {Authorization: 'Bearer ${SMOKE_TENANT_A_TOKEN}', X-Count: 3}\n"
    "    json_body: {tenant: t-100, flags: [yes, on, 010, 0o10, 1_000, ~, .5, 1e3]}\n"
    "    tenant_isolation:\n      foreign_ids: [t-200, 7]\n"
    "    expect:\n      status: [403, 404]\n      json: {a.b: true, 'c.*.d': [1, null], when: 2001-12-14}\n"
    '      body_not_contains: "x\\u00e9\\/y"\n      max_latency_ms: 900\n'
    "  # a comment between checks\n"
    "  - {name: flow, service: user-portal, url: 'https://portal.example.com/', expect: {body_contains: [a, b]}}\n"
)


def test_the_c_parser_is_installed_and_reads_blocks_as_the_pure_parser_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lock installs ruamel's C parser (ruamel.yaml.clib) on CPython; it must read every block exactly as the
    # pure parser would: the same values, the same lines, the same order.
    assert rb.c_parser_available()
    shipped = (ROOT / rb.RUNBOOK_PATH).read_text()
    fast = [rb.parse_runbook(shipped, SERVICES), parse(RICH)]
    monkeypatch.setattr(rb, "c_parser_available", lambda: False)
    assert [rb.parse_runbook(shipped, SERVICES), parse(RICH)] == fast
    reports = fast[1].checks[0]
    assert reports.json_body == '{"flags": ["yes", "on", 10, 8, 1000, null, 0.5, 1000.0], "tenant": "t-100"}'
    assert (reports.line, fast[1].checks[1].line) == (8, 22) and fast[0].checks


def test_a_block_the_c_parser_reads_differently_or_refuses_goes_to_the_pure_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    used: list[bool] = []
    loader = rb._loader
    monkeypatch.setattr(rb, "_loader", lambda pure: used.append(pure) or loader(pure))
    parse(RICH)
    assert used == [False]  # an ordinary block: the C parser alone
    # A %YAML 1.1 directive changes what `yes` means; the C parser would ignore it.
    book = parse("%YAML 1.1\n---\n" + X + "    url: '{api}/'\n    expect: {json: {ok: yes}}\n")
    assert book.checks[0].expect.json == (("ok", True),) and used[1:] == [True]
    # U+2028 is no line break to the pure parser (YAML 1.2), but it is to libyaml, which refuses the block.
    book = parse(X + "    url: '{api}/'\n    expect:\n      body_contains: a\u2028b\n")
    assert book.checks[0].expect.contains == ("a\u2028b",) and used[2:] == [False, True]
    # What a bad block says is always the pure parser's message (libyaml's omits the character).
    message = error(X + "    url: '{api}/'\n\texpect: {}\n")
    assert "runbook.md:11: not valid YAML: found character '\\t' that cannot start any token" in message, message


def test_an_unclosed_fence_and_a_file_without_blocks_are_errors() -> None:
    with pytest.raises(rb.RunbookError, match=r"runbook.md:3: the ```smoke block is never closed"):
        rb.parse_runbook("# R\n\n```smoke\nenvironment: production\n", SERVICES, "runbook.md")
    with pytest.raises(rb.RunbookError, match="no ```smoke blocks"):
        rb.parse_runbook("# R\n\n```yaml\na: 1\n```\n", SERVICES, "runbook.md")


def test_urls_and_secrets_resolve_and_say_what_is_missing() -> None:
    (check,) = parse(
        X + "    url: '{api}/v1/reports'\n"
        "    headers: {Authorization: 'Bearer ${SMOKE_TENANT_A_TOKEN}', X-Other: '${SMOKE_OTHER}'}\n"
    ).checks
    assert rb.resolve_url(check, {"api": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9/v1/reports"
    with pytest.raises(rb.RunbookError, match=r"runbook.md:8: .* production has no base URL 'api' \(known: ingest\)"):
        rb.resolve_url(check, {"ingest": "http://x"})
    headers, missing = rb.resolve_headers(check, {"SMOKE_TENANT_A_TOKEN": "tok-a"})
    assert headers["Authorization"] == "Bearer tok-a" and missing == ["SMOKE_OTHER"]


def test_the_verdict_checks_status_json_paths_body_and_latency() -> None:
    expect = rb.Expect(
        status=(200,),
        json=(("tenant", "t-1"), ("reports.*.tenant", "t-1")),
        contains=("reports",),
        not_contains=("t-2",),
        max_latency_ms=100,
    )
    good = '{"tenant": "t-1", "reports": [{"tenant": "t-1"}]}'
    leak = '{"tenant": "t-1", "reports": [{"tenant": "t-1"}, {"tenant": "t-2"}]}'
    assert rb.evaluate(expect, 200, good, 10) == []
    problems = rb.evaluate(expect, 200, leak, 10)
    assert problems == ["JSON field reports.*.tenant is 't-2', expected 't-1'", "body contains 't-2'"]
    assert rb.evaluate(expect, 503, "<html>", 250) == [
        "status 503, expected 200",
        "body is not JSON",
        "body does not contain 'reports'",
        "took 250 ms, limit 100 ms",
    ]
    assert rb.evaluate(rb.Expect(json=(("a.0.b", 1),)), 200, '{"a": []}', 1) == ["JSON field a.0.b is missing"]
