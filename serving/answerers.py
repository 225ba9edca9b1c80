"""Which model answers whom, and what happens when it cannot.

A `twin` LLM in the config (e.g. an OpenAI-compatible server) answers everyone: it was not
trained on memory, so its weights hold nothing private. Otherwise the registry's current
version answers: the owner's model for the owner, the shared model for everyone else. Every
call checks the registry (a newly promoted version is picked up without a restart) and its
health: a damaged model file gives way to the version's next whole one, and when none is left
the caller gets no model and the one-line reason, which every face shows the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lm import LLM, GenerationOptions, LlamaCppLLM, LLMUnavailable
from twin.privacy import AudienceKind, ModelSide
from twin.registry import PROMOTE_HINT, Health, Manifest, ModelRegistry
from twin.tasks import CoTStrategy, PromptBudget, TaskKind

log = logging.getLogger(__name__)

# a few tokens past the longest trained reply, for the end-of-turn and a word or two more
REPLY_SLACK_TOKENS = 8


@dataclass(frozen=True)
class Answerer:
    """A model ready to answer, with how it must be prompted."""

    # which model answers, for replies and logs ("v0003/shared")
    label: str
    llm: LLM
    strategy: CoTStrategy
    budget: PromptBudget
    context_size: int
    max_new_tokens: int
    version: str = ""
    path: Path | None = None
    # per task, the longest reply the model was trained to give (tokens); none: no cap but the max
    longest_replies: Mapping[TaskKind, int] = field(default_factory=dict)

    def reply_cap(self, kind: TaskKind) -> int:
        """How many tokens a reply to a `kind` request may run to: a quarter past the longest
        reply of that task the model learned (a ramble stops early), never past the maximum."""
        longest = self.longest_replies.get(kind)
        if longest is None:
            return self.max_new_tokens
        return min(self.max_new_tokens, longest + longest // 4 + REPLY_SLACK_TOKENS)


@dataclass(frozen=True)
class Choice:
    """The model for an audience, or why there is none."""

    answerer: Answerer | None
    problem: str = ""


class TwinModels:
    """The models that answer, per audience (see the module's docstring)."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        configured: Answerer | None = None,
        threads: int = 0,
    ) -> None:
        self.registry = registry
        self.configured = configured
        self.threads = threads
        self._loaded: dict[ModelSide, Answerer] = {}
        # files llama.cpp refused to load, so the next call tries the next one
        self._refused: dict[Path, str] = {}
        self._lock = threading.Lock()

    def choose(self, kind: AudienceKind) -> Choice:
        """The model that answers `kind`, loading it when the served version changed."""
        if self.configured is not None:
            return Choice(self.configured)
        side = ModelSide.answering(kind)
        with self._lock:
            while True:
                health = self.health()
                if health.manifest is None:
                    return Choice(None, health.problem)
                usable = health.side(side)
                if usable is None or usable.usable is None:
                    return Choice(None, health.summary())
                loaded = self._loaded.get(side)
                if loaded is not None and loaded.path == usable.usable:
                    return Choice(loaded)
                if loaded is not None:
                    loaded.llm.close()  # a new version (or a fallback file): let the old one go
                    del self._loaded[side]
                answerer = self._load(health.manifest, side, usable.usable)
                if answerer is not None:
                    self._loaded[side] = answerer
                    return Choice(answerer)

    def for_audience(self, kind: AudienceKind) -> Answerer | None:
        return self.choose(kind).answerer

    def health(self) -> Health:
        """The serving version's health, counting the files llama.cpp refused as broken."""
        return self.registry.health(self._refused)

    def close(self) -> None:
        with self._lock:
            for loaded in self._loaded.values():
                loaded.llm.close()
            self._loaded.clear()
            if self.configured is not None:
                self.configured.llm.close()

    def _load(self, manifest: Manifest, side: ModelSide, path: Path) -> Answerer | None:
        llm = LlamaCppLLM(
            path,
            threads=self.threads,
            context_size=manifest.context_size,
            defaults=GenerationOptions(max_tokens=manifest.max_new_tokens, temperature=0.0),
        )
        try:
            llm.load()
        except LLMUnavailable as exc:
            log.error("%s: %s; %s", manifest.version, exc, PROMOTE_HINT)
            self._refused[path] = "does not load in llama.cpp"
            return None
        return Answerer(
            label=f"{manifest.version}/{side}",
            llm=llm,
            strategy=CoTStrategy(manifest.strategy),
            budget=PromptBudget(
                manifest.context_memories, manifest.context_chars, manifest.context_bio
            ),
            context_size=manifest.context_size,
            max_new_tokens=manifest.max_new_tokens,
            version=manifest.version,
            path=path,
            longest_replies=dict(manifest.longest_replies),
        )
