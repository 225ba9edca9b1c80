"""`twin ask`, `twin enhance` and `twin critique` on the sample persona's trained tiny twin."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import app

runner = CliRunner()


def twin(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(persona_home: Path, persona_models: Path) -> Path:
    shutil.copytree(persona_models, persona_home / "models", dirs_exist_ok=True)
    return persona_home


def test_ask_answers_with_the_owner_model_and_shows_its_evidence(home: Path) -> None:
    result = twin(home, "ask", "What happened to Biscuit's paw?")
    assert result.exit_code == 0, result.output
    assert "From memory" in result.output
    assert "paw" in result.output.lower()
    assert "model v0001/owner" in result.output


def test_a_friend_is_answered_by_the_shared_model_from_what_friends_may_see(home: Path) -> None:
    # the door code is in a private note only: a friend's evidence cannot contain it
    result = twin(home, "ask", "What's the code for Iris's front door?", "--as", "friend")
    assert result.exit_code == 0, result.output
    assert "4071" not in result.output
    assert "v0001/shared" in result.output or "retrieval" in result.output


def test_enhance_and_critique_use_the_owner_model(home: Path) -> None:
    enhanced = twin(home, "enhance", "Book dinner for two in Kyoto", "--for", "a concierge")
    assert enhanced.exit_code == 0, enhanced.output
    assert "model v0001/owner" in enhanced.output
    assert "Kyoto" in enhanced.output

    critique = twin(
        home, "critique", "Where should I eat on my birthday?", "A steakhouse with coriander salsa"
    )
    assert critique.exit_code == 0, critique.output
    assert "model v0001/owner" in critique.output


def test_bad_input_is_a_clear_error(home: Path) -> None:
    empty = twin(home, "ask", "   ")
    assert empty.exit_code == 1
    assert "needs a question" in empty.output

    audience = twin(home, "ask", "Where do I work?", "--as", "boss")
    assert audience.exit_code == 1
    assert "boss" in audience.output


def test_without_a_trained_model_the_answer_comes_from_retrieval(persona_home: Path) -> None:
    result = twin(persona_home, "ask", "What happened to Biscuit's paw?")
    assert result.exit_code == 0, result.output
    assert "model retrieval" in result.output
    assert "paw" in result.output.lower()
