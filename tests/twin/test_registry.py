"""The model registry: versions, manifests, the atomically switched `current`, rollback."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from twin.privacy import AudienceKind
from twin.registry import CURRENT, Manifest, ModelFiles, ModelRegistry, RegistryError


def add_version(registry: ModelRegistry, base: str = "tiny:small") -> Manifest:
    folder = registry.allocate()
    (folder / "owner.gguf").write_bytes(b"owner weights " + folder.name.encode())
    (folder / "shared.gguf").write_bytes(b"shared weights " + folder.name.encode())
    manifest = Manifest(
        version=folder.name,
        created_at=datetime.now(UTC),
        base=base,
        strategy="strong",
        data_hash="abc123",
        samples={"owner:train:memory_qa": 10},
        metrics={"owner.key_fact_accuracy": 0.9},
        files=ModelFiles(owner="owner.gguf", shared="shared.gguf"),
        context_size=1024,
        max_new_tokens=160,
        context_memories=3,
    )
    registry.register(manifest)
    return manifest


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def test_versions_are_numbered_and_listed_oldest_first(registry: ModelRegistry) -> None:
    assert registry.versions() == []
    assert registry.current() is None
    first, second = add_version(registry), add_version(registry, base="Qwen/Qwen2.5-0.5B")
    assert (first.version, second.version) == ("v0001", "v0002")
    listed = registry.versions()
    assert [m.version for m in listed] == ["v0001", "v0002"]
    assert listed[1].base == "Qwen/Qwen2.5-0.5B"
    assert listed[0] == first  # the manifest round-trips
    # registering does not serve
    assert registry.current() is None


def test_promote_serves_and_rollback_returns(registry: ModelRegistry) -> None:
    for _ in range(3):
        add_version(registry)
    registry.promote("v0001")
    registry.promote("v0002")
    registry.promote("v0003")
    current = registry.current()
    assert current is not None and current.version == "v0003"
    path = registry.gguf_path(current, AudienceKind.FRIEND)
    assert path.read_bytes() == b"shared weights v0003"
    assert registry.gguf_path(current, AudienceKind.OWNER).name == "owner.gguf"
    assert registry.rollback().version == "v0002"
    assert registry.rollback().version == "v0001"
    assert registry.current_version() == "v0001"
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback()
    # promoting an older version again moves it to the top, without a duplicate in history
    registry.promote("v0003")
    registry.promote("v0001")
    assert registry.rollback().version == "v0003"


def test_unknown_or_incomplete_versions_are_refused(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="no model version 'v0042'"):
        registry.promote("v0042")
    folder = registry.allocate()
    (folder / "owner.gguf").write_bytes(b"x")
    manifest = Manifest(
        version=folder.name,
        created_at=datetime.now(UTC),
        base="tiny:small",
        strategy="weak",
        data_hash="-",
        files=ModelFiles(owner="owner.gguf", shared="shared.gguf"),
    )
    with pytest.raises(RegistryError, match=r"shared\.gguf is missing"):
        registry.register(manifest)
    # a folder without a manifest is no version
    assert registry.versions() == []
    assert registry.allocate().name == "v0002"


def test_a_damaged_pointer_is_reported(registry: ModelRegistry) -> None:
    add_version(registry)
    registry.promote("v0001")
    (registry.root / CURRENT).write_text("{not json")
    with pytest.raises(RegistryError, match="damaged"):
        registry.current()


def test_readers_never_see_a_half_written_pointer(registry: ModelRegistry) -> None:
    """While one thread switches versions back and forth, readers always find a whole,
    valid pointer naming one of the two versions."""
    add_version(registry)
    add_version(registry)
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


def test_pointer_is_replaced_not_rewritten(registry: ModelRegistry) -> None:
    """The switch is a rename: a reader holding the old file keeps reading the old version."""
    add_version(registry)
    add_version(registry)
    registry.promote("v0001")
    with (registry.root / CURRENT).open() as held:
        inode = os.fstat(held.fileno()).st_ino
        registry.promote("v0002")
        assert json.loads(held.read())["version"] == "v0001"
    assert os.stat(registry.root / CURRENT).st_ino != inode
    assert registry.current_version() == "v0002"
