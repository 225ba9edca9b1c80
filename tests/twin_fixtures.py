"""A whole twin for tests: the sample persona's home with memory ingested and a model trained.

`persona_home_template` ingests the persona once per session; `persona_home` gives each test its
own copy (tests may add and forget memories). `persona_models` trains the persona's twin once per
session with the real pipeline (the smoke recipe: the micro model, a minute on two threads), and
`persona_twin` opens a `Twin` on a copy of the home with those models serving.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from training.pipeline import TrainingRun
from training.recipe import RunOptions
from twin.config import Settings, load_settings
from twin.ingest import parse_paths, store_parsed
from twin.registry import Manifest, ModelFiles, ModelRegistry
from twin.service import Twin, TwinModels

PERSONA = Path(__file__).resolve().parents[1] / "examples" / "persona"


def persona_inputs(persona: Path = PERSONA) -> list[Path]:
    """The persona's exports and notes folder, as `twin ingest` would be given them."""
    chats = [
        p for folder in ("telegram", "discord", "whatsapp") for p in (persona / folder).iterdir()
    ]
    return [*sorted(chats), persona / "notes"]


def ingest_persona(home: Path, embedder: SentenceTransformerEmbedder) -> Settings:
    """A home at `home` with the persona's twin.toml and all its memory ingested."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PERSONA / "twin.toml", home / "twin.toml")
    settings = load_settings(home)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        for parsed in parse_paths(persona_inputs(), settings):
            store_parsed(store, parsed, settings)
    return settings


def register_model(home: Path, gguf: Path, *, version_note: str = "test model") -> Manifest:
    """Register `gguf` as both the owner's and the shared model of a new current version."""
    registry = ModelRegistry(home / "models")
    folder = registry.allocate()
    shutil.copy(gguf, folder / "owner.gguf")
    shutil.copy(gguf, folder / "shared.gguf")
    manifest = Manifest(
        version=folder.name,
        created_at=datetime.now(UTC),
        base="tests",
        strategy="weak",
        data_hash="-",
        files=ModelFiles(owner="owner.gguf", shared="shared.gguf"),
        context_size=512,
        max_new_tokens=24,
        notes=version_note,
    )
    registry.register(manifest)
    registry.promote(manifest.version)
    return manifest


@pytest.fixture(scope="session")
def persona_home_template(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Path:
    home = tmp_path_factory.mktemp("persona") / "home"
    ingest_persona(home, embedder)
    return home


@pytest.fixture
def persona_home(tmp_path: Path, persona_home_template: Path) -> Path:
    """A private copy of the ingested persona home for one test."""
    home = tmp_path / "home"
    shutil.copytree(persona_home_template, home)
    return home


@pytest.fixture(scope="session")
def persona_models(
    tmp_path_factory: pytest.TempPathFactory,
    persona_home_template: Path,
    embedder: SentenceTransformerEmbedder,
) -> Path:
    """The models folder of the persona's twin, trained from its memory by `twin train`'s
    pipeline (smoke recipe): an owner and a shared model, current version v0001."""
    home = tmp_path_factory.mktemp("persona-trained") / "home"
    shutil.copytree(persona_home_template, home)
    settings = load_settings(home)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        result = TrainingRun.create(settings, store, RunOptions(fast=True, threads=2)).run()
    assert result.promoted, result
    return settings.paths.models_dir


@pytest.fixture
def persona_twin(
    persona_home: Path, persona_models: Path, embedder: SentenceTransformerEmbedder
) -> Iterator[Twin]:
    """A Twin on the persona's memory, answering with the persona's trained tiny twin."""
    settings = load_settings(persona_home)
    shutil.copytree(persona_models, settings.paths.models_dir, dirs_exist_ok=True)
    store = MemoryStore.open(settings.paths.memory_dir, embedder)
    twin = Twin(settings, store, TwinModels(settings, ModelRegistry(settings.paths.models_dir)))
    yield twin
    twin.models.close()
    store.close()
