"""What a `twin` command loads: only what it uses, so that it starts quickly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from app import app

ROOT = Path(__file__).resolve().parents[2]
# Each takes from a few tenths of a second to seconds to import.
HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "trl",
    "peft",
    "llama_cpp",
    "chromadb",
    "mcp",
    "uvicorn",
    "telegram",
    "discord",
    "apscheduler",
    "matplotlib",
    "sklearn",
    "scipy",
)


def loaded_by(*args: str, watched: tuple[str, ...] = HEAVY) -> list[str]:
    """The `watched` packages (the heavy ones) that `twin ARGS` has imported when it ends, run
    as its own process."""
    script = f"""
import json, sys
from app import app
try:
    app({list(args)!r})
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps([m for m in {watched!r} if m in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_imports_no_heavy_package() -> None:
    assert loaded_by("--help") == []
    # a tenth of a second each on this machine: only the commands that use them load them
    assert loaded_by("--help", watched=("pydantic", "asyncio", "yaml")) == []


def test_search_embeds_the_query_without_torch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    note = tmp_path / "notes" / "running.md"
    note.parent.mkdir()
    note.write_text("# Lisbon half marathon\n\nRan it on 15 March in 1:52, a personal best.\n")
    runner = CliRunner()
    for args in (["init", "--owner", "Iris Calder"], ["ingest", str(note.parent)]):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
    loaded = loaded_by("--home", str(home), "search", "When did I run the half marathon?")
    assert loaded == ["chromadb"]  # the dense index; the query's vector comes from NumPy
