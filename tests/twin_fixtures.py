"""A whole twin for tests: the sample persona's home with memory ingested and a model trained.

`persona_home_template` ingests the persona once per session; `persona_home` gives each test its
own copy (tests may add and forget memories). `persona_models` trains the persona's twin once per
session with the real pipeline on the packaged SmolLM2 base (the smoke recipe: a few LoRA steps),
and `persona_twin` opens a `Twin` on a copy of the home with those models serving (hard links:
registered model files are read-only, so no test can damage the shared copy).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FixedClock
from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryStore
from serving.answerers import TwinModels
from serving.service import Twin
from tests.conftest import PERSONA_NOW
from training.bases import Base
from training.pipeline import TrainingRun
from training.recipe import RunOptions
from twin.config import Settings, load_settings
from twin.ingest import parse_paths, store_parsed
from twin.privacy import ModelSide
from twin.registry import Manifest, ModelFiles, ModelRegistry


def persona_inputs(persona: Path) -> list[Path]:
    """The persona's exports and notes folder, as `twin ingest` would be given them."""
    chats = [
        p for folder in ("telegram", "discord", "whatsapp") for p in (persona / folder).iterdir()
    ]
    return [*sorted(chats), persona / "notes"]


def ingest_persona(home: Path, persona: Path, embedder: SentenceTransformerEmbedder) -> Settings:
    """A home at `home` with the twin.toml and all the memory of the persona at `persona`."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(persona / "twin.toml", home / "twin.toml")
    settings = load_settings(home)
    # stored as of the persona's day: whatever a test adds or trains later is newer
    stored_on = FixedClock(PERSONA_NOW)
    with MemoryStore.open(settings.paths.memory_dir, embedder, clock=stored_on) as store:
        for parsed in parse_paths(persona_inputs(persona), settings):
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
        created_at=PERSONA_NOW,
        base="tests",
        strategy="weak",
        data_hash="-",
        models={
            ModelSide.OWNER: ModelFiles(ggufs=["owner.gguf"]),
            ModelSide.SHARED: ModelFiles(ggufs=["shared.gguf"]),
        },
        context_size=512,
        max_new_tokens=24,
        notes=version_note,
    )
    registry.register(manifest)
    registry.promote(manifest.version)
    return manifest


def link_models(source: Path, target: Path) -> None:
    """A copy of a models folder: its read-only model files hard-linked (they are large and
    nothing writes them), everything else (pointer, manifests) copied, so a test that
    damages those damages its own copy only."""

    def place(src: str, dst: str) -> None:
        if os.access(src, os.W_OK):
            shutil.copy2(src, dst)
        else:
            os.link(src, dst)

    shutil.copytree(source, target, dirs_exist_ok=True, copy_function=place)


def promote_a_copy(registry: ModelRegistry) -> str:
    """A new version with the current one's files (hard links) and manifest, promoted."""
    current = registry.current()
    assert current is not None
    folder = registry.allocate()
    for side in ModelSide:
        for name in current.files(side).ggufs:
            os.link(registry.folder(current) / name, folder / name)
    registry.register(current.model_copy(update={"version": folder.name}))
    registry.promote(folder.name)
    return folder.name


@pytest.fixture(scope="session")
def persona_home_template(
    tmp_path_factory: pytest.TempPathFactory,
    persona_dir: Path,
    embedder: SentenceTransformerEmbedder,
) -> Path:
    home = tmp_path_factory.mktemp("persona") / "home"
    ingest_persona(home, persona_dir, embedder)
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
    smollm2_base: Base,
) -> Path:
    """The models folder of the persona's twin, trained from its memory by `twin train`'s
    pipeline on the packaged base (smoke recipe): an owner and a shared model, v0001."""
    home = tmp_path_factory.mktemp("persona-trained") / "home"
    shutil.copytree(persona_home_template, home)
    settings = load_settings(home, training={"quantizations": ["q8_0"]})
    options = RunOptions(base=str(smollm2_base.folder), fast=True, threads=2)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        result = TrainingRun.create(settings, store, options, clock=FixedClock(PERSONA_NOW)).run()
    assert result.promoted, result
    return settings.paths.models_dir


@pytest.fixture
def persona_twin(
    persona_home: Path, persona_models: Path, embedder: SentenceTransformerEmbedder
) -> Iterator[Twin]:
    """A Twin on the persona's memory, answering with the persona's trained tiny twin."""
    settings = load_settings(persona_home)
    link_models(persona_models, settings.paths.models_dir)
    store = MemoryStore.open(settings.paths.memory_dir, embedder)
    twin = Twin(settings, store, TwinModels(ModelRegistry(settings.paths.models_dir), threads=1))
    yield twin
    twin.models.close()
    store.close()
