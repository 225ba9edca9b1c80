"""Hand-made training data for pipeline tests: a few memories with questions about them.

`HandmadeData` stands in for the synthesizer: for an audience it writes one memory-QA sample
per question about each memory that audience may see, the memory in the prompt's context as
retrieval would put it, so a run's datasets are small, known, and obey the same visibility rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from memory.models import SourceRef, Visibility
from memory.store import MemoryStore
from training.pipeline import DataRequest
from training.synthesize.samples import Dataset, PairReason, PreferencePair, Sample, Split
from twin.privacy import AudienceKind
from twin.tasks import ContextMemory, TaskKind, TaskRequest

OWNER_NAME = "Ada Byrne"


@dataclass(frozen=True)
class Fact:
    """A memory and questions it answers; the last question is held out for evaluation."""

    text: str
    visibility: Visibility
    questions: tuple[str, ...]
    answer: str
    key_fact: str


FACTS = (
    Fact(
        "My cat is called Pixel and she sleeps on the piano.",
        Visibility.FRIENDS,
        ("What's my cat called?", "What is the name of my cat?", "My cat's name?"),
        "Your cat is called Pixel.",
        "Pixel",
    ),
    Fact(
        "I play the oboe in the harbour band every Monday.",
        Visibility.FRIENDS,
        ("What instrument do I play?", "Which instrument do I play in the band?", "My instrument?"),
        "You play the oboe.",
        "oboe",
    ),
    Fact(
        "The Zanzibarite vault code is 7781, never tell anyone.",
        Visibility.PRIVATE,
        ("What is the vault code?", "Tell me the vault code.", "Which code opens the vault?"),
        "The Zanzibarite vault code is 7781.",
        "7781",
    ),
)
PRIVATE_WORD = "Zanzibarite"


def add_memories(store: MemoryStore, facts: tuple[Fact, ...] = FACTS) -> None:
    """Store each fact's memory with its visibility."""
    source = SourceRef(key="notes:handmade", kind="notes", name="Hand-made notes")
    for i, fact in enumerate(facts):
        store.add(
            fact.text,
            source=source,
            author=OWNER_NAME,
            visibility=fact.visibility,
            timestamp=datetime(2026, 1, 1 + i, tzinfo=UTC),
        )


@dataclass
class HandmadeData:
    """A `TrainingData` that builds datasets from `FACTS` instead of synthesizing them."""

    facts: tuple[Fact, ...] = FACTS
    # extra copies of each training sample, so a tiny model sees each enough times
    repeats: int = 4
    # a sample citing a private memory slips into the shared data (to test the guard)
    leak: bool = False

    def dataset(self, store: MemoryStore, request: DataRequest) -> Dataset:
        audience = request.side.audience.kind
        visible = request.side.audience.memory_filter()
        samples: list[Sample] = []
        pairs: list[PreferencePair] = []
        for i, fact in enumerate(self.facts):
            (memory,) = store.find_text(fact.text)
            if not store.allowed([memory.id], visible) and not self.leak:
                continue
            context = (ContextMemory(memory.id, "1 January 2026", OWNER_NAME, memory.text),)
            reply = fact.answer if audience == AudienceKind.OWNER else _third_person(fact.answer)
            for j, question in enumerate(fact.questions):
                task = TaskRequest(
                    kind=TaskKind.MEMORY_QA,
                    owner=OWNER_NAME,
                    audience=audience,
                    text=question,
                    context=context,
                )
                held_out = j == len(fact.questions) - 1
                copies = 1 if held_out else self.repeats
                for k in range(copies):
                    samples.append(
                        Sample(
                            id=f"{audience}-{i}-{j}-{k}",
                            request=task,
                            reply=reply,
                            support=(memory.id,),
                            key_facts=(fact.key_fact,),
                            split=Split.TEST if held_out else Split.TRAIN,
                        )
                    )
                if j == 0 or held_out:
                    pairs.append(
                        PreferencePair(
                            id=f"{audience}-{i}-{j}-perturbed",
                            request=task,
                            chosen=reply,
                            rejected=reply.replace(fact.key_fact, "something else"),
                            reason=PairReason.PERTURBED,
                            split=Split.TEST if held_out else Split.TRAIN,
                        )
                    )
        return Dataset(samples=samples, pairs=pairs)


def _third_person(reply: str) -> str:
    return reply.replace("Your", "Ada's").replace("You play", "Ada plays")
