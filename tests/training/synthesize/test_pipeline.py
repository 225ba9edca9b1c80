"""`synthesize` on a small hand-made store: seeds, CoT strategies, audiences."""

from __future__ import annotations

import pytest

from memory.store import MemoryStore
from tests.training.synthesize.conftest import OWNER, SECRET
from training.synthesize import Dataset, SynthesisLimits, synthesize
from training.synthesize.samples import Split
from twin.privacy import Audience
from twin.tasks import STRONG_MAX_STEPS, CoTStrategy, PromptBudget, TaskKind, parse_reply

BUDGET = PromptBudget(memories=3, chars_per_memory=160, bio=False)


def build(store: MemoryStore, *, audience: Audience, strategy: CoTStrategy, seed: int) -> Dataset:
    return synthesize(
        store,
        audience=audience,
        owner=OWNER,
        strategy=strategy,
        budget=BUDGET,
        seed=seed,
        limits=SynthesisLimits(requests_per_template=2),
    )


@pytest.fixture(scope="module")
def by_strategy(small_store: MemoryStore) -> dict[CoTStrategy, Dataset]:
    return {
        s: build(small_store, audience=Audience.owner(), strategy=s, seed=3) for s in CoTStrategy
    }


def test_the_same_seed_gives_the_same_data(
    small_store: MemoryStore, by_strategy: dict[CoTStrategy, Dataset]
) -> None:
    again = build(small_store, audience=Audience.owner(), strategy=CoTStrategy.STRONG, seed=3)
    first = by_strategy[CoTStrategy.STRONG]
    assert [s.id for s in again.samples] == [s.id for s in first.samples]
    assert again.samples == first.samples and again.pairs == first.pairs
    assert again.content_hash() == first.content_hash()
    other = build(small_store, audience=Audience.owner(), strategy=CoTStrategy.STRONG, seed=4)
    assert other.content_hash() != first.content_hash()


def test_strategies_differ_in_reasoning_only(by_strategy: dict[CoTStrategy, Dataset]) -> None:
    weak, multi, strong = (by_strategy[s] for s in CoTStrategy)
    assert [s.id for s in weak.samples] == [s.id for s in strong.samples]
    assert [s.id for s in multi.samples] == [s.id for s in strong.samples]
    assert any(s.kind == TaskKind.CONTEXT_CRITIC for s in strong.samples)
    for w, m, s in zip(weak.samples, multi.samples, strong.samples, strict=True):
        parsed = [parse_reply(x.kind, x.reply) for x in (w, m, s)]
        # the asker sees the same thing whichever way the model was taught to reason
        assert len({(p.answer, p.verdict, p.added, p.checked) for p in parsed}) == 1
        assert parsed[0].reasoning is None and "<think>" not in w.reply
        assert "\nAnswer: " in m.reply and parsed[1].reasoning
        assert s.reply.startswith("<think>\n- ") and parsed[2].reasoning
        assert len(parsed[2].reasoning.splitlines()) <= STRONG_MAX_STEPS


def test_the_shared_data_never_sees_the_private_note(small_store: MemoryStore) -> None:
    owner = build(small_store, audience=Audience.owner(), strategy=CoTStrategy.WEAK, seed=1)
    shared = build(small_store, audience=Audience.friend(), strategy=CoTStrategy.WEAK, seed=1)
    assert any(SECRET in s.reply for s in owner.samples)
    everything = [
        text
        for s in shared.samples
        for text in (s.request.text, s.reply, *(c.text for c in s.request.context))
    ] + [t for p in shared.pairs for t in (p.chosen, p.rejected)]
    assert everything and not [t for t in everything if SECRET in t]
    # the friend is told things from the chat, in the owner's own voice
    assert any("Every Monday at 19:00" in s.reply for s in shared.samples)
    assert {s.kind for s in shared.samples} >= {TaskKind.MEMORY_QA, TaskKind.CHAT}
    assert shared.split(Split.TRAIN)
