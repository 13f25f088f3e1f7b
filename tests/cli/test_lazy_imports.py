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


# A fresh interpreter's first GitHub request, as a run makes it (nothing listens there: the request fails, the
# client and the libraries under it are loaded all the same).
GITHUB_REQUEST = (
    "import json, sys\n"
    "from incidentops.adapters.github import GitHubClient\n"
    "from incidentops.errors import ApiError\n"
    "client = GitHubClient('token', 'acme/ops', 'http://127.0.0.1:9', retries=0)\n"
    "try:\n"
    "    client.role_of('someone')\n"
    "except ApiError:\n"
    "    pass\n"
)


def run_probe(probe: str) -> list:
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SCRIPTS)}
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_github_request_loads_pyjwt_and_cryptography_only_when_something_uses_them() -> None:
    # The client authenticates with a token; PyGithub's Auth module imports PyJWT only for GitHub App tokens.
    probe = (
        GITHUB_REQUEST + "before = sorted(m for m in ('github', 'requests', 'cryptography') if m in sys.modules)\n"
        "import jwt\n"
        "token = jwt.encode({'sub': 'x'}, 'k' * 32, algorithm='HS256')\n"
        "decoded = jwt.decode(token, 'k' * 32, algorithms=['HS256'])\n"
        "from jwt.algorithms import has_crypto\n"
        "print(json.dumps([before, decoded, has_crypto]))"
    )
    before, decoded, has_crypto = run_probe(probe)
    assert before == ["github", "requests"]  # the request went through PyGithub, without PyJWT's cryptography
    assert decoded == {"sub": "x"} and has_crypto  # and PyJWT, with cryptography, is all there once used


def test_a_github_request_loads_pynacl_only_when_something_encrypts_a_secret() -> None:
    # PyGithub's PublicKey module imports PyNaCl (`from nacl import encoding, public`) to encrypt Actions secrets,
    # which this product never writes. A run's GitHub request loads none of it; encrypting still works, with the real
    # library, and what it sealed opens with the matching private key.
    probe = (
        GITHUB_REQUEST + "publickey_loaded = 'github.PublicKey' in sys.modules\n"
        "real = sorted(m for m in sys.modules if m.startswith('nacl.'))\n"
        "from github.PublicKey import encrypt\n"
        "from nacl import encoding, public\n"
        "key = public.PrivateKey.generate()\n"
        "sealed = encrypt(key.public_key.encode(encoding.Base64Encoder).decode(), 's3cret')\n"
        "opened = public.SealedBox(key).decrypt(sealed.encode(), encoding.Base64Encoder).decode()\n"
        "print(json.dumps([publickey_loaded, real, opened]))"
    )
    publickey_loaded, real_nacl, opened = run_probe(probe)
    assert publickey_loaded and real_nacl == []  # PyGithub loaded its PublicKey module, without PyNaCl under it
    assert opened == "s3cret"
