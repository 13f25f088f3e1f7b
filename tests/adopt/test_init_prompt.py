"""On a terminal, init asks what the flags did not answer: numbered choices, several at once for services."""

from __future__ import annotations

import pytest

from incidentops.cli import _ask


def test_numbers_and_names_pick_choices(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["1, user-portal", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert _ask("Which services?", ["api-worker", "user-portal"], True) == ["api-worker", "user-portal"]
    assert "  1. api-worker" in capsys.readouterr().out
    # Nothing typed means every service.
    assert _ask("Which services?", ["api-worker", "user-portal"], True) == ["api-worker", "user-portal"]


def test_a_free_answer_and_a_single_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([" staging ", "2"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert _ask("Which environment?", [], False) == ["staging"]
    assert _ask("Which zone?", ["example.com", "example.org"], False) == ["example.org"]
