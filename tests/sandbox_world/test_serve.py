"""`incidentops sandbox serve`: the ready line, the seeded ops repository, latency, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from incidentops.config import load_config
from incidentops.core.ledger import render_ledger
from incidentops.sandbox import world

ROOT = Path(__file__).resolve().parents[2]
READY_KEYS = {
    "github_api_url",
    "repository",
    "bare_repo",
    "cloudflare_api_base_url",
    "cloudflare_account_id",
    "cloudflare_api_token",
    "control_url",
}


def start(*args: str) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentops", "sandbox", "serve", "--seed", str(ROOT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, json.loads(line)


def test_ready_line_seeded_repo_latency_and_sigterm(tmp_path: Path) -> None:
    proc, info = start("--latency-ms", "150", "--workdir", str(tmp_path))
    try:
        assert set(info) >= READY_KEYS
        assert info["repository"] == "acme/ops"
        bare = Path(info["bare_repo"])
        files = subprocess.run(
            ["git", "-C", str(bare), "ls-tree", "-r", "--name-only", "main"], capture_output=True, text=True
        ).stdout.split()
        for expected in ("incidentops.yaml", ".github/ISSUE_TEMPLATE/incident.yml", "templates/incident.md.j2"):
            assert expected in files
        began = time.perf_counter()
        response = httpx.get(info["github_api_url"] + "/repos/acme/ops", headers={"Authorization": "token reader"})
        assert response.status_code == 200 and response.json()["full_name"] == "acme/ops"
        assert time.perf_counter() - began >= 0.15  # --latency-ms applies
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_shipped_ledger_and_config_match_the_sandbox_world() -> None:
    """The repo's own ledger is the world's live state, and its config points at the world's account."""
    assert (ROOT / world.LEDGER_PATH).read_text() == render_ledger(world.ledger_history()[-1][3])
    production = load_config(ROOT).environment("production")
    assert production is not None
    assert (production.account_id, production.zone_id) == (world.ACCOUNT_ID, world.ZONE_ID)


def test_serve_freezes_what_it_built_so_collections_skip_it(tmp_path: Path) -> None:
    # A full collection over the emulators' startup state is a pause of tens of milliseconds in every answer due
    # meanwhile; frozen at startup, the collector never walks it (gc.freeze: it stays frozen once the server stops).
    code = (
        "import gc, sys\n"
        "from incidentops.sandbox.serve import serve\n"
        "serve(0, 0, sys.argv[1], sys.argv[2], once=True)\n"
        "print('frozen', gc.get_freeze_count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "sb"), str(ROOT)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    frozen = int(done.stdout.strip().split("\n")[-1].split()[1])
    assert frozen > 10_000  # the emulators' objects, not a handful
