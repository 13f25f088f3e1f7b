"""`incidentops sandbox serve`: print one JSON ready line (APIs, demo base URLs), then serve until interrupted."""

from __future__ import annotations

import gc
import json
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from incidentops.sandbox.github import personal_token
from incidentops.sandbox.server import Sandbox


def export_block(info: Mapping[str, Any], login: str = "oncall-admin") -> str:
    """Shell lines a person pastes to use the sandbox by hand: the environment the CLI reads, as on call."""
    env = {
        "GITHUB_API_URL": info["github_api_url"],
        "GITHUB_SERVER_URL": info["github_server_url"],
        "GITHUB_REPOSITORY": info["repository"],
        "GITHUB_TOKEN": personal_token(login),
        "CLOUDFLARE_API_BASE_URL": info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": info["cloudflare_api_token"],
        "CLOUDFLARE_ACCOUNT_ID": info["cloudflare_account_id"],
        "INCIDENTOPS_BASE_URLS": json.dumps(info["base_urls"]),
        **info["smoke_env"],
    }
    lines = [f"# incidentops sandbox: paste into a shell to act as {login} (tokens of other users: ghp_<login>…)"]
    lines += [f"export {name}={shlex.quote(str(value))}" for name, value in env.items()]
    lines.append(f"# then: git clone {shlex.quote(info['bare_repo'])} ops && cd ops && incidentops --help")
    return "\n".join(lines)


def serve(port: int, latency_ms: int, workdir: str | None, seed: str, once: bool = False, actions: bool = False) -> int:
    """Run the sandbox in the foreground; SIGINT or SIGTERM stops it cleanly."""
    # Many handler threads share one interpreter lock, and the bodies are checked on a thread of their own
    # (http.Hub.later): a thread due to answer gets the lock within half a millisecond, not the default five.
    sys.setswitchinterval(0.0005)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with tempfile.TemporaryDirectory(prefix="incidentops-sandbox-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        sandbox = Sandbox(root, seed=Path(seed), latency_ms=latency_ms, port=port).start()
        # Everything built so far (the emulators, their seeded state, the API descriptions) lives as long as the
        # server: frozen, the collector's full passes no longer walk it, each a pause of about 60 ms here that
        # held up every answer due meanwhile (as no real service does). Objects made later are collected as before.
        gc.freeze()
        pump = scheduler = None
        if actions:
            # Every recorded event goes through GitHub's trigger rules; started runs run under act with the
            # real workflow files (GET /_sandbox/actions/runs reads them back).
            from incidentops.sandbox.scheduler import start_for_sandbox

            scheduler, pump = start_for_sandbox(sandbox, Path(seed).resolve(), root / "actions")
        print(json.dumps(sandbox.info), flush=True)  # the machine-readable ready line (tests and tools read it)
        print(export_block(sandbox.info), file=sys.stderr, flush=True)
        try:
            while not stop.wait(0.2) and not once:
                pass
        finally:
            if pump is not None and scheduler is not None:
                pump.stop()
                scheduler.stop()
            sandbox.stop()
    return 0
