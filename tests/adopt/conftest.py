"""A running sandbox and an ops-repository workspace for `incidentops doctor` and `incidentops init`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from incidentops.core.doctor import Check
from incidentops.flows.doctor import run_doctor
from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("incidentops.yaml", "docs/runbooks", ".github", "deployments")


@dataclass
class Setup:
    sandbox: Sandbox
    workspace: Path
    github_token: str = "oncall-admin"

    @property
    def info(self) -> dict[str, Any]:
        return self.sandbox.info

    def env(self, **override: str) -> dict[str, str]:
        info = self.info
        env = {
            "GITHUB_TOKEN": self.github_token,
            "GITHUB_REPOSITORY": info["repository"],
            "GITHUB_API_URL": info["github_api_url"],
            "CLOUDFLARE_API_TOKEN": info["cloudflare_api_token"],
            "CLOUDFLARE_ACCOUNT_ID": info["cloudflare_account_id"],
            "CLOUDFLARE_API_BASE_URL": info["cloudflare_api_base_url"],
        }
        env.update(override)
        return env

    def doctor(self, **override: str) -> dict[str, Check]:
        return {c.id: c for c in run_doctor(self.workspace, self.env(**override))}

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.info["control_url"] + path, json=body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def github(self, method: str, path: str, token: str = "oncall-admin", body: Any = None) -> httpx.Response:
        url = f"{self.info['github_api_url']}/repos/{self.info['repository']}{path}"
        return httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})


def copy_ops_repository(target: Path) -> Path:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    sandbox = Sandbox(tmp_path / "sandbox", ROOT).start()
    try:
        yield Setup(sandbox, copy_ops_repository(tmp_path / "ops"))
    finally:
        sandbox.stop()
