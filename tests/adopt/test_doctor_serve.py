"""The issue's acceptance run: `incidentops doctor` against `incidentops sandbox serve`, with the ready line's
values in the environment, exits 0; with the Cloudflare token revoked through the control API it exits 1 and
names the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CLOUDFLARE_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentops", "sandbox", "serve", "--seed", str(ROOT), "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def doctor(info: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CLOUDFLARE_", "SMOKE_"))}
    env.update(
        GITHUB_TOKEN="oncall-admin",  # a person's token, as by hand; the actions token cannot read admin settings
        GITHUB_REPOSITORY=info["repository"],
        GITHUB_API_URL=info["github_api_url"],
        CLOUDFLARE_API_TOKEN=info["cloudflare_api_token"],
        CLOUDFLARE_ACCOUNT_ID=info["cloudflare_account_id"],
        CLOUDFLARE_API_BASE_URL=info["cloudflare_api_base_url"],
        **info["smoke_env"],
    )
    return subprocess.run(
        [sys.executable, "-m", "incidentops", "doctor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_doctor_against_sandbox_serve(served: dict[str, Any]) -> None:
    ok = doctor(served)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "❌" not in ok.stdout and "0 failing" in ok.stdout
    revoked = httpx.patch(served["control_url"] + "/adoption/cloudflare-token", json={"revoked": True})
    assert revoked.status_code == 200
    bad = doctor(served)
    assert bad.returncode == 1
    failing = [line for line in bad.stdout.splitlines() if "❌" in line]
    assert len(failing) == 1 and "CLOUDFLARE_API_TOKEN is not valid" in failing[0]
