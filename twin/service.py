"""The Twin: memory QA, context enhance and context critic, for any audience.

Each task is the same four steps: retrieve what the asker may see from L0 (and the bio their
audience may see from L1), render the task in the trained format (`twin.tasks`), let the model
for that audience answer, and for third parties pass the reply through the output guard. Every
face of the product (CLI, MCP server, bots) calls these methods; none of them builds prompts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from core.clock import SYSTEM_CLOCK, Clock
from memory.models import Kind, Memory, SourceRef, Visibility
from memory.profile import Profile
from memory.retrieve import Retriever, SearchHit
from memory.store import MemoryStore
from twin.config import Settings
from twin.llm import LLM, ChatMessage, GenerationOptions, LlamaCppLLM, LLMError, build_llm
from twin.privacy import Audience, AudienceKind, OutputGuard
from twin.registry import Manifest, ModelRegistry
from twin.tasks import (
    ContextMemory,
    CoTStrategy,
    PromptBudget,
    TaskKind,
    TaskRequest,
    Verdict,
    is_identity_question,
    is_question,
    parse_reply,
    render_messages,
)

log = logging.getLogger(__name__)

# Below this cosine similarity, and with no word in common, a memory is not about the question.
RELEVANCE_FLOOR = 0.3

NOTHING_FOUND = {
    AudienceKind.OWNER: "I don't have anything on that in your memory.",
    AudienceKind.FRIEND: "I don't know — that's not something I have in memory.",
    AudienceKind.PUBLIC: "I don't know — that's not something I have in memory.",
}
WITHHELD = "That's not something I can share."


class BioSource(Protocol):
    """Where the bio an audience may see comes from (L1)."""

    def bio_text(self, audience: Audience) -> str: ...


class ProfileBios:
    """The bio each audience may see, from the L1 profile in the store: the global bio in the
    third person, built only from what that audience may see ("" before the first build)."""

    def __init__(self, store: MemoryStore, owner: str | None = None) -> None:
        self.profile = Profile(store, owner)

    def bio_text(self, audience: Audience) -> str:
        return self.profile.for_audience(audience.visibilities).bio("global", "third")


@dataclass(frozen=True)
class Evidence:
    """A memory a reply relied on, as shown to whoever asked."""

    memory_id: str
    source: str
    when: datetime | None
    who: str
    snippet: str

    @classmethod
    def of(cls, memory: Memory) -> Evidence:
        return cls(
            memory_id=memory.id,
            source=memory.source_name,
            when=memory.timestamp,
            who=memory.author or "note",
            snippet=memory.snippet(240),
        )


@dataclass(frozen=True)
class TwinReply:
    """What the twin says, with what it relied on and how sure it is."""

    kind: TaskKind
    text: str
    evidence: tuple[Evidence, ...] = ()
    confidence: float = 0.0
    found: bool = True
    withheld: bool = False
    model: str = ""
    reasoning: str | None = None
    verdict: Verdict | None = None
    added: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()


@dataclass
class _Loaded:
    # which model answers, for replies and logs ("v0003/shared"); `version` is the registry's
    label: str
    llm: LLM
    strategy: CoTStrategy
    budget: PromptBudget
    context_size: int
    max_new_tokens: int
    version: str = ""


@dataclass
class TwinModels:
    """The models that answer, per audience.

    A `twin` LLM in the config (e.g. an OpenAI-compatible server) answers everyone: it was not
    trained on memory, so its weights hold nothing private. Otherwise the registry's current
    version answers: the owner's model for the owner, the shared model for everyone else. The
    registry is checked on every call, so a newly promoted version is picked up without a
    restart.
    """

    settings: Settings
    registry: ModelRegistry
    _loaded: dict[AudienceKind, _Loaded] = field(default_factory=dict)
    _configured: LLM | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_audience(self, kind: AudienceKind) -> _Loaded | None:
        role = self.settings.llm.twin
        if role.configured:
            if self._configured is None:
                self._configured = build_llm(role)
            return _Loaded(
                role.model or role.path,
                self._configured,
                CoTStrategy.WEAK,
                PromptBudget(8, 400),
                role.context_size,
                role.max_tokens,
            )
        audience = AudienceKind.OWNER if kind == AudienceKind.OWNER else AudienceKind.FRIEND
        manifest = self.registry.current()
        if manifest is None:
            return None
        with self._lock:
            loaded = self._loaded.get(audience)
            if loaded is None or loaded.version != manifest.version:
                # a new version was promoted: let the old model go, load the new one
                if loaded is not None and isinstance(loaded.llm, LlamaCppLLM):
                    loaded.llm.close()
                loaded = self._load(manifest, audience)
                self._loaded[audience] = loaded
            return loaded

    def _load(self, manifest: Manifest, audience: AudienceKind) -> _Loaded:
        path = self.registry.gguf_path(manifest, audience)
        llm = LlamaCppLLM(
            path,
            threads=self.settings.llm.twin.threads,
            context_size=manifest.context_size,
            defaults=GenerationOptions(max_tokens=manifest.max_new_tokens, temperature=0.0),
        )
        side = "owner" if audience == AudienceKind.OWNER else "shared"
        budget = PromptBudget(
            manifest.context_memories, manifest.context_chars, manifest.context_bio
        )
        return _Loaded(
            f"{manifest.version}/{side}",
            llm,
            CoTStrategy(manifest.strategy),
            budget,
            manifest.context_size,
            manifest.max_new_tokens,
            manifest.version,
        )

    def close(self) -> None:
        with self._lock:
            for loaded in self._loaded.values():
                if isinstance(loaded.llm, LlamaCppLLM):
                    loaded.llm.close()
            self._loaded.clear()


class Twin:
    """One person's twin: their memory, their profile, their models, their privacy rules."""

    def __init__(
        self,
        settings: Settings,
        store: MemoryStore,
        models: TwinModels,
        bios: BioSource | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.models = models
        self.bios = bios
        self.retriever = Retriever(store)
        self.guard = OutputGuard(store)

    @property
    def owner(self) -> str:
        return self.settings.owner.name

    # -- the three tasks -----------------------------------------------------------------------

    def answer(
        self,
        question: str,
        audience: Audience | None = None,
        *,
        asker: str | None = None,
        history: Sequence[ChatMessage] = (),
    ) -> TwinReply:
        """Memory QA: answer `question` from what `audience` may see.

        "Who are you?" is answered as an introduction, and a message that asks nothing and
        finds nothing in memory as conversation, in the owner's voice.
        """
        kind = TaskKind.IDENTITY if is_identity_question(question) else TaskKind.MEMORY_QA
        return self._run(kind, question, audience or Audience.owner(), asker=asker, history=history)

    def enhance(self, request: str, target: str | None = None) -> TwinReply:
        """Context enhance: `request` rewritten with the owner's context another agent needs."""
        return self._run(TaskKind.CONTEXT_ENHANCE, request, Audience.owner(), target=target)

    def critique(self, request: str, reply: str) -> TwinReply:
        """Context critic: judge another agent's `reply` to `request` from the owner's view."""
        return self._run(
            TaskKind.CONTEXT_CRITIC,
            request,
            Audience.owner(),
            reply=reply,
            query=f"{request}\n{reply}",
        )

    async def aanswer(self, question: str, audience: Audience | None = None, **kwargs) -> TwinReply:
        return await asyncio.to_thread(self.answer, question, audience, **kwargs)

    async def aenhance(self, request: str, target: str | None = None) -> TwinReply:
        return await asyncio.to_thread(self.enhance, request, target)

    async def acritique(self, request: str, reply: str) -> TwinReply:
        return await asyncio.to_thread(self.critique, request, reply)

    # -- memory ------------------------------------------------------------------------------

    def search(
        self, query: str, audience: Audience | None = None, k: int = 10, **narrowing
    ) -> list[SearchHit]:
        """Retrieval only: the memories `audience` may see that best match `query`."""
        flt = (audience or Audience.owner()).memory_filter(**narrowing)
        return self.retriever.search(query, k=k, flt=flt)

    def remember(
        self, text: str, visibility: Visibility = Visibility.PRIVATE, *, source: str = "remembered"
    ) -> Memory | None:
        """Add a memory the owner states directly (it joins the next L1 build and training)."""
        ref = SourceRef(key=f"manual:{source}", kind="manual", name=f"Remembered ({source})")
        return self.store.add(
            text,
            source=ref,
            kind=Kind.NOTE,
            author=self.owner,
            visibility=visibility,
            timestamp=self.clock.now(),
        )

    def forget(self, memory_id: str) -> bool:
        """Forget one memory everywhere; True if it existed."""
        return bool(self.store.forget([memory_id], reason="forgotten through the twin"))

    # -- internals ---------------------------------------------------------------------------

    def _run(
        self,
        kind: TaskKind,
        text: str,
        audience: Audience,
        *,
        asker: str | None = None,
        target: str | None = None,
        reply: str | None = None,
        history: Sequence[ChatMessage] = (),
        query: str | None = None,
    ) -> TwinReply:
        if not text.strip():
            raise ValueError("the twin needs a question or request to work on")
        loaded = self.models.for_audience(audience.kind)
        budget = loaded.budget if loaded else PromptBudget()
        hits = self.retriever.search(query or text, k=budget.memories, flt=audience.memory_filter())
        relevant = [h for h in hits if is_relevant(h)]
        evidence = tuple(Evidence.of(h.memory) for h in relevant)
        confidence = max((h.similarity or 0.0 for h in relevant), default=0.0)
        if kind == TaskKind.MEMORY_QA and not relevant:
            if is_question(text):
                return TwinReply(kind, NOTHING_FOUND[audience.kind], found=False, model="retrieval")
            kind = TaskKind.CHAT
        if loaded is None:
            return self._without_model(kind, relevant, evidence, confidence)

        request = TaskRequest(
            kind=kind,
            owner=self.owner,
            audience=audience.kind,
            text=text,
            asker=asker,
            target=target,
            reply=reply,
            context=tuple(ContextMemory.of(h.memory) for h in relevant),
            bio=self.bios.bio_text(audience) if self.bios and budget.bio else "",
            history=tuple(history),
        )
        try:
            raw = loaded.llm.complete(self._fit(request, budget, loaded))
        except LLMError:
            log.exception("the %s model failed; answering from retrieval", loaded.label)
            return self._without_model(kind, relevant, evidence, confidence)
        parsed = parse_reply(kind, raw)
        result = TwinReply(
            kind=kind,
            text=parsed.answer or NOTHING_FOUND[audience.kind],
            evidence=evidence,
            confidence=round(confidence, 3),
            found=bool(relevant),
            model=loaded.label,
            reasoning=parsed.reasoning,
            verdict=parsed.verdict,
            added=parsed.added,
            checked=parsed.checked,
        )
        verdict = self.guard.check(f"{result.text}\n{' '.join(result.added)}", audience)
        if not verdict.allowed:
            log.warning(
                "withheld a reply to %s: %s (%s)", audience.kind, verdict.reason, verdict.memory_id
            )
            return replace(
                result,
                text=WITHHELD,
                withheld=True,
                reasoning=None,
                added=(),
                checked=(),
                evidence=(),
            )
        return result

    @staticmethod
    def _fit(request: TaskRequest, budget: PromptBudget, loaded: _Loaded) -> list[ChatMessage]:
        """The prompt, with the least relevant memories dropped until it fits the model's
        context next to the reply. A request too long even alone is refused, not cut."""
        # Counting the contents misses a little of what the chat template adds (and llama.cpp
        # needs a few cells of slack), so keep a margin rather than fill the context exactly.
        room = loaded.context_size - loaded.max_new_tokens - max(16, loaded.context_size // 16)
        while True:
            messages = render_messages(request, budget)
            if loaded.llm.count_tokens(messages) <= room:
                return messages
            if request.bio and budget.bio:
                budget = replace(budget, bio=False)
            elif request.context:
                request = replace(request, context=request.context[:-1])
            elif request.history:
                request = replace(request, history=request.history[1:])
            else:
                raise ValueError(
                    f"the request is too long for the model ({loaded.context_size} tokens of "
                    "context); shorten it"
                )

    def _without_model(
        self,
        kind: TaskKind,
        hits: list[SearchHit],
        evidence: tuple[Evidence, ...],
        confidence: float,
    ) -> TwinReply:
        """No trained model yet (or it failed): say so, and show what memory holds."""
        if not hits:
            return TwinReply(
                kind,
                "No model is trained yet, and memory holds nothing on this.",
                found=False,
                model="retrieval",
            )
        top = hits[0].memory
        text = f"(No trained model yet; the closest memory:) {top.snippet(300)}"
        return TwinReply(
            kind, text, evidence=evidence, confidence=round(confidence, 3), model="retrieval"
        )


def is_relevant(hit: SearchHit) -> bool:
    """Whether a retrieved memory is about the query at all (shares a word with it, or is
    close in meaning): the rule for what goes into a prompt, in serving and in training."""
    return hit.lexical_rank is not None or (hit.similarity or 0.0) >= RELEVANCE_FLOOR


def open_twin(
    settings: Settings, store: MemoryStore | None = None, bios: BioSource | None = None
) -> Twin:
    """The twin configured by `settings`, with its store (opened if not given) and models."""
    from twin.ingest import open_store

    store = store or open_store(settings)
    registry = ModelRegistry(Path(settings.paths.models_dir))
    bios = bios or ProfileBios(store, settings.owner.name)
    return Twin(settings, store, TwinModels(settings, registry), bios)
