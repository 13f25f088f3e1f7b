"""Where a run's words go: GitHub Actions' workflow commands in a job, plain text on a terminal.

In a job (GITHUB_ACTIONS=true) errors and warnings become annotations, and the job summary and step outputs are
written. By hand, results go to stdout and problems to stderr as plain lines (`error: …`, then `hint: …` on its own
line), with none of the `%0A` escaping that workflow commands need.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO


def _escape(message: str) -> str:
    # Workflow commands end at a newline; GitHub documents %-encoding for these characters.
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape(value).replace(",", "%2C").replace(":", "%3A")


class Runner:
    """Writes what a run shows people; every text goes through the redactor first."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        redact: Callable[[str], str] | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.redact = redact or (lambda text: text)
        self.in_actions = self.env.get("GITHUB_ACTIONS") == "true"

    def say(self, line: str) -> None:
        """A result line: stdout, in a job and on a terminal alike."""
        print(self.redact(line), file=self.out, flush=True)

    def annotate(self, level: str, message: str, hint: str | None = None) -> None:
        """In a job ::error::/::warning::/::notice::; by hand, errors and warnings on stderr (notices were said)."""
        text = self.redact(message + (f" {hint}" if hint else ""))
        if self.in_actions:
            print(f"::{level}::{_escape(text)}", file=self.out, flush=True)
        elif level in ("error", "warning"):
            print(f"{level}: {self.redact(message)}", file=self.err, flush=True)
            if hint:
                print(f"hint: {self.redact(hint)}", file=self.err, flush=True)

    def error(self, message: str, hint: str | None = None) -> None:
        self.annotate("error", message, hint)

    def problem(self, path: str, line: int | None, message: str, level: str = "error") -> None:
        """A problem in a file: annotated on the file and line in a job, `path:line: message` on a terminal."""
        if self.in_actions:
            where = f"file={_escape_property(path)}" + (f",line={line}" if line else "")
            print(f"::{level} {where}::{_escape(self.redact(message))}", file=self.out, flush=True)
        else:
            print(
                f"{path}:{line}: {self.redact(message)}" if line else f"{path}: {self.redact(message)}",
                file=self.out,
                flush=True,
            )

    def trace(self, text: str) -> None:
        """A traceback, for a bug report: stderr, redacted like everything else."""
        print(self.redact(text), file=self.err, flush=True)

    def mask(self, value: str) -> None:
        if value and self.in_actions:
            print(f"::add-mask::{value}", file=self.out, flush=True)

    def summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            with Path(path).open("a", encoding="utf-8") as handle:
                handle.write(self.redact(markdown).rstrip("\n") + "\n")

    def output(self, name: str, value: str) -> None:
        path = self.env.get("GITHUB_OUTPUT")
        if path:
            safe = self.redact(value).replace("\n", " ")
            with Path(path).open("a", encoding="utf-8") as handle:
                handle.write(f"{name}={safe}\n")
