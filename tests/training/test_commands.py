"""`twin train` and `twin models …` as the `twin` app registers them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from tests.training.handmade import HandmadeData, add_memories
from tests.twin.test_registry import add_version
from training.commands import models_app, train
from twin.command_line import set_root_home
from twin.config import load_settings
from twin.registry import ModelRegistry

runner = CliRunner()


def twin_app() -> typer.Typer:
    """A root app shaped like `twin`'s: a --home option, then the training commands."""
    app = typer.Typer()

    @app.callback()
    def main(home: Annotated[Path | None, typer.Option()] = None) -> None:
        """The twin."""
        set_root_home(home)

    app.command()(train)
    app.add_typer(models_app, name="models")
    return app


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as a wide terminal prints them, so rows stay on one line."""
    monkeypatch.setattr("training.commands.console", Console(width=200))


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(twin_app(), ["--home", str(home), *args])
    return result.exit_code, result.output


def test_models_list_promote_rollback(home: Path, tiny_gguf_path: Path) -> None:
    code, output = invoke(home, "models", "list")
    assert code == 0 and "No trained models yet" in output
    registry = ModelRegistry(home / "models")
    add_version(registry, tiny_gguf_path)
    add_version(registry, tiny_gguf_path, base="Qwen/Qwen2.5-0.5B-Instruct")
    registry.promote("v0001")

    code, output = invoke(home, "models", "list")
    assert code == 0
    lines = [line for line in output.splitlines() if "│ v000" in line]
    assert len(lines) == 2
    assert "*" in lines[0] and "*" not in lines[1]
    assert "Qwen/Qwen2.5-0.5B" in lines[1] and "0.90" in lines[1]
    assert "v0001 is serving." in output

    code, output = invoke(home, "models", "promote", "v0002")
    assert code == 0 and "v0002" in output and "now serving" in output
    assert registry.current_version() == "v0002"
    code, output = invoke(home, "models", "rollback")
    assert code == 0 and "v0001 is serving again" in output
    assert registry.current_version() == "v0001"


def test_models_errors_exit_non_zero(home: Path) -> None:
    code, output = invoke(home, "models", "promote", "v0009")
    assert code == 1 and "no model version 'v0009'" in output
    code, output = invoke(home, "models", "rollback")
    assert code == 1 and "no earlier version" in output


def test_train_needs_memory_and_a_known_run(
    home: Path, embedder: SentenceTransformerEmbedder
) -> None:
    code, output = invoke(home, "train", "--fast")
    assert code == 1 and "memory is empty" in output
    settings = load_settings(home)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        add_memories(store)
    code, output = invoke(home, "train", "--resume", "20990101-000000-beef")
    assert code == 1 and "no training run '20990101-000000-beef'" in output
    code, output = invoke(home, "train", "--base", str(home / "no-such-folder"))
    assert code == 1 and "neither a packaged base" in output


def test_train_runs_registers_and_serves(
    home: Path,
    embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    tiny_qwen2_dir: Path,
) -> None:
    settings = load_settings(home)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        add_memories(store)
    # hand-made data instead of the synthesizer, to keep this seconds long
    monkeypatch.setattr("training.pipeline.run.SynthesizedData", lambda settings: HandmadeData())
    code, output = invoke(home, "train", "--fast", "--threads", "1", "--base", str(tiny_qwen2_dir))
    assert code == 0, output
    assert "v0001 is now serving" in output
    for stage in ("synthesize", "sft-owner", "dpo-shared", "register"):
        assert stage in output
    # not a terminal: each stage's start and end are log lines, as in the run's train.log
    assert "stage 2/8: sft-shared" in output and "stage register done in" in output
    assert "Held-out key-fact accuracy: owner" in output
    assert ModelRegistry(home / "models").current_version() == "v0001"
    (run_dir,) = (home / "runs").iterdir()
    code, output = invoke(home, "train", "--resume", run_dir.name)
    assert code == 0 and "(earlier)" in output
    assert ModelRegistry(home / "models").current_version() == "v0001"
    assert len(ModelRegistry(home / "models").versions()) == 1
