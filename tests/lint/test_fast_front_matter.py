"""The fast front matter reader agrees with ruamel wherever it answers, and answers for machine-written files."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from incidentops.core import incidentfile as f
from incidentops.core.lint import fast_front_matter
from tests.lint.test_lint import CLOSED

keys = st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True)
text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(list(" -./:,'\"#[]{}0123456789eE+_")),
    max_size=24,
)
scalars = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | text
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)


def front_lines(data: dict[str, Any]) -> list[str]:
    return "".join(f.dump_field(k, v) for k, v in data.items()).rstrip("\n").split("\n")


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_agrees_with_ruamel_wherever_it_answers(data: dict[str, Any]) -> None:
    lines = front_lines(data)
    fast = fast_front_matter(lines)
    if fast is not None:
        assert fast == YAML(typ="safe").load("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_arbitrary_lines_never_disagree(lines: list[str]) -> None:
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    fast = fast_front_matter(lines)
    if fast is not None:
        assert fast == YAML(typ="safe").load("\n".join(lines))


def test_answers_for_what_the_automation_writes() -> None:
    lines = CLOSED.split("---\n")[1].rstrip("\n").split("\n")
    assert fast_front_matter(lines) == YAML(typ="safe").load("\n".join(lines))
    assert fast_front_matter(["# a comment", "id: INC-0042"]) is None
    assert fast_front_matter(["day: 2026-11-27"]) is None  # YAML reads a date
    assert fast_front_matter(["a: 1", "a: 2"]) is None  # duplicate: ruamel reports it
