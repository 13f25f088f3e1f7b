"""`incidentops sandbox serve`: print one JSON ready line (APIs, demo base URLs), then serve until interrupted."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType

from incidentops.sandbox.server import Sandbox


def serve(port: int, latency_ms: int, workdir: str | None, seed: str, once: bool = False, actions: bool = False) -> int:
    """Run the sandbox in the foreground; SIGINT or SIGTERM stops it cleanly."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with tempfile.TemporaryDirectory(prefix="incidentops-sandbox-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        sandbox = Sandbox(root, seed=Path(seed), latency_ms=latency_ms, port=port).start()
        pump = scheduler = None
        if actions:
            # Every recorded event goes through GitHub's trigger rules; started runs run under act with the
            # real workflow files (GET /_sandbox/actions/runs reads them back).
            from incidentops.sandbox.scheduler import start_for_sandbox

            scheduler, pump = start_for_sandbox(sandbox, Path(seed).resolve(), root / "actions")
        print(json.dumps(sandbox.info), flush=True)
        try:
            while not stop.wait(0.2) and not once:
                pass
        finally:
            if pump is not None and scheduler is not None:
                pump.stop()
                scheduler.stop()
            sandbox.stop()
    return 0
