"""A corpus of hostile issue titles, bodies and comments (generated, so it stays reviewable and deterministic)."""

from __future__ import annotations

import itertools

FORM = (
    "### Summary\n\n{summary}\n\n### Environment\n\n{environment}\n\n### Start time (UTC)\n\n{started}\n\n"
    "### Impacted routes\n\n{routes}\n\n### Tenant IDs\n\n{tenants}\n\n### Request IDs\n\n{request_ids}\n\n"
    "### Request volume\n\n{volume}\n\n### Affected services\n\n{services}\n\n### Risk assessment\n\n"
    "- [x] Tenant isolation is at risk\n- [ ] A deploy regression is suspected\n"
)

PAYLOADS = [
    "---",
    "---\nseverity: SEV-9\n---",
    "...\n---\nid: INC-9999",
    "{{ 7*7 }}",
    "{% for x in range(3) %}boom{% endfor %}",
    "{{ config.__class__.__init__.__globals__ }}",
    "{# comment #}",
    "a | b | c",
    "| time | who |\n|---|---|\n| forged | row |",
    "line one\nline two\r\nline three\rline four",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!-- ev:issues-labeled-1 -->",
    "<!-- incidentops:declared:INC-0001 -->",
    "## Timeline\n| 2026-01-01T00:00:00Z | @evil | forged | |",
    "```\nunclosed fence",
    "```mermaid\ngraph TD; A-->B\n```",
    "[click](javascript:alert(1))",
    "![x](http://169.254.169.254/latest/meta-data)",
    "\x00\x01\x02\x1b[31mred\x1b[0m\x7f",
    "\u202egnp.exe\u202c right-to-left override",
    "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd mixed RTL",
    "Z\u0351\u0357\u0358a\u0300\u0301\u0302l\u0303\u0304g\u0305o combining",
    "\ufeffBOM and zero\u200bwidth\u200dspaces",
    "emoji 🚨🔥💥 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "key: value\nother: [1, 2",
    "&amp; &lt; &#x3C; entities",
    "\\| escaped pipe \\\\ backslashes",
    "' OR 1=1 --",
    "$(rm -rf /) `id` ${HOME}",
    "%0A%0D::error::injected annotation",
    "::set-output name=x::y",
    "@everyone @oncall-admin mention storm",
    "#1 #2 #3 cross references",
    "A" * 5000,
]

DATES = [
    "2026-11-27T03:12:09Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2026-02-30T25:61:61Z",
    "yesterday",
    "{{ now() }}",
    "",
    "_No response_",
]
SERVICES = ["api-worker", "api-worker, mainframe", "API-WORKER", "api-worker\u200b", "", "../../etc/passwd"]
ENVIRONMENTS = ["production", "prod", "staging", "", "production\n### Summary"]
LABELS_LOOKALIKE = ["SEV-1", "sev-1 ", "sev–1", "sev-l", "sev_1", "sev-10", "ѕev-1"]


def bodies() -> list[str]:
    """At least 200 rendered-form bodies mixing every payload into every field kind."""
    out = []
    fields = itertools.cycle(["summary", "routes", "tenants", "request_ids", "volume"])
    for payload, date, service, env in zip(
        PAYLOADS * 6,
        itertools.cycle(DATES),
        itertools.cycle(SERVICES),
        itertools.cycle(ENVIRONMENTS),
        strict=False,
    ):
        values = {
            "summary": "Reports leak",
            "environment": env or "_No response_",
            "started": date or "_No response_",
            "routes": "/v1/reports",
            "tenants": "t-1",
            "request_ids": "req-1",
            "volume": "10/min",
            "services": service or "_No response_",
        }
        values[next(fields)] = payload
        out.append(FORM.format(**values))
    out += ["", "no form at all", "### Summary", "### Summary\n\n" + "x" * 1_000_000, PAYLOADS[0] * 50]
    return out


def titles() -> list[str]:
    return PAYLOADS + ["[Incident] " + p for p in PAYLOADS[:20]]


def comments() -> list[str]:
    base = ["/note {p}", "/status {p}", "/decision {p}", "/evidence tenant {p}", '/followup "{p}" @x 2026-12-01']
    return [template.format(p=p) for template in base for p in PAYLOADS] + [
        "/ic @" + "a" * 300,
        "/comms @",
        "/risk tenant-isolation maybe",
        "/security-impact perhaps",
        "/followup no quotes @x 2026-13-45",
        "/unknown-command",
        "/" * 1000,
        "not a command /note later in text",
    ]
