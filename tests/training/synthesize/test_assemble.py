"""When a sample's reply may say "I don't know": only when its prompt cannot answer."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace

from memory.models import Memory
from memory.store import MemoryStore
from tests.training.synthesize.conftest import OWNER
from training.synthesize.assemble import Assembler
from training.synthesize.drafts import Draft
from twin.privacy import Audience
from twin.tasks import CoTStrategy, PromptBudget, TaskKind, nothing_found, split_reasoning

BUDGET = PromptBudget(memories=3, chars_per_memory=300, bio=False)


class ShownMemories:
    """Retrieval that shows fixed memories, to put each case in front of the assembler."""

    def __init__(self, memories: list[Memory]) -> None:
        self.shown = memories

    def prime(self, queries: Iterable[str]) -> None:
        """Nothing to embed ahead."""

    def memories(self, query: str) -> list[Memory]:
        return list(self.shown)


def by_text(store: MemoryStore, words: str) -> Memory:
    return next(m for m in store.iter_memories() if words in m.text)


def assemble(store: MemoryStore, shown: list[Memory], draft: Draft, seed: int = 0) -> str:
    assembler = Assembler(
        store,
        ShownMemories(shown),  # type: ignore[arg-type]
        Audience.owner(),
        OWNER,
        BUDGET,
        CoTStrategy.STRONG,
        random.Random(seed),
    )
    (sample,) = assembler.assemble([draft])
    return split_reasoning(sample.reply)[1]


def soup_question(store: MemoryStore) -> Draft:
    food = by_text(store, "mushroom soup")
    return Draft(
        kind=TaskKind.MEMORY_QA,
        text="What is my favourite dish?",
        answer="Mushroom soup with rye bread.",
        support=(food.id,),
        key_facts=("mushroom soup",),
    )


def test_a_prompt_on_the_question_s_topic_always_gets_the_answer(
    small_store: MemoryStore,
) -> None:
    # the food note is not shown, but the lab note shares "work" with the question: the food
    # note is put in every time, never a "don't know" beside a memory on the topic asked
    draft = soup_question(small_store)
    lab = by_text(small_store, "Bergen Marine Station")
    on_topic = replace(draft, text="What do I say about rye bread and my work?")
    for seed in range(20):
        assert assemble(small_store, [lab], on_topic, seed) == on_topic.answer


def test_off_topic_prompts_say_they_do_not_know_in_some_samples(small_store: MemoryStore) -> None:
    draft = soup_question(small_store)
    lab = by_text(small_store, "Bergen Marine Station")
    answers = {assemble(small_store, [lab], draft, seed) for seed in range(40)}
    assert answers == {draft.answer, nothing_found(Audience.owner().kind)}


def test_another_memory_that_says_the_fact_answers_it(small_store: MemoryStore) -> None:
    draft = soup_question(small_store)
    food = by_text(small_store, "mushroom soup")
    lab = by_text(small_store, "Bergen Marine Station")
    elsewhere = replace(draft, support=(lab.id,))
    for seed in range(10):
        assert assemble(small_store, [food], elsewhere, seed) == draft.answer


def test_a_draft_resting_on_no_memory_is_answered_as_drafted(small_store: MemoryStore) -> None:
    identity = Draft(kind=TaskKind.MEMORY_QA, text="Who are you?", answer="I'm Nora's twin.")
    assert assemble(small_store, [], identity) == identity.answer
