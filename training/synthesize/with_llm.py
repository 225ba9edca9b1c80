"""The LLM synthesizer: a configured `synthesizer` model writes the drafts from memories.

Memories the audience may see go to the model in small batches; it answers with a
`SynthesisBatch` (structured output: bounded strings and lists) of question–answer pairs with the
ids of the memories that support them, and, for the owner, enhance and critic examples. Support
ids that are not in the batch are dropped, and an item left with none is dropped too. An answer
is put in the audience's voice (to the owner "you"; to others the owner by name, then pronoun)
in case the model wrote the owner's "I"; an answer that loses a key fact that way is dropped.
What remains becomes drafts like the offline synthesizer's, and goes through the same assembly
and filters. A model whose answers leave nothing usable at all is an error, not an empty share
of the data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from core.calendar import spoken_date
from lm.base import LLM, ChatMessage, LLMUnavailable, StructuredOutputError
from memory.models import Memory
from training.synthesize.drafts import Draft
from training.synthesize.material import Material
from training.synthesize.samples import Split
from twin.privacy import AudienceKind
from twin.tasks import TaskKind, Verdict

BATCH_MEMORIES = 8
MEMORY_CHARS = 600

Short = Annotated[str, Field(min_length=1, max_length=160)]
FactText = Annotated[str, Field(min_length=1, max_length=80)]
MemoryId = Annotated[str, Field(min_length=1, max_length=64)]


class QAItem(BaseModel):
    question: str = Field(min_length=3, max_length=200)
    rephrased: str = Field(default="", max_length=200, description="the question in other words")
    answer: str = Field(min_length=1, max_length=400)
    key_facts: list[FactText] = Field(min_length=1, max_length=3)
    support: list[MemoryId] = Field(min_length=1, max_length=4)


class EnhanceItem(BaseModel):
    request: str = Field(min_length=3, max_length=200)
    target: str = Field(default="", max_length=60)
    enhanced: str = Field(min_length=3, max_length=500)
    added: list[Short] = Field(min_length=1, max_length=4)
    support: list[MemoryId] = Field(min_length=1, max_length=4)


class CriticItem(BaseModel):
    request: str = Field(min_length=3, max_length=200)
    agent_reply: str = Field(min_length=3, max_length=500)
    verdict: Literal["fits", "partly", "does not fit"]
    feedback: str = Field(min_length=3, max_length=400)
    checked: list[Short] = Field(min_length=1, max_length=4)
    key_facts: list[FactText] = Field(default_factory=list, max_length=3)
    support: list[MemoryId] = Field(min_length=1, max_length=4)


class SynthesisBatch(BaseModel):
    qa: list[QAItem] = Field(default_factory=list, max_length=12)
    enhance: list[EnhanceItem] = Field(default_factory=list, max_length=3)
    critic: list[CriticItem] = Field(default_factory=list, max_length=3)


class SynthesisError(RuntimeError):
    """Synthesis cannot go on: the synthesizer model gave no usable answer for a batch of
    memories, or the synthesizer or judge model cannot be reached."""


class LLMSynthesizer:
    """Drafts written by an LLM from the memories in a `Material`."""

    def __init__(
        self,
        material: Material,
        llm: LLM,
        rng: random.Random,
        *,
        batch_memories: int = BATCH_MEMORIES,
        test_share: float = 0.12,
    ) -> None:
        self.m = material
        self.llm = llm
        self.rng = rng
        self.batch_memories = batch_memories
        self.test_share = test_share
        self.kind = material.audience.kind
        self.voice = material.voice

    def drafts(self) -> list[Draft]:
        """Drafts from every batch of memories.

        Raises SynthesisError when the model gives no valid batch for some memories (after
        the structured-output retries), cannot be reached (at the first batch it fails: a
        dead server is not asked again), or gives valid batches of which no item is usable:
        a run configured with a synthesizer must not quietly train on none of its data.
        """
        out: list[Draft] = []
        items = 0
        memories = self.m.memories
        for start in range(0, len(memories), self.batch_memories):
            batch = memories[start : start + self.batch_memories]
            answer = self.answer(batch)
            items += len(answer.qa)
            if self.kind == AudienceKind.OWNER:  # the others' examples are not asked for
                items += len(answer.enhance) + len(answer.critic)
            out.extend(self.from_answer(answer, batch))
        if memories and not out:
            wrote = (
                f"none of the {items} item(s) it wrote cited a memory it was shown (by its id) "
                "with the key facts in its answer"
                if items
                else "it wrote no items"
            )
            raise SynthesisError(
                f"the synthesizer's answers for {len(memories)} memories gave no usable "
                f"training data: {wrote}"
            )
        return out

    def answer(self, batch: Sequence[Memory]) -> SynthesisBatch:
        """The model's answer for one batch of memories (raises SynthesisError)."""
        try:
            return self.llm.structured(self.messages(batch), SynthesisBatch)
        except StructuredOutputError as exc:
            ids = ", ".join(m.id for m in batch)
            raise SynthesisError(
                f"the synthesizer gave no valid training data for memories {ids}: {exc}"
            ) from exc
        except LLMUnavailable as exc:
            raise SynthesisError(f"the synthesizer model is unavailable: {exc}") from exc

    def from_answer(self, answer: SynthesisBatch, batch: Sequence[Memory]) -> list[Draft]:
        """The usable items of an answer, as drafts (the rest is dropped, see the module)."""
        known = {m.id: m for m in batch}
        drafts: list[Draft] = []
        for qa in answer.qa:
            drafts.extend(self._qa(qa, known))
        if self.kind == AudienceKind.OWNER:
            drafts.extend(d for e in answer.enhance if (d := self._enhance(e, known)))
            drafts.extend(d for c in answer.critic if (d := self._critic(c, known)))
        return drafts

    def messages(self, batch: Sequence[Memory]) -> list[ChatMessage]:
        owner = self.m.owner
        first = self.m.first_name
        lines = []
        for memory in batch:
            when = spoken_date(memory.timestamp) if memory.timestamp else "undated"
            who = memory.author or "note"
            text = " ".join(memory.text.split())[:MEMORY_CHARS]
            lines.append(f"[{memory.id}] {when} {who}: {text}")
        if self.kind == AudienceKind.OWNER:
            voice = (
                f"Questions are asked by {owner} about their own life ('When did I…?'); answers "
                f"speak to {owner} ('You…')."
            )
            extra = (
                f" Also write up to 2 context-enhance examples (a request {owner} might send "
                "another assistant, rewritten with the personal context from these memories it "
                "needs, and the added lines copied word for word from the memories) and up to 2 "
                f"context-critic examples (a request, an assistant's reply, and {owner}'s verdict "
                "on it — fits, partly or does not fit — with concrete feedback and the memory "
                "lines checked, copied word for word)."
            )
        else:
            pronoun = self.voice.pronouns.value
            voice = (
                f"Questions are asked by a friend about {owner}, some to them ('When did you…?'),"
                f" some about them ('When did {first}…?', 'When did {pronoun}…?'); answers "
                f"speak about {first} in the third person ('{first} …', then '{pronoun}')."
            )
            extra = " Leave enhance and critic empty."
        instructions = (
            f"Write up to 8 question-answer pairs about {owner} that these memories answer. "
            f"{voice} Each answer is one or two short sentences that lead with the answer and "
            "contain its key facts word for word as the memories give them; write dates as "
            "people do (15 March 2026); give the ids of the memories that support it, and the "
            "question once more in other words." + extra
        )
        return [
            ChatMessage("system", f"You write training data for the personal AI twin of {owner}."),
            ChatMessage("user", "Memories:\n" + "\n".join(lines) + "\n\n" + instructions),
        ]

    # -- items ---------------------------------------------------------------------------------

    def _memory_step(self, memory: Memory) -> str:
        """The memory an item rests on, as a step names it: "Iris's note of 16 March 2026 is
        about this."."""
        source = self.voice.source(memory)
        return f"{source[:1].upper()}{source[1:]} is about this."

    def _qa(self, item: QAItem, known: dict[str, Memory]) -> list[Draft]:
        support = _known(item.support, known)
        answer = self.voice.say(item.answer.strip())
        if not support or not all(fact in answer for fact in item.key_facts):
            return []
        steps = (self._memory_step(known[support[0]]), f"It gives the answer: {item.key_facts[0]}.")
        base = Draft(
            kind=TaskKind.MEMORY_QA,
            text=item.question.strip(),
            answer=answer,
            support=support,
            key_facts=tuple(item.key_facts),
            steps=steps,
            template="llm",
            origin="llm",
            fact=f"llm:{support[0]}:{item.key_facts[0]}",
        )
        drafts = [base]
        rephrased = item.rephrased.strip()
        if rephrased and rephrased != base.text and self.rng.random() < self.test_share:
            drafts.append(replace(base, text=rephrased, template="llm.rephrased", split=Split.TEST))
        return drafts

    def _enhance(self, item: EnhanceItem, known: dict[str, Memory]) -> Draft | None:
        support = _known(item.support, known)
        if not support:
            return None
        held_out = self.rng.random() < self.test_share
        added = tuple(a.strip() for a in item.added)
        return Draft(
            kind=TaskKind.CONTEXT_ENHANCE,
            text=item.request.strip(),
            answer=item.enhanced.strip(),
            support=support,
            key_facts=added,
            steps=(self._memory_step(known[support[0]]), "Add what the agent needs to know."),
            template="llm.held-out" if held_out else "llm",
            split=Split.TEST if held_out else Split.TRAIN,
            origin="llm",
            target=item.target.strip() or None,
            listed=added,
            fact=f"llm-enhance:{support[0]}",
        )

    def _critic(self, item: CriticItem, known: dict[str, Memory]) -> Draft | None:
        support = _known(item.support, known)
        if not support:
            return None
        held_out = self.rng.random() < self.test_share
        verdict = Verdict(item.verdict)
        return Draft(
            kind=TaskKind.CONTEXT_CRITIC,
            text=item.request.strip(),
            answer=item.feedback.strip(),
            support=support,
            key_facts=tuple(item.key_facts),
            steps=(self._memory_step(known[support[0]]), f"The verdict: {verdict}."),
            template="llm.held-out" if held_out else "llm",
            split=Split.TEST if held_out else Split.TRAIN,
            origin="llm",
            reply=item.agent_reply.strip(),
            verdict=verdict,
            listed=tuple(c.strip() for c in item.checked),
            query=f"{item.request}\n{item.agent_reply}",
            fact=f"llm-critic:{support[0]}",
        )


def _known(ids: Sequence[str], known: dict[str, Memory]) -> tuple[str, ...]:
    """The ids that name memories of the batch (an invented or foreign id is dropped)."""
    return tuple(dict.fromkeys(i.strip() for i in ids if i.strip() in known))
