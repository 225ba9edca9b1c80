"""From drafts to samples: the context serving would retrieve, and the reply in the run's format.

Every request gets its context from the real retriever, through the audience's filter and with
`budget.memories` hits, kept or dropped by serving's own relevance rule and rendered by serving's
own `ContextMemory` builder. When that context misses the memory a draft's answer rests on:

- another memory shown that holds every key fact answers it just as well: the answer stands;
- a memory shown on the question's topic (it shares one of the question's content words) gets
  the supporting memory in place of the last item, always: a "don't know" beside memories
  about the very thing asked would teach the twin to refuse what it could answer;
- otherwise the memory is put in for `SUPPORT_INSERT_RATE` of the samples (the model learns to
  read the answer from its context) and left out of the rest, whose reply then says the twin
  does not know: it must not claim what its prompt does not show.

Serving puts only relevant memories in a prompt, and retrieval (with L1 as an index) nearly
always finds what a question rests on, so the rule above alone leaves almost no "don't know"
to learn from. `UNANSWERABLE_SHARE` of the questions are therefore asked beside what retrieval
found for them minus everything that could answer them (the supporting memories, any memory
that says a key fact, any memory on the question's topic), and the reply says the twin does
not know (not those on L1 facts: serving's L1 index finds what they rest on).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence

from core.clock import SYSTEM_CLOCK, Clock
from memory.models import Memory, OwnerIdentity
from memory.profile.sentences import content_words
from memory.retrieve import Retriever
from memory.store import MemoryStore
from training.synthesize.drafts import Draft
from training.synthesize.passages import normalise
from training.synthesize.samples import Sample
from training.synthesize.templates import is_l1_fact_template
from twin.privacy import Audience
from twin.tasks import (
    ContextMemory,
    CoTStrategy,
    PromptBudget,
    TaskKind,
    TaskRequest,
    nothing_found,
    render_reply,
)

SUPPORT_INSERT_RATE = 0.8
UNANSWERABLE_SHARE = 0.12
NO_SUPPORT_STEPS = ("None of these memories answers the question.",)


class ServingSearch:
    """Retrieval as serving runs it for one audience: the real retriever, built as `Twin`
    builds it (the owner's identity, a clock), through the audience's filter and told who is
    asking, `budget.memories` hits, serving's relevance rule."""

    def __init__(
        self,
        store: MemoryStore,
        audience: Audience,
        budget: PromptBudget,
        *,
        owner: OwnerIdentity | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.retriever = Retriever(store, owner=owner, clock=clock)
        self.filter = audience.memory_filter()
        self.asker = audience.asker
        self.k = budget.memories
        self.shown_chars = budget.chars_per_memory

    def prime(self, queries: Iterable[str]) -> None:
        """Embed all these queries now, in one batch."""
        self.retriever.prime(queries, self.filter, self.asker)

    def memories(self, query: str) -> list[Memory]:
        """The memories serving would put in the prompt for `query`, best first."""
        hits = self.retriever.search(query, k=self.k, flt=self.filter, asker=self.asker)
        return [hit.memory for hit in hits if hit.relevant]


class Assembler:
    """Turns drafts into samples for one audience, as serving would prompt for them."""

    def __init__(
        self,
        store: MemoryStore,
        search: ServingSearch,
        audience: Audience,
        owner: str,
        budget: PromptBudget,
        strategy: CoTStrategy,
        rng: random.Random,
        bio: str = "",
    ) -> None:
        self.store = store
        self.search = search
        self.audience = audience
        self.owner = owner
        self.budget = budget
        self.strategy = strategy
        self.rng = rng
        self.bio = bio if budget.bio else ""

    def assemble(self, drafts: Sequence[Draft]) -> list[Sample]:
        """Samples for `drafts`, in order."""
        queries = [d.query or d.text for d in drafts]
        self.search.prime(queries)
        supports = {
            m.id: m for m in self.store.get_many(sorted({s for d in drafts for s in d.support}))
        }
        return [self._sample(d, q, supports) for d, q in zip(drafts, queries, strict=True)]

    def _sample(self, draft: Draft, query: str, supports: dict[str, Memory]) -> Sample:
        found = tuple(ContextMemory.of(m) for m in self.search.memories(query))
        unanswerable = self._unanswerable(found, draft)
        context = unanswerable or self._with_support(found, draft, supports)
        request = TaskRequest(
            kind=draft.kind,
            owner=self.owner,
            audience=self.audience.kind,
            text=draft.text,
            asker=draft.asker,
            target=draft.target,
            reply=draft.reply,
            context=context,
            bio=self.bio,
            history=draft.history,
        )
        shown = _shown_support(context, draft)
        support = shown or draft.support
        if draft.kind == TaskKind.MEMORY_QA and shown is None:
            # the prompt does not hold the answer: the twin must say it does not know
            answer, steps, key_facts = nothing_found(self.audience.kind), NO_SUPPORT_STEPS, ()
        else:
            answer, steps, key_facts = draft.answer, draft.steps, draft.key_facts
        reply = render_reply(
            draft.kind,
            answer,
            self.strategy,
            steps,
            verdict=draft.verdict,
            listed=draft.listed,
        )
        return Sample(
            id=sample_id(self.audience, draft),
            request=request,
            reply=reply,
            support=support,
            key_facts=key_facts,
            split=draft.split,
            origin=draft.origin,
            template=draft.template,
        )

    def _unanswerable(
        self, context: tuple[ContextMemory, ...], draft: Draft
    ) -> tuple[ContextMemory, ...] | None:
        """For `UNANSWERABLE_SHARE` of the questions that rest on memory, `context` without
        whatever could answer it; None for the rest, or when nothing would be left. Questions
        on L1 facts are always answered: serving's L1 index finds what they rest on."""
        if draft.kind != TaskKind.MEMORY_QA or not draft.support or not draft.key_facts:
            return None
        if is_l1_fact_template(draft.template):
            return None
        if self.rng.random() >= UNANSWERABLE_SHARE:
            return None
        left = tuple(
            c
            for c in context
            if c.id not in draft.support
            and not any(_says(c, (fact,)) for fact in draft.key_facts)
            and not _on_topic((c,), draft.text, self.owner)
        )
        return left or None

    def _with_support(
        self, context: tuple[ContextMemory, ...], draft: Draft, supports: dict[str, Memory]
    ) -> tuple[ContextMemory, ...]:
        if _shown_support(context, draft) is not None:
            return context
        on_topic = _on_topic(context, draft.text, self.owner)
        if not on_topic and self.rng.random() >= SUPPORT_INSERT_RATE:
            return context
        memory = supports.get(draft.support[0])
        if memory is None:
            return context
        room = self.budget.memories
        kept = context[: room - 1] if len(context) >= room else context
        return (*kept, ContextMemory.of(memory))


def _shown_support(context: Sequence[ContextMemory], draft: Draft) -> tuple[str, ...] | None:
    """What the draft's answer rests on, given the prompt: its own supporting memories when
    one is shown; else, when shown memories say every key fact, those too; None when the
    prompt cannot answer. A draft that rests on no memory (an identity question, a decline)
    needs none."""
    shown = {c.id for c in context}
    if not draft.support or shown & set(draft.support):
        return draft.support
    others = tuple(c.id for c in context if draft.key_facts and _says(c, draft.key_facts))
    return (*others, *draft.support) if others else None


def _says(memory: ContextMemory, facts: Sequence[str]) -> bool:
    text = normalise(memory.text)
    return all(normalise(fact) in text for fact in facts)


def _on_topic(context: Sequence[ContextMemory], question: str, owner: str) -> bool:
    """Whether a memory shown shares one of the question's content words (the owner's own
    names aside: nearly every memory is about them)."""
    names = {key for key, _ in content_words(owner)}
    wanted = {key for key, _ in content_words(question)} - names
    return any(wanted & {key for key, _ in content_words(c.text)} for c in context)


def sample_id(audience: Audience, draft: Draft) -> str:
    """A stable id from what the sample says (the same draft always gets the same id)."""
    key = "\0".join(
        (
            str(audience.kind),
            str(draft.kind),
            str(draft.split),
            draft.template,
            draft.text,
            draft.answer,
            draft.reply or "",
            "\0".join(m.content for m in draft.history),
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]
