"""The sample persona in a store, with its L1 profile built offline once for the session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FixedClock
from memory.embed import SentenceTransformerEmbedder
from memory.models import Visibility
from memory.profile import BuildReport, ProfileBuilder
from memory.store import MemoryStore
from tests.conftest import PERSONA_NOW
from twin.config import load_settings
from twin.ingest import parse_paths, store_parsed

OWNER = "Iris Calder"
# In examples/persona only notes/private/ holds these (see examples/persona/README.md).
PRIVATE_STRINGS = ("Remédios", "4071", "Monterey", "Helena Alves", "18,000", "18000")


@pytest.fixture(autouse=True)
def _torch_on_one_thread(torch_single_thread: None) -> None:
    """Embedding runs torch single-threaded (see `torch_single_thread`)."""


@pytest.fixture(scope="session")
def persona_store(
    tmp_path_factory: pytest.TempPathFactory,
    persona_dir: Path,
    embedder: SentenceTransformerEmbedder,
    torch_single_thread: None,
) -> Iterator[MemoryStore]:
    """The whole persona ingested with its twin.toml. Notes are imported with a default of
    `friends`, so each keeps the narrower visibility its front matter gives: notes/private/
    stays private while the other notes are friends, which puts private and friends memories
    about the same life side by side."""
    home = tmp_path_factory.mktemp("persona")
    shutil.copy(persona_dir / "twin.toml", home / "twin.toml")
    settings = load_settings(home)
    paths = [persona_dir / "notes"]
    for folder in ("telegram", "discord", "whatsapp"):
        paths.extend(sorted((persona_dir / folder).iterdir()))
    with MemoryStore.open(home / "memory", embedder) as store:
        for item in parse_paths(paths, settings):
            visibility = Visibility.FRIENDS if item.format == "notes" else None
            store_parsed(store, item, settings, ceiling=visibility, default_visibility=visibility)
        yield store


@pytest.fixture(scope="session")
def persona_build(persona_store: MemoryStore) -> BuildReport:
    """The first, offline build of the persona's profile."""
    return ProfileBuilder(persona_store, OWNER, clock=FixedClock(PERSONA_NOW)).build()
