"""Hooks in the sandbox's bare repository, so that a `git push` meets GitHub's rules: who pushed (from the
credentials the pusher offered), protected branches and rulesets (pre-receive), and the `push` webhook
(post-receive).

The bare repository is reached through a path (the checkout stub maps origin to it), and git's local
transport runs the hooks with the pushing process's environment. Our workflows hand git the job token
through environment-only config (`GIT_CONFIG_KEY_n=http.<server>/.extraheader`, `GIT_CONFIG_VALUE_n=
AUTHORIZATION: basic base64(x-access-token:<token>)`); actions/checkout with `persist-credentials: true`
writes the same header into the pushing repository's .git/config. The hook reads either and asks the
sandbox's control API what GitHub would answer, then prints GitHub's lines (git shows them as `remote: …`).
A push that offers no credentials comes from the test harness standing in for an admin's machine.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

# Each hook is a shell script that starts Python only when there is something to decide: a protected branch
# or credentials to check (pre-receive), a listener for push webhooks (post-receive). The fifty concurrent
# pushes of the pressure tests then pay no interpreter start-up inside the ref-update race window.
WRAPPER = """#!/bin/sh
# Installed by the incidentops sandbox (scripts/incidentops/sandbox/githooks.py).
{condition} || exit 0
exec "{python}" "$0.py"
"""
PROTECTED_FLAG = "incidentops-protected"  # exists while a branch rule is configured
PUSH_EVENTS_FLAG = "incidentops-push-events"  # exists while push webhooks are recorded
CONDITIONS = {
    "pre-receive": f'[ -e "${{GIT_DIR:-.}}/{PROTECTED_FLAG}" ] || [ -n "${{GIT_CONFIG_KEY_0:-}}" ]',
    "post-receive": f'[ -e "${{GIT_DIR:-.}}/{PUSH_EVENTS_FLAG}" ]',
}

HOOK = """#!{python}
# Installed by the incidentops sandbox (scripts/incidentops/sandbox/githooks.py); asks the sandbox.
import json, sys, urllib.request
sys.path.insert(0, {package_root!r})
from incidentops.sandbox.githooks import offered_token

updates = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
body = json.dumps({{"updates": updates, "token": offered_token()}}).encode()
request = urllib.request.Request({url!r}, data=body, headers={{"Content-Type": "application/json"}}, method="POST")
with urllib.request.urlopen(request, timeout=30) as answer:
    verdict = json.load(answer)
for line in verdict.get("messages", []):
    print(line, file=sys.stderr)
sys.exit(0 if verdict.get("accept", True) else 1)
"""


def install(bare_repo: Path, control_url: str) -> None:
    """Write the pre-receive and post-receive hooks that call `control_url`/github/git-hook/<kind>."""
    package_root = str(Path(__file__).resolve().parents[2])
    hooks = bare_repo / "hooks"
    hooks.mkdir(exist_ok=True)
    for kind in ("pre-receive", "post-receive"):
        url = f"{control_url}/github/git-hook/{kind}"
        script = hooks / f"{kind}.py"
        script.write_text(HOOK.format(python=sys.executable, package_root=package_root, url=url), encoding="utf-8")
        wrapper = hooks / kind
        wrapper.write_text(WRAPPER.format(condition=CONDITIONS[kind], python=sys.executable), encoding="utf-8")
        wrapper.chmod(0o755)


def set_flag(bare_repo: Path, flag: str, on: bool) -> None:
    """Switch a hook's work on or off (see CONDITIONS)."""
    path = bare_repo / flag
    if on:
        path.touch()
    else:
        path.unlink(missing_ok=True)


def _header_token(value: str) -> str | None:
    """The token in an `AUTHORIZATION: basic base64(x-access-token:<token>)` header value."""
    scheme, _, encoded = value.partition(":")[2].strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _user, _, token = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return token or None


def _from_environ(environ: dict[str, str]) -> str | None:
    for index in range(64):
        key = environ.get(f"GIT_CONFIG_KEY_{index}")
        if key is None:
            break
        if key.lower().endswith(".extraheader"):
            token = _header_token(environ.get(f"GIT_CONFIG_VALUE_{index}", ""))
            if token:
                return token
    return None


def _from_pushing_repository(pid: int) -> str | None:
    """The header persisted for the repository a process runs in (actions/checkout's persist-credentials:
    a config file of its own that .git/config includes); git resolves the include."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    if not (cwd / ".git").exists():
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # not the bare repository's
    found = subprocess.run(
        ["git", "-C", str(cwd), "config", "--get-regexp", r"^http\..*\.extraheader$"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    for line in found.stdout.splitlines():
        token = _header_token(line.split(" ", 1)[1] if " " in line else "")
        if token:
            return token
    return None


def _parent(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]) or None


def offered_token() -> str | None:
    """The token the pushing git offered, from the hook's environment or the pushing processes."""
    token = _from_environ(dict(os.environ))
    if token:
        return token
    pid = _parent(os.getpid())
    for _ in range(6):  # hook <- receive-pack <- sh <- git push
        if pid is None or pid <= 1:
            break
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            raw = b""
        environ = dict(item.split("=", 1) for item in raw.decode("utf-8", "replace").split("\0") if "=" in item)
        token = _from_environ(environ) or _from_pushing_repository(pid)
        if token:
            return token
        pid = _parent(pid)
    return None
