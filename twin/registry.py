"""Trained twin models on disk: versions with manifests, and an atomically switched `current`.

    <home>/models/
        v0001/manifest.json   what was trained on what, with which results
        v0001/owner.gguf      answers the owner (trained on all memory)
        v0001/shared.gguf     answers everyone else (trained only on what friends may see)
        current.json          {"version": "v0001", "history": [...]}, replaced atomically

Training writes a version and promotes it; serving reads `current` and reloads when it changes.
Both sides use this module, so it lives in `twin` (training builds on twin, not the reverse).
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from core.clock import SYSTEM_CLOCK, Clock
from twin.privacy import AudienceKind

MANIFEST = "manifest.json"
CURRENT = "current.json"
_VERSION = re.compile(r"^v\d{4,}$")


class RegistryError(Exception):
    """A version is missing or broken; the message says which and why."""


class ModelFiles(BaseModel):
    """The GGUF files of one version, relative to its folder."""

    owner: str
    shared: str
    # Hugging Face folders (merged weights + tokenizer), kept for evaluation and re-export.
    owner_hf: str = ""
    shared_hf: str = ""


class Manifest(BaseModel):
    """What a version is: its base, the data it saw, how it was trained, how it scored."""

    version: str
    created_at: datetime
    base: str
    strategy: str
    data_hash: str
    samples: dict[str, int] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    files: ModelFiles
    memory_count: int = 0
    # How serving must prompt this model: what it was trained with.
    context_size: int = 2048
    max_new_tokens: int = 256
    context_memories: int = 4
    context_chars: int = 200
    context_bio: bool = True
    notes: str = ""


class CurrentPointer(BaseModel):
    version: str
    history: list[str] = Field(default_factory=list)
    switched_at: datetime


class ModelRegistry:
    """The versions under `<home>/models`."""

    def __init__(self, root: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.root = root
        self.clock = clock

    def versions(self) -> list[Manifest]:
        """Every readable version, oldest first."""
        if not self.root.exists():
            return []
        found = []
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and _VERSION.match(folder.name) and (folder / MANIFEST).exists():
                found.append(self.manifest(folder.name))
        return found

    def manifest(self, version: str) -> Manifest:
        path = self.root / version / MANIFEST
        if not path.exists():
            raise RegistryError(f"no model version {version!r} in {self.root}")
        try:
            return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise RegistryError(f"{path} is not a valid manifest: {exc}") from exc

    def allocate(self) -> Path:
        """A new, empty version folder (v0001, v0002, …)."""
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[1:]) for p in self.root.iterdir() if _VERSION.match(p.name)]
        folder = self.root / f"v{max(numbers, default=0) + 1:04d}"
        folder.mkdir()
        return folder

    def register(self, manifest: Manifest) -> None:
        """Write a version's manifest (after its files are in place); checks the files exist."""
        folder = self.root / manifest.version
        for name in (manifest.files.owner, manifest.files.shared):
            if not (folder / name).is_file():
                raise RegistryError(
                    f"{folder / name} is missing; cannot register {manifest.version}"
                )
        _write_atomic(folder / MANIFEST, manifest.model_dump_json(indent=2))

    def current(self) -> Manifest | None:
        """The version serving now, or None before the first promotion."""
        pointer = self._pointer()
        return self.manifest(pointer.version) if pointer else None

    def current_version(self) -> str | None:
        pointer = self._pointer()
        return pointer.version if pointer else None

    def promote(self, version: str) -> Manifest:
        """Make `version` current, atomically; the previous one is remembered for rollback."""
        manifest = self.manifest(version)
        pointer = self._pointer()
        history = [*(pointer.history if pointer else []), *([pointer.version] if pointer else [])]
        history = [v for v in history if v != version][-20:]
        self._write_pointer(
            CurrentPointer(version=version, history=history, switched_at=self.clock.now())
        )
        return manifest

    def rollback(self) -> Manifest:
        """Go back to the version that was current before this one."""
        pointer = self._pointer()
        if pointer is None or not pointer.history:
            raise RegistryError("there is no earlier version to roll back to")
        previous = pointer.history[-1]
        manifest = self.manifest(previous)
        self._write_pointer(
            CurrentPointer(
                version=previous, history=pointer.history[:-1], switched_at=self.clock.now()
            )
        )
        return manifest

    def gguf_path(self, manifest: Manifest, audience: AudienceKind) -> Path:
        """The model file that answers `audience`: the owner's own model, or the shared one."""
        name = manifest.files.owner if audience == AudienceKind.OWNER else manifest.files.shared
        return self.root / manifest.version / name

    def _pointer(self) -> CurrentPointer | None:
        path = self.root / CURRENT
        if not path.exists():
            return None
        try:
            return CurrentPointer.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise RegistryError(f"{path} is damaged: {exc}") from exc

    def _write_pointer(self, pointer: CurrentPointer) -> None:
        _write_atomic(self.root / CURRENT, pointer.model_dump_json(indent=2))


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
