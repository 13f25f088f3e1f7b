"""`incidentops lint [PATH]`: validate every incident file and report each problem with its file and line.

Reading and parsing is linear in the number of files; above a few hundred files the work is spread over
the machine's cores (YAML parsing dominates, and it is CPU-bound pure Python).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from incidentops.config import CONFIG_FILE, load_config
from incidentops.core.lint import FILE_NAME, SEVERITIES, Problem, lint_text
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome

PARALLEL_FROM = 400  # below this, starting worker processes costs more than it saves
CHUNK = 250


def incident_files(workspace: Path, target: str | None = None) -> list[Path]:
    """The incident files to lint: `target` (a file or a folder), else the configured incidents folder."""
    if target:
        chosen = Path(target) if Path(target).is_absolute() else workspace / target
        if chosen.is_file():
            return [chosen]
        if not chosen.is_dir():
            raise IncidentOpsError(f"{target} is neither an incident file nor a folder of them")
        folder = chosen
    else:
        configured = (workspace / CONFIG_FILE).is_file()
        incidents_dir = load_config(workspace).incidents_dir if configured else "incidents"
        folder = workspace / incidents_dir
        if folder.exists() and not folder.is_dir():
            raise IncidentOpsError(
                f"{incidents_dir} is a file, but incidents_dir in {CONFIG_FILE} must name a folder",
                hint="Point incidents_dir at the folder that holds INC-*.md files, or pass a PATH to lint.",
            )
        if not folder.is_dir():
            if configured:
                return []  # a new ops repository: no incident yet
            raise IncidentOpsError(
                f"nothing to lint in {workspace}: no {CONFIG_FILE} and no {incidents_dir}/ folder",
                hint="Run it at the root of the ops repository, or pass the file or folder to lint.",
            )
    return sorted(p for p in folder.iterdir() if FILE_NAME.match(p.name) and p.is_file())


def _display(path: Path, workspace: Path) -> str:
    try:
        return path.relative_to(workspace).as_posix()
    except ValueError:
        return path.as_posix()


def _lint_batch(batch: list[tuple[str, str]], severities: tuple[str, ...]) -> list[Problem]:
    problems: list[Problem] = []
    for shown, full in batch:
        try:
            text = Path(full).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(shown, 1, "the file is not UTF-8 text"))
            continue
        problems.extend(lint_text(shown, text, severities))
    return problems


def lint_files(files: Iterable[tuple[str, str]], severities: tuple[str, ...] = SEVERITIES) -> list[Problem]:
    """Lint (display name, file path) pairs, in parallel when there are many; problems sorted by file and line."""
    items = list(files)
    workers = min(os.cpu_count() or 1, 8)
    if len(items) < PARALLEL_FROM or workers < 2:
        return sorted(_lint_batch(items, severities))
    batches = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only for many files

    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_lint_batch, batches, [severities] * len(batches))
        return sorted(p for found in results for p in found)


def lint(workspace: Path, target: str | None = None) -> Outcome:
    """Lint the incident files of an ops repository checkout."""
    severities = SEVERITIES
    if (workspace / CONFIG_FILE).is_file():
        severities = tuple(sorted(set(load_config(workspace).severities.values()))) or SEVERITIES
    files = incident_files(workspace, target)
    problems = lint_files(((_display(p, workspace), str(p)) for p in files), severities)
    broken = len({p.path for p in problems})
    if problems:
        message = f"{len(problems)} problem(s) in {broken} of {len(files)} incident file(s)"
        return Outcome(
            "problems",
            message,
            steps=[str(p) for p in problems],
            exit_code=1,
            level="error",
            details={"problems": problems, "files": len(files)},
        )
    return Outcome("ok", f"{len(files)} incident file(s) valid", details={"problems": [], "files": len(files)})
