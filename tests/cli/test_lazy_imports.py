"""Start-up stays light: each run imports only what its event needs (benchmarks/startup.py times it; this test
keeps the property from regressing silently). Each check runs in a fresh interpreter, as a workflow step does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
HEAVY = ("github", "requests", "httpx", "jinja2", "asyncio")


def loaded_after(code: str) -> set[str]:
    """The heavy third-party (and asyncio) modules loaded once `code` has run in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SCRIPTS)}
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_no_client_library_and_no_template_engine() -> None:
    code = "import sys\nfrom incidentops.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == set()


@pytest.mark.parametrize(
    "module",
    ["incidentops.flows.dispatch", "incidentops.flows.commands", "incidentops.flows.declare", "incidentops.wiring"],
)
def test_the_event_paths_load_clients_and_templates_only_when_they_use_them(module: str) -> None:
    assert loaded_after(f"import {module}") == set()


def test_the_rollback_flow_loads_asyncio_but_no_pygithub_before_a_github_call() -> None:
    # The rollback flow drives Cloudflare concurrently (asyncio); PyGithub waits for the first GitHub request.
    loaded = loaded_after(
        "from incidentops.adapters.github import GitHubClient\n"
        "import incidentops.flows.rollback\n"
        "GitHubClient('token', 'acme/ops', 'http://127.0.0.1:9')"
    )
    assert "github" not in loaded and "requests" not in loaded
    assert "asyncio" in loaded
