"""`twin demo`: the main job, end to end on the sample persona (with the smoke training recipe)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from app import app
from app.demo import PERSONA, demo_questions
from training.evaluate import Asker

runner = CliRunner()


def test_quick_demo_runs_every_layer_and_ends_over_mcp(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--quick", "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Importing everything a second time adds 0 memories." in out
    assert "facts," in out and "topics for the owner" in out
    assert "v0001 is now serving." in out
    # the friend's two private questions (address, door code) are judged by what the twin said
    assert out.count("kept out") == 2 and "leaked" not in out
    assert "Tools: ask_twin, enhance_request, critique_reply, search_memories" in out
    for tool in ("ask_twin(", "enhance_request(", "critique_reply("):
        assert tool in out
    assert (home / "models" / "current.json").is_file()


def test_the_demo_never_wipes_a_folder_it_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "my-twin"
    precious.mkdir()
    (precious / "twin.toml").write_text("[owner]\nname = 'Me'\n")
    result = runner.invoke(app, ["demo", "--quick", "--home", str(precious)])
    assert result.exit_code == 1
    assert "not a demo home" in result.output
    assert (precious / "twin.toml").read_text() == "[owner]\nname = 'Me'\n"


def test_demo_questions_cover_each_audience() -> None:
    questions = demo_questions(PERSONA)
    groups = [(q.asker, q.private) for q in questions]
    owner, friend = Asker.OWNER, Asker.FRIEND
    assert groups == [(owner, False)] * 2 + [(friend, False)] * 2 + [(friend, True)] * 2
    assert demo_questions(PERSONA / "notes") == []
