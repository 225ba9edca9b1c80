"""Scheduled retraining: when it is needed, and the persistent schedule serving reads."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.job_store import next_retraining
from memory.embed import SentenceTransformerEmbedder
from memory.models import SourceRef
from memory.store import MemoryStore
from tests.twin_fixtures import register_model
from training.schedule import RetrainScheduler, decide, retrain_if_needed
from twin.config import ConfigError, load_settings
from twin.registry import ModelRegistry


def test_retraining_is_needed_without_a_model_with_new_memories_and_after_forgetting(
    persona_home: Path, tiny_gguf_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    settings = load_settings(persona_home)
    registry = ModelRegistry(settings.paths.models_dir)
    with MemoryStore.open(settings.paths.memory_dir, embedder) as store:
        assert decide(store, registry, min_new=3).needed
        register_model(persona_home, tiny_gguf_path)
        quiet = decide(store, registry, min_new=3)
        assert not quiet.needed and quiet.new_memories == 0

        src = SourceRef("manual", "manual", "Remembered")
        added = [store.add(f"new thing number {i}", source=src) for i in range(3)]
        moved = decide(store, registry, min_new=3)
        assert moved.needed and moved.new_memories == 3

        register_model(persona_home, tiny_gguf_path)
        store.forget([added[0].id])
        forgot = decide(store, registry, min_new=3)
        assert forgot.needed and forgot.forgotten == 1 and "forgotten" in forgot.reason


def test_the_scheduled_job_builds_l1_and_skips_training_when_nothing_moved(
    persona_home: Path, tiny_gguf_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    register_model(persona_home, tiny_gguf_path)
    before = [m.version for m in ModelRegistry(persona_home / "models").versions()]
    decision = retrain_if_needed(str(persona_home))
    assert not decision.needed
    assert [m.version for m in ModelRegistry(persona_home / "models").versions()] == before
    with MemoryStore.open(load_settings(persona_home).paths.memory_dir, embedder) as store:
        built = store.conn.execute("SELECT count(*) FROM profile_builds").fetchone()[0]
    assert built >= 1, "the job builds L1 even when it does not retrain"


def test_the_schedule_persists_and_serving_reads_the_next_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "twin.toml").write_text('[schedule]\nretrain_cron = "15 4 * * *"\n')
    settings = load_settings(home)
    assert next_retraining(settings.paths.schedule_db) is None

    async def run_once() -> None:
        scheduler = RetrainScheduler(settings)
        await scheduler.start()
        await scheduler.stop()

    asyncio.run(run_once())
    when = next_retraining(settings.paths.schedule_db)
    assert when is not None and when > datetime.now(UTC)
    assert when.astimezone().strftime("%H:%M") == "04:15"
    copy = tmp_path / "copy.sqlite"
    shutil.copy(settings.paths.schedule_db, copy)
    assert next_retraining(copy) == when, "the job survives a restart in its SQLite store"


def test_a_bad_cron_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "twin.toml").write_text('[schedule]\nretrain_cron = "every night"\n')
    with pytest.raises(ConfigError, match="retrain_cron"):
        RetrainScheduler(load_settings(tmp_path))
