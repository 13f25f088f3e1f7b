"""Headless Chromium for the tests that load pages in a real browser (the history site, the status page).

Chromium runs inside a network namespace that has only loopback, with a fresh profile, so it can never
reach the network. Console messages (script errors, CSP violations, failed loads) are read from its
`--enable-logging=stderr` output; the DOM after scripts ran from `--dump-dom`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[:(]")


def chromium() -> str:
    found = os.environ.get("INCIDENTOPS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed (Debian: apt-get install -y --no-install-recommends chromium)")
    return found


def namespace_problem() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare and ip (util-linux, iproute2) are needed to run Chromium offline"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot create a network namespace (needs root): {probe.stderr.strip()}"


def run_chromium(binary: str, url: str, *extra: str, timeout: float = 90) -> tuple[str, str]:
    """Run headless Chromium offline on one URL; return (stdout, stderr). The whole process group ends."""
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        command = " ".join(shlex.quote(a) for a in (binary, *FLAGS, f"--user-data-dir={profile}", *extra, url))
        proc = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {command}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"chromium did not finish within {timeout} s:\n{err[-3000:]}")
        assert proc.returncode == 0, err[-3000:]
        return out, err


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


@pytest.fixture(scope="module")
def browser() -> str:
    binary = chromium()
    problem = namespace_problem()
    if problem:
        pytest.skip(problem)
    return binary
