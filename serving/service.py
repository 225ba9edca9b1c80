"""The Twin: memory QA, context enhance and context critic, for any audience.

Each task is the same four steps: retrieve what the asker may see from L0 (and the bio their
audience may see from L1), render the task in the trained format (`twin.tasks`), let the model
for that audience answer, and for third parties pass the reply through the output guard. Every
face of the product (CLI, MCP server, bots) calls these methods; none of them builds prompts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from core.clock import SYSTEM_CLOCK, Clock
from lm import ChatMessage, GenerationOptions, LLMError
from memory.models import Kind, Memory, SourceRef, Visibility
from memory.profile import Profile
from memory.retrieve import Retriever, SearchHit
from memory.store import MemoryStore
from serving.answerers import Answerer, TwinModels
from serving.grounding import echoes, gives_what_is_asked, grounding
from twin.config import Settings
from twin.llm_factory import build_llm
from twin.privacy import Audience, AudienceKind, OutputGuard
from twin.registry import ModelRegistry
from twin.tasks import (
    WITHHELD,
    ContextMemory,
    CoTStrategy,
    PromptBudget,
    TaskKind,
    TaskRequest,
    Verdict,
    excerpt,
    is_identity_question,
    is_question,
    nothing_found,
    parse_reply,
    render_messages,
    system_prompt,
)

log = logging.getLogger(__name__)

# How much of the closest memory is shown when no model answer is.
FALLBACK_CHARS = 300


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
    search_similarity: float = 0.0
    found: bool = True
    withheld: bool = False
    model: str = ""
    reasoning: str | None = None
    verdict: Verdict | None = None
    added: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    # why no trained model answered (no model yet, a damaged one, a failed call): "" if one did
    model_problem: str = ""


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
        self.retriever = Retriever(store, owner=settings.owner.identity(), clock=clock)
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
        audience = audience or Audience.owner()
        flt = audience.memory_filter(**narrowing)
        return self.retriever.search(query, k=k, flt=flt, asker=audience.asker)

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
        choice = self.models.choose(audience.kind)
        loaded = choice.answerer
        budget = loaded.budget if loaded else PromptBudget()
        focus = query or text
        hits = self.retriever.search(
            focus,
            k=budget.memories,
            flt=audience.memory_filter(),
            asker=audience.asker,
        )
        relevant = [h for h in hits if h.relevant]
        evidence = tuple(Evidence.of(h.memory) for h in relevant)
        search_similarity = _best_similarity(relevant)
        if kind == TaskKind.MEMORY_QA and not relevant:
            if is_question(text):
                return TwinReply(
                    kind,
                    nothing_found(audience.kind),
                    found=False,
                    model="retrieval",
                    model_problem=choice.problem,
                )
            kind = TaskKind.CHAT
        if loaded is None:
            return self._without_model(kind, relevant, focus, audience, choice.problem)

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
            raw = loaded.llm.complete(
                self._fit(request, budget, loaded),
                GenerationOptions(max_tokens=loaded.reply_cap(kind)),
            )
        except LLMError as exc:
            log.error("the %s model failed (%s); answering from retrieval", loaded.label, exc)
            problem = f"the {loaded.label} model failed: {exc}"
            return self._without_model(kind, relevant, focus, audience, problem)
        parsed = parse_reply(kind, raw)
        if not parsed.answer.strip() and relevant:
            # Reasoning and no answer (cut off, or a model repeating its think tag): saying
            # "memory holds nothing" beside relevant memories would be false; show them instead.
            log.warning("the %s model gave no answer; answering from retrieval", loaded.label)
            problem = f"the {loaded.label} model gave no answer (only reasoning)"
            return self._without_model(kind, relevant, focus, audience, problem)
        checked = self.settings.answers.grounded_only
        if checked and kind != TaskKind.IDENTITY and echoes(parsed.answer, system_prompt(request)):
            log.info("the %s model recited its instructions; showing memory", loaded.label)
            return self._without_model(kind, relevant, focus, audience, "")
        if (
            checked
            and kind == TaskKind.MEMORY_QA
            and not self._grounded(parsed.answer, request, audience)
        ):
            log.info("the %s model's answer is not grounded; showing memory", loaded.label)
            return self._without_model(kind, relevant, focus, audience, "")
        result = TwinReply(
            kind=kind,
            text=parsed.answer or nothing_found(audience.kind),
            evidence=evidence,
            search_similarity=round(search_similarity, 3),
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

    def _grounded(self, answer: str, request: TaskRequest, audience: Audience) -> bool:
        """Whether a memory answer is of the kind asked for and says something the memories it
        was shown support (see `serving.grounding`); "memory holds nothing" is an answer too."""
        if not answer.strip() or answer == nothing_found(audience.kind):
            return True
        if not gives_what_is_asked(answer, request.text, self.clock.now()):
            log.info("the answer does not give the kind of thing the question asks for")
            return False
        names = [self.owner, *self.settings.owner.aliases, request.asker or ""]
        sources = [f"{c.when} {c.who} {c.text}" for c in request.context]
        check = grounding(answer, request.text, sources, names)
        if check.unsupported:
            log.info("the answer says %s, which its memories do not", ", ".join(check.unsupported))
        elif not check.added:
            log.info("the answer adds nothing from memory to the question")
        return check.holds

    @staticmethod
    def _fit(request: TaskRequest, budget: PromptBudget, loaded: Answerer) -> list[ChatMessage]:
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
        focus: str,
        audience: Audience,
        problem: str,
    ) -> TwinReply:
        """No model can answer (none trained, a damaged one, a failed call, an answer memory
        does not hold): show the part of the closest memory about `focus`, and say why in
        `model_problem` for the faces to report."""
        if not hits:
            return TwinReply(
                kind,
                "I can't answer that right now, and memory holds nothing on it.",
                found=False,
                model="retrieval",
                model_problem=problem,
            )
        return TwinReply(
            kind,
            cite(hits[0].memory, focus, audience.kind, self.owner),
            evidence=tuple(Evidence.of(h.memory) for h in hits),
            search_similarity=round(_best_similarity(hits), 3),
            model="retrieval",
            model_problem=problem,
        )


def cite(memory: Memory, focus: str, audience: AudienceKind, owner: str) -> str:
    """The part of `memory` about `focus`, quoted as a person cites what they remember: to the
    owner "Your note of 3 September 2026 says: “…”" or "You wrote on …", to anyone else
    "Iris's note of … says" or "Tomás Ferreira wrote on …"."""
    when = ContextMemory.of(memory).when
    to_owner = audience == AudienceKind.OWNER
    first_name = owner.split()[0] if owner.split() else ""
    if memory.kind == Kind.CHAT:
        writer = memory.author or "Someone"
        if memory.is_owner:
            writer = "You" if to_owner else first_name or "The owner"
        lead = f"{writer} wrote on {when}" if when else f"{writer} wrote"
    else:
        whose = "Your" if to_owner else f"{first_name}'s" if first_name else "The owner's"
        lead = f"{whose} {memory.kind.value}" + (f" of {when}" if when else "") + " says"
    # markdown emphasis reads as stray asterisks in a chat reply
    quote = excerpt(memory.text, focus, FALLBACK_CHARS).replace("**", "")
    return f"{lead}: “{quote}”"


def _best_similarity(hits: Sequence[SearchHit]) -> float:
    """How close in meaning the best of the memories found is to the query."""
    return max((h.similarity or 0.0 for h in hits), default=0.0)


def open_twin(
    settings: Settings, store: MemoryStore | None = None, bios: BioSource | None = None
) -> Twin:
    """The twin configured by `settings`, with its store (opened if not given) and models."""
    from twin.ingest import open_store

    store = store or open_store(settings)
    role = settings.llm.twin
    configured = None
    if role.configured:
        configured = Answerer(
            label=role.model or role.path,
            llm=build_llm(role),
            strategy=CoTStrategy.WEAK,
            budget=PromptBudget(8, 400),
            context_size=role.context_size,
            max_new_tokens=role.max_tokens,
        )
    models = TwinModels(
        ModelRegistry(settings.paths.models_dir), configured=configured, threads=role.threads
    )
    bios = bios or ProfileBios(store, settings.owner.name)
    return Twin(settings, store, models, bios)
