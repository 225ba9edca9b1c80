"""Trained twin models on disk: versions with manifests, and an atomically switched `current`.

    <home>/models/
        v0001/manifest.json      what was trained on what, with which results
        v0001/owner.q8_0.gguf    answers the owner (trained on all memory)
        v0001/shared.q8_0.gguf   answers everyone else (trained only on what friends may see)
        v0001/owner.f16.gguf …   the other quantisations, tried when the served one is damaged
        v0001/adapters/…         the LoRA adapters each model is made of (for re-export)
        current.json             {"version": "v0001", "history": [...]}, replaced atomically

Training writes a version and promotes it; serving reads `current`, checks the files are whole
(`health`) and reloads when `current` changes. Model files are read-only once registered: the
registry holds the only copy, so nothing else can damage it. Both sides use this module, so it
lives below training and serving.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from core.clock import SYSTEM_CLOCK, Clock
from core.gguf_file import gguf_problem
from twin.privacy import ModelSide
from twin.tasks import TaskKind

MANIFEST = "manifest.json"
CURRENT = "current.json"
_VERSION = re.compile(r"^v\d{4,}$")
PROMOTE_HINT = "serve another version with `twin models promote VERSION` (see `twin models list`)"


class RegistryError(Exception):
    """A version is missing or broken; the message says which and why."""


class ModelFiles(BaseModel):
    """One model of a version: its GGUF files, best first (the first is served, the others are
    fallbacks), and the LoRA adapters it was merged from, relative to the version folder."""

    ggufs: list[str] = Field(min_length=1)
    adapters: list[str] = Field(default_factory=list)


class ModelMetrics(BaseModel):
    """What training and evaluation measured for one model (None: not measured)."""

    train_samples: int | None = None
    test_samples: int | None = None
    sft_loss: float | None = None
    sft_tokens: int | None = None
    sft_tokens_per_second: float | None = None
    dpo_pairs: int | None = None
    dpo_loss: float | None = None
    dpo_reward_accuracy: float | None = None
    held_out_reward_accuracy: float | None = None
    key_fact_accuracy: float | None = None
    key_fact_graded: int | None = None
    # the untuned base on the same held-out samples: what fine-tuning must beat to be served
    base_key_fact_accuracy: float | None = None
    # held-out samples only the base got right, and only the model (the gate compares pairs)
    base_only_right: int | None = None
    model_only_right: int | None = None
    accuracy_by_kind: dict[str, float] = Field(default_factory=dict)

    def merged(self, newer: ModelMetrics) -> ModelMetrics:
        """These metrics with every field `newer` measured (not None, not empty) replaced."""
        measured = {k: v for k, v in newer if v is not None and v != {}}
        return self.model_copy(update=measured)


class Manifest(BaseModel):
    """What a version is: its base, the data it saw, how it was trained, how it scored."""

    version: str
    created_at: datetime
    base: str
    strategy: str
    data_hash: str
    models: dict[ModelSide, ModelFiles]
    samples: dict[str, int] = Field(default_factory=dict)
    metrics: dict[ModelSide, ModelMetrics] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    memory_count: int = 0
    # How serving must prompt this model: what it was trained with.
    context_size: int = 2048
    max_new_tokens: int = 256
    # The longest reply of each task the models were trained on, in tokens: a reply that runs
    # far past it is a ramble, so serving stops there (see `Answerer.reply_cap`).
    longest_replies: dict[TaskKind, int] = Field(default_factory=dict)
    context_memories: int = 4
    context_chars: int = 200
    context_bio: bool = True
    # The training run that made this version (empty for a version registered by hand).
    run_id: str = ""
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _not_the_old_format(cls, data: Any) -> Any:
        if isinstance(data, dict) and "files" in data and "models" not in data:
            raise ValueError(
                "made by an earlier twin (the from-scratch tiny base); train again with "
                "`twin train`"
            )
        return data

    @model_validator(mode="after")
    def _both_models(self) -> Manifest:
        missing = [str(side) for side in ModelSide if side not in self.models]
        if missing:
            raise ValueError(f"the manifest names no {' or '.join(missing)} model")
        return self

    def files(self, side: ModelSide) -> ModelFiles:
        return self.models[side]

    def metric(self, side: ModelSide) -> ModelMetrics:
        return self.metrics.get(side, ModelMetrics())


@dataclass(frozen=True)
class SideHealth:
    """Whether one model of a version can answer: the first whole GGUF file, and what is wrong
    with the ones before it."""

    side: ModelSide
    usable: Path | None
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.usable is not None


@dataclass(frozen=True)
class Health:
    """The state of the version serving now: its manifest, or why there is none, and each
    model's files."""

    version: str | None
    manifest: Manifest | None
    problem: str = ""
    sides: tuple[SideHealth, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.manifest is not None and all(s.healthy for s in self.sides)

    def side(self, side: ModelSide) -> SideHealth | None:
        return next((s for s in self.sides if s.side == side), None)

    def summary(self) -> str:
        """One line for a person: what serves, or what is wrong and what to do."""
        if self.manifest is None:
            return self.problem or "No model is trained yet: run `twin train`."
        broken = [s for s in self.sides if s.problems]
        if not broken:
            return f"{self.version} is serving."
        details = "; ".join(f"{s.side}: {', '.join(s.problems)}" for s in broken)
        if self.healthy:
            return f"{self.version} serves from fallback files ({details})."
        return f"{self.version} cannot serve ({details}); {PROMOTE_HINT}."


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
        """Every readable version, oldest first (damaged ones are left out; `problems` names
        them)."""
        found = []
        for name in self._version_names():
            try:
                found.append(self.manifest(name))
            except RegistryError:
                continue
        return found

    def problems(self) -> list[str]:
        """What is wrong with each version folder that cannot be read."""
        out = []
        for name in self._version_names():
            try:
                self.manifest(name)
            except RegistryError as exc:
                out.append(str(exc))
        return out

    def manifest(self, version: str) -> Manifest:
        path = self.root / version / MANIFEST
        if not path.is_file():
            raise RegistryError(f"no model version {version!r} in {self.root}")
        try:
            return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, UnicodeDecodeError, OSError) as exc:
            raise RegistryError(f"{path} is not a valid manifest: {_first_error(exc)}") from exc

    def allocate(self) -> Path:
        """A new, empty version folder (v0001, v0002, …)."""
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[1:]) for p in self.root.iterdir() if _VERSION.match(p.name)]
        folder = self.root / f"v{max(numbers, default=0) + 1:04d}"
        folder.mkdir()
        return folder

    def register(self, manifest: Manifest) -> None:
        """Write a version's manifest once its files are in place: checks that every GGUF is
        whole and makes the files read-only."""
        folder = self.root / manifest.version
        for side, files in manifest.models.items():
            for name in files.ggufs:
                problem = gguf_problem(folder / name)
                if problem:
                    raise RegistryError(
                        f"{folder / name} ({side} model): {problem}; cannot register "
                        f"{manifest.version}"
                    )
                (folder / name).chmod(0o444)
        _write_atomic(folder / MANIFEST, manifest.model_dump_json(indent=2))

    def current(self) -> Manifest | None:
        """The version serving now, or None before the first promotion."""
        pointer = self._pointer()
        return self.manifest(pointer.version) if pointer else None

    def current_version(self) -> str | None:
        pointer = self._pointer()
        return pointer.version if pointer else None

    def health(self, refused: Mapping[Path, str] | None = None) -> Health:
        """Whether the version serving now can answer, side by side. Never raises: a damaged
        pointer, a missing version or a broken manifest is a problem in the result. `refused`
        are files known to be broken beyond what their header shows (llama.cpp would not load
        them), with why."""
        try:
            pointer = self._pointer()
        except RegistryError as exc:
            return Health(None, None, f"{exc}; {PROMOTE_HINT}.")
        if pointer is None:
            return Health(None, None, "No model is trained yet: run `twin train`.")
        try:
            manifest = self.manifest(pointer.version)
        except RegistryError as exc:
            return Health(pointer.version, None, f"{exc}; {PROMOTE_HINT}.")
        sides = tuple(self.side_health(manifest, s, refused) for s in ModelSide)
        return Health(pointer.version, manifest, sides=sides)

    def side_health(
        self, manifest: Manifest, side: ModelSide, refused: Mapping[Path, str] | None = None
    ) -> SideHealth:
        """The first whole GGUF of one model, and what is wrong with the ones before it."""
        folder = self.root / manifest.version
        problems = []
        for name in manifest.files(side).ggufs:
            problem = (refused or {}).get(folder / name) or gguf_problem(folder / name)
            if problem is None:
                return SideHealth(side, folder / name, tuple(problems))
            problems.append(f"{name} {problem}")
        return SideHealth(side, None, tuple(problems))

    def promote(self, version: str) -> Manifest:
        """Make `version` current, atomically; the previous one is remembered for rollback.
        A version whose model files are damaged is refused."""
        manifest = self.manifest(version)
        broken = [h for h in (self.side_health(manifest, s) for s in ModelSide) if not h.healthy]
        if broken:
            details = "; ".join(f"{h.side}: {', '.join(h.problems)}" for h in broken)
            raise RegistryError(f"{version} cannot serve: {details}")
        try:
            pointer = self._pointer()
        except RegistryError:
            pointer = None  # a damaged pointer is replaced, history and all
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

    def folder(self, manifest: Manifest) -> Path:
        return self.root / manifest.version

    def _version_names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name))

    def _pointer(self) -> CurrentPointer | None:
        path = self.root / CURRENT
        if not path.exists():
            return None
        try:
            return CurrentPointer.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, UnicodeDecodeError, OSError) as exc:
            raise RegistryError(f"{path} is damaged: {_first_error(exc)}") from exc

    def _write_pointer(self, pointer: CurrentPointer) -> None:
        _write_atomic(self.root / CURRENT, pointer.model_dump_json(indent=2))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error: dict[str, Any] = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "(file)"
        return f"{where}: {error['msg']}"
    return str(exc)


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
