"""`twin profile build` and `twin profile show`, driven as a user would, on part of the persona."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import app
from memory.embed import SentenceTransformerEmbedder
from memory.models import Visibility
from memory.store import MemoryStore
from tests.lm.scripted_server import ScriptedServer, chat_reply
from twin.config import load_settings
from twin.ingest import parse_paths, store_parsed

runner = CliRunner()
PRIVATE_STRINGS = ("Remédios", "4071", "Monterey", "Helena Alves", "18,000", "18000")


def twin(home: Path, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["--home", str(home), *args], env=env)


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory,
    persona_dir: Path,
    embedder: SentenceTransformerEmbedder,
    torch_single_thread: None,
) -> Path:
    """A twin with Iris's chat with Sam, her "About me" note (friends) and her private notes,
    imported once for the module (in-process, with the suite's already loaded embedder)."""
    home = tmp_path_factory.mktemp("cli-profile") / "home"
    assert twin(home, "init", "--owner", "Iris Calder").exit_code == 0
    (home / "twin.toml").write_text((persona_dir / "twin.toml").read_text())
    settings = load_settings(home)
    notes = persona_dir / "notes"
    paths = [persona_dir / "whatsapp" / "WhatsApp Chat with Sam.txt", notes / "about-me.md"]
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        for item in parse_paths(paths, settings):
            store_parsed(
                store,
                item,
                settings,
                ceiling=Visibility.FRIENDS,
                default_visibility=Visibility.FRIENDS,
            )
        # the private notes say `visibility: private` themselves
        for item in parse_paths([notes / "private"], settings):
            store_parsed(store, item, settings)
    return home


@pytest.fixture
def home(ingested: Path, tmp_path: Path) -> Path:
    """A copy of the imported twin for one test to change."""
    return Path(shutil.copytree(ingested, tmp_path / "home"))


def test_build_then_show_for_each_audience(home: Path) -> None:
    before = twin(home, "profile", "show")
    assert before.exit_code == 0
    assert "No profile has been built yet" in before.output

    built = twin(home, "profile", "build")
    assert built.exit_code == 0, built.output
    assert "Incremental build 1" in built.output
    assert "offline-patterns" in built.output

    shown = twin(home, "profile", "show")
    assert shown.exit_code == 0, shown.output
    for heading in ("Global bio, third person", "Status bio, first person", "Topics", "Facts"):
        assert heading in shown.output
    assert "works as a marine biologist" in shown.output
    assert "Facts were extracted offline" in shown.output  # honest about the method

    private_ids = {
        row["id"]
        for row in map(json.loads, twin(home, "memory", "export").stdout.splitlines())
        if row["visibility"] == "private"
    }
    owner = json.loads(twin(home, "profile", "show", "--json").stdout)
    assert owner["scope"] == "owner"
    assert private_ids & {m for t in owner["topics"] for m in t["members"]}

    friend = json.loads(twin(home, "profile", "show", "--as", "friend", "--json").stdout)
    assert friend["scope"] == "friends"
    assert friend["facts"] and friend["topics"]
    assert all(f["visibility"] != "private" for f in friend["facts"])
    assert not private_ids & {m for t in friend["topics"] for m in t["members"]}
    assert not private_ids & {s["id"] for f in friend["facts"] for s in f["sources"]}
    text = json.dumps(friend, ensure_ascii=False).casefold()
    assert not [s for s in PRIVATE_STRINGS if s.casefold() in text]

    public = twin(home, "profile", "show", "--as", "public")
    assert "Nothing about Iris Calder is known to this audience yet." in public.output


def test_rebuilds_incremental_and_full(home: Path) -> None:
    assert twin(home, "profile", "build").exit_code == 0
    again = twin(home, "profile", "build")
    assert again.exit_code == 0
    assert "read 0 of your memories" in again.output
    full = twin(home, "profile", "build", "--full")
    assert full.exit_code == 0
    assert "Full build 3" in full.output


def test_forgetting_shows_a_fallback_bio_until_the_next_build(home: Path) -> None:
    assert twin(home, "profile", "build").exit_code == 0
    assert "marine biologist" in twin(home, "profile", "show").output
    # the About me note's first part: the only support of her job
    forgot = twin(home, "memory", "forget", "--query", "where I study cuttlefish behaviour", "-y")
    assert forgot.exit_code == 0
    assert "Forgot 1 memories" in forgot.output
    shown = twin(home, "profile", "show")
    assert "assembled offline" in shown.output
    assert "marine biologist" not in shown.output
    assert twin(home, "profile", "build").exit_code == 0
    assert "assembled offline" not in twin(home, "profile", "show").output


def test_an_unknown_audience_is_refused(home: Path) -> None:
    result = twin(home, "profile", "show", "--as", "stranger")
    assert result.exit_code == 1
    assert "unknown audience" in result.output


@pytest.fixture
def garbage_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    server.script(chat_reply("Sure! Here is what you asked for, in prose."))
    yield server
    server.stop()


def test_a_failing_language_model_leaves_the_profile_as_it_was(
    home: Path, garbage_server: ScriptedServer
) -> None:
    assert twin(home, "profile", "build").exit_code == 0
    before = json.loads(twin(home, "profile", "show", "--json").stdout)
    env = {
        "TWIN_LLM__SYNTHESIZER__BACKEND": "openai",
        "TWIN_LLM__SYNTHESIZER__BASE_URL": garbage_server.url,
        "TWIN_LLM__SYNTHESIZER__MODEL": "stand-in",
        "TWIN_LLM__SYNTHESIZER__MAX_RETRIES": "0",
    }
    failed = twin(home, "profile", "build", "--full", env=env)
    assert failed.exit_code == 1
    assert "no valid FactBatchReply" in failed.output
    assert "The previous profile is unchanged." in failed.output
    assert json.loads(twin(home, "profile", "show", "--json").stdout) == before
