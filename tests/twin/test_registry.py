"""The model registry: versions, manifests, the atomically switched `current`, rollback, and
the one health check every face uses for damaged model files."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from core.clock import FixedClock
from tests.conftest import PERSONA_NOW
from twin.privacy import ModelSide
from twin.registry import (
    CURRENT,
    MANIFEST,
    PROMOTE_HINT,
    Manifest,
    ModelFiles,
    ModelMetrics,
    ModelRegistry,
    RegistryError,
)


def add_version(
    registry: ModelRegistry, gguf: Path, base: str = "smollm2-135m-instruct"
) -> Manifest:
    """A version whose models are copies of `gguf`, with an f16 fallback file each."""
    folder = registry.allocate()
    for side in ModelSide:
        for quant in ("q8_0", "f16"):
            shutil.copy(gguf, folder / f"{side}.{quant}.gguf")
    manifest = Manifest(
        version=folder.name,
        created_at=PERSONA_NOW,
        base=base,
        strategy="strong",
        data_hash="abc123",
        models={
            side: ModelFiles(ggufs=[f"{side}.q8_0.gguf", f"{side}.f16.gguf"]) for side in ModelSide
        },
        samples={"owner:train:memory_qa": 10},
        metrics={ModelSide.OWNER: ModelMetrics(key_fact_accuracy=0.9)},
        context_size=1024,
        max_new_tokens=160,
        context_memories=3,
    )
    registry.register(manifest)
    return manifest


def truncate(path: Path, keep: int = 4096) -> None:
    path.chmod(0o644)
    data = path.read_bytes()[:keep]
    path.write_bytes(data)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def test_versions_are_numbered_and_listed_oldest_first(
    registry: ModelRegistry, tiny_gguf_path: Path
) -> None:
    assert registry.versions() == []
    assert registry.current() is None
    first = add_version(registry, tiny_gguf_path)
    second = add_version(registry, tiny_gguf_path, base="Qwen/Qwen2.5-0.5B")
    assert (first.version, second.version) == ("v0001", "v0002")
    listed = registry.versions()
    assert [m.version for m in listed] == ["v0001", "v0002"]
    assert listed[1].base == "Qwen/Qwen2.5-0.5B"
    assert listed[0] == first  # the manifest round-trips
    assert listed[0].metric(ModelSide.OWNER).key_fact_accuracy == 0.9
    assert listed[0].metric(ModelSide.SHARED).key_fact_accuracy is None
    # registering does not serve, and registered model files are read-only
    assert registry.current() is None
    assert (registry.root / "v0001" / "owner.q8_0.gguf").stat().st_mode & 0o222 == 0


def test_promote_serves_and_rollback_returns(registry: ModelRegistry, tiny_gguf_path: Path) -> None:
    for _ in range(3):
        add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    registry.promote("v0002")
    registry.promote("v0003")
    current = registry.current()
    assert current is not None and current.version == "v0003"
    health = registry.health()
    assert health.healthy and health.summary() == "v0003 is serving."
    shared = health.side(ModelSide.SHARED)
    assert shared is not None and shared.usable == registry.root / "v0003" / "shared.q8_0.gguf"
    assert registry.rollback().version == "v0002"
    assert registry.rollback().version == "v0001"
    assert registry.current_version() == "v0001"
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback()
    # promoting an older version again moves it to the top, without a duplicate in history
    registry.promote("v0003")
    registry.promote("v0001")
    assert registry.rollback().version == "v0003"


def test_unknown_or_incomplete_versions_are_refused(
    registry: ModelRegistry, tiny_gguf_path: Path
) -> None:
    with pytest.raises(RegistryError, match="no model version 'v0042'"):
        registry.promote("v0042")
    folder = registry.allocate()
    shutil.copy(tiny_gguf_path, folder / "owner.gguf")
    manifest = Manifest(
        version=folder.name,
        created_at=PERSONA_NOW,
        base="tests",
        strategy="weak",
        data_hash="-",
        models={side: ModelFiles(ggufs=[f"{side}.gguf"]) for side in ModelSide},
    )
    with pytest.raises(RegistryError, match=r"shared\.gguf \(shared model\): missing"):
        registry.register(manifest)
    # a folder without a manifest is no version
    assert registry.versions() == []
    assert registry.allocate().name == "v0002"


def test_a_damaged_model_file_falls_back_to_its_sibling(
    registry: ModelRegistry, tiny_gguf_path: Path
) -> None:
    add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    truncate(registry.root / "v0001" / "owner.q8_0.gguf")
    health = registry.health()
    owner = health.side(ModelSide.OWNER)
    assert owner is not None and owner.usable == registry.root / "v0001" / "owner.f16.gguf"
    assert health.healthy
    assert "serves from fallback files" in health.summary()
    assert "owner.q8_0.gguf truncated" in health.summary()


def test_a_model_with_no_whole_file_cannot_serve(
    registry: ModelRegistry, tiny_gguf_path: Path
) -> None:
    add_version(registry, tiny_gguf_path)
    add_version(registry, tiny_gguf_path)
    registry.promote("v0002")
    for quant in ("q8_0", "f16"):
        truncate(registry.root / "v0002" / f"shared.{quant}.gguf")
    health = registry.health()
    assert not health.healthy
    shared = health.side(ModelSide.SHARED)
    assert shared is not None and shared.usable is None
    summary = health.summary()
    assert summary.startswith("v0002 cannot serve (shared:") and PROMOTE_HINT in summary
    # a damaged version is not promoted again; the intact one is
    with pytest.raises(RegistryError, match="v0002 cannot serve"):
        registry.promote("v0002")
    assert registry.promote("v0001").version == "v0001"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda root: (root / CURRENT).write_text("{not json"), "current.json is damaged"),
        (lambda root: shutil.rmtree(root / "v0001"), "no model version 'v0001'"),
        (lambda root: (root / "v0001" / MANIFEST).write_text(""), "not a valid manifest"),
        (
            lambda root: (root / "v0001" / MANIFEST).write_text(
                json.dumps({"version": "v0001", "files": {"owner": "o.gguf"}})
            ),
            "made by an earlier twin",
        ),
    ],
)
def test_a_damaged_registry_is_a_problem_not_a_crash(
    registry: ModelRegistry, tiny_gguf_path: Path, damage: Callable[[Path], object], expected: str
) -> None:
    add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    damage(registry.root)
    health = registry.health()
    assert health.manifest is None and not health.healthy
    assert expected in health.problem and PROMOTE_HINT in health.problem


def test_a_damaged_pointer_is_replaced_by_a_promotion(
    registry: ModelRegistry, tiny_gguf_path: Path
) -> None:
    add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    (registry.root / CURRENT).write_text("{not json")
    with pytest.raises(RegistryError, match="damaged"):
        registry.current()
    registry.promote("v0001")
    assert registry.current_version() == "v0001"


def test_unreadable_versions_are_named(registry: ModelRegistry, tiny_gguf_path: Path) -> None:
    add_version(registry, tiny_gguf_path)
    add_version(registry, tiny_gguf_path)
    (registry.root / "v0002" / MANIFEST).write_text("{}")
    assert [m.version for m in registry.versions()] == ["v0001"]
    (problem,) = registry.problems()
    assert "v0002" in problem and "not a valid manifest" in problem


def test_readers_never_see_a_half_written_pointer(
    registry: ModelRegistry, tiny_gguf_path: Path
) -> None:
    """While one thread switches versions back and forth, readers always find a whole,
    valid pointer naming one of the two versions."""
    add_version(registry, tiny_gguf_path)
    add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    stop = threading.Event()
    seen: set[str] = set()
    failures: list[BaseException] = []

    def read() -> None:
        reader = ModelRegistry(registry.root)
        while not stop.is_set():
            try:
                seen.add(reader.current_version() or "none")
            except BaseException as exc:  # a torn read would raise here
                failures.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for i in range(150):
        registry.promote("v0002" if i % 2 == 0 else "v0001")
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []
    assert seen <= {"v0001", "v0002"} and seen
    # the switch leaves no temporary files behind
    assert sorted(p.name for p in registry.root.iterdir()) == [CURRENT, "v0001", "v0002"]
    pointer = json.loads((registry.root / CURRENT).read_text())
    assert pointer["version"] == "v0001"  # the last switch (i = 149)


def test_pointer_is_replaced_not_rewritten(registry: ModelRegistry, tiny_gguf_path: Path) -> None:
    """The switch is a rename: a reader holding the old file keeps reading the old version."""
    add_version(registry, tiny_gguf_path)
    add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    with (registry.root / CURRENT).open() as held:
        inode = os.fstat(held.fileno()).st_ino
        registry.promote("v0002")
        assert json.loads(held.read())["version"] == "v0001"
    assert os.stat(registry.root / CURRENT).st_ino != inode
    assert registry.current_version() == "v0002"


def test_promotion_time_comes_from_the_clock(tmp_path: Path, tiny_gguf_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models", clock=FixedClock(PERSONA_NOW))
    add_version(registry, tiny_gguf_path)
    registry.promote("v0001")
    pointer = json.loads((registry.root / CURRENT).read_text())
    assert pointer["switched_at"].startswith("2026-11-21T12:00:00")
