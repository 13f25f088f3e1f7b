"""Which YAML parser each loader of the package uses.

With ruamel.yaml.clib installed, `YAML(typ="safe")` parses with libyaml, which refuses YAML 1.2 that the pure parser
reads and our dumper writes (a reply marker's ':' inside a flow list, for one). Only the runbook's smoke blocks use
it, and fall back to the pure parser for any block it refuses (core/runbook.py); every other loader must say
`pure=True`, or a new one would silently start refusing files the others accept.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scripts" / "incidentops"
# The one loader that may use libyaml: it chooses per block, and reports every error through the pure parser.
MAY_USE_LIBYAML = {("core/runbook.py", "_loader"), ("core/runbook.py", "c_parser_available")}


def _yaml_calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every `YAML(...)` call, with the name of the function it is in ('' at module level)."""
    found: list[tuple[str, ast.Call]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == "YAML":
                found.append((name, child))
            visit(child, name)

    visit(tree, "")
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_safe_loader_but_the_runbooks_uses_the_pure_parser() -> None:
    offenders = []
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for function, call in _yaml_calls(ast.parse(path.read_text(encoding="utf-8"))):
            checked += 1
            typ = _keyword(call, "typ")
            kind = typ.value if isinstance(typ, ast.Constant) else None
            if kind == "rt":
                continue  # the round-trip loader and dumper exist only in pure Python
            pure = _keyword(call, "pure")
            if isinstance(pure, ast.Constant) and pure.value is True:
                continue
            if (relative, function) in MAY_USE_LIBYAML:
                continue
            offenders.append(
                f"{relative}:{call.lineno} in {function or 'module level'}: YAML(typ={kind!r}) without pure=True"
            )
    assert checked >= 10, "the scan found almost no YAML loaders: is PACKAGE right?"
    assert not offenders, "\n".join(offenders)


def test_the_scan_sees_a_loader_without_pure() -> None:
    tree = ast.parse('from ruamel.yaml import YAML\n\ndef read(text):\n    return YAML(typ="safe").load(text)\n')
    [(function, call)] = _yaml_calls(tree)
    assert function == "read"
    assert _keyword(call, "pure") is None
