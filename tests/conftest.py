"""Fixtures shared by every test directory, and the order `make test` hands tests to its xdist workers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chromium import browser  # noqa: F401  (headless Chromium, offline: a module-scoped fixture)
from tests.faults.conftest import print_tally
from tests.flows.conftest import world  # noqa: F401  (the sandbox-backed `world` fixture)

# Markers of tests that take tens of seconds to minutes (act, wrangler, process swarms).
LONG = ("act", "wrangler", "slow")


def _module_fixture_group(item: pytest.Item) -> str | None:
    """The module's id if the test uses a module-scoped fixture of this suite (a server, a browser, one act or
    wrangler run): one worker builds it once for the whole module instead of once per worker."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name)
        if defs and defs[-1].scope == "module" and defs[-1].baseid.startswith("tests"):
            return item.nodeid.split("::", 1)[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist, `--dist loadgroup`): keep each module-scoped set-up on one worker, and start
    the long tests first so that no worker is left alone with one at the end. The order only changes which test a
    free worker takes next; each test still builds its own sandbox."""
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        group = _module_fixture_group(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
            groups.setdefault(group, []).append(item)

    def long(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(m) for m in LONG)

    long_groups = {g for g, members in groups.items() if any(long(i) for i in members)}

    def first(item: pytest.Item) -> bool:
        mark = item.get_closest_marker("xdist_group")
        return long(item) or (mark is not None and bool(mark.args) and mark.args[0] in long_groups)

    items.sort(key=lambda item: not first(item))  # stable: the rest keep their order


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    print_tally(terminalreporter, config)
