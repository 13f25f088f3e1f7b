"""`incidentops --help` is printed without argparse (start-up, issue #17): it must still say what argparse knows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from incidentops.cli import COMMANDS, build_parser, main, top_help

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def parser_commands() -> dict[str, str]:
    """The top-level commands argparse is built with, and their help lines."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {choice.dest: str(choice.help) for choice in sub._choices_actions}


def test_the_top_level_help_lists_every_command_the_parser_accepts_with_its_summary() -> None:
    text = top_help()
    known = parser_commands()
    assert list(known) == list(COMMANDS)
    listed = [line.split()[0] for line in text.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert [name for name in listed if name in known] == list(known)
    flat = " ".join(text.split())
    for name, summary in known.items():
        assert f"{name} {' '.join(summary.split())}" in flat, name
    assert "exit codes:" in text and "--version" in text and "usage: incidentops" in text
    assert all(len(line) <= 110 for line in text.splitlines())  # one terminal line each


def test_help_and_no_arguments_answer_as_argparse_did(capsys: object) -> None:
    assert main(["--help"]) == 0
    assert main(["-h"]) == 0
    assert main([]) == 2  # no command: the help on stderr, usage exit code
    assert main(["--version"]) == 0


def test_the_top_level_help_imports_neither_argparse_nor_re() -> None:
    code = (
        "import sys\nfrom incidentops.cli import main\nmain(['--help'])\n"
        "print('loaded:', ','.join(m for m in ('argparse', 're', 'typing') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(SCRIPTS)!r})\n{code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "loaded:"  # json would import re: nothing is imported to check
    assert done.stdout.startswith("usage: incidentops")
