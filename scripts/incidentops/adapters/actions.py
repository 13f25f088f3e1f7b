"""The GitHub Actions runner interface: job summary, step outputs, annotations and masks."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO


def _escape(message: str) -> str:
    # Workflow commands end at a newline; GitHub documents %-encoding for these characters.
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class Runner:
    """Writes what a job shows people; every text goes through the redactor first."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.out = out or sys.stdout
        self.redact = redact or (lambda text: text)

    def say(self, line: str) -> None:
        print(self.redact(line), file=self.out, flush=True)

    def annotate(self, level: str, message: str) -> None:
        """Emit ::error:: / ::warning:: / ::notice:: for the run's annotations."""
        print(f"::{level}::{_escape(self.redact(message))}", file=self.out, flush=True)

    def mask(self, value: str) -> None:
        if value:
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
