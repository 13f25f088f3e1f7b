"""The GitOps ledger `deployments/<environment>.yaml`: the desired version of every service.

Edited with ruamel.yaml's round-trip mode so comments, key order and quoting survive and a pin change is a
one-line diff in the pull request that makes it.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

HEADER = (
    "# GitOps ledger: the version each service should run in this environment.\n"
    "# Changed by pull request (rollback PRs are opened by incidentops); merging applies it to Cloudflare.\n"
    "# version: Worker version id or Pages deployment id; verified: smoke tests passed on it.\n"
)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def render_ledger(doc: dict[str, Any]) -> str:
    """Render a whole ledger document (used when creating one)."""
    buffer = io.StringIO()
    _yaml().dump(doc, buffer)
    return HEADER + buffer.getvalue()


def load_ledger(text: str) -> Any:
    """Parse a ledger keeping comments and order, for round-trip edits."""
    return _yaml().load(text)


def dump_ledger(doc: Any) -> str:
    """Write back a document from `load_ledger`; untouched lines come out byte for byte."""
    buffer = io.StringIO()
    _yaml().dump(doc, buffer)
    return buffer.getvalue()
