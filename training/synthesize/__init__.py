"""Training data for the twin's models, synthesized from memory (L0) and the profile (L1).

`synthesize` builds one audience's `Dataset`: the owner's model learns from everything, the
shared model (third parties) only from what a friend may see — every memory read and every
retrieval goes through the audience's filter, so nothing derived from a private memory can enter
the shared data. The steps:

1. drafts: the offline synthesizer (or the configured `synthesizer` LLM) writes memory QA,
   context enhance and critic drafts; identity answers, declines (third parties only) and what
   the chat exports hold (exchanges, chat pairs) are added either way;
2. a seeded selection keeps about `limits.train_samples` (memory QA the bulk; enhance, critic,
   chat at their shares), whole facts at a time so a held-out question keeps its trained ones,
   taken from each source (note, chat) in turn so that a small dataset covers all of memory;
3. assembly: the context serving would retrieve, and the reply in the run's CoT format;
4. filters (dedupe, length and format, grounding, a judge when configured), counted by name;
5. DPO pairs, `limits.pairs` from training samples and `limits.held_out_pairs` from held-out
   ones: perturbed facts, unsupported answers, the wrong voice, oversharing
   (`training.synthesize.preferences`).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from lm.base import LLM
from memory.models import OwnerIdentity
from memory.store import MemoryStore
from training.synthesize.assemble import Assembler, ServingSearch
from training.synthesize.chats import ChatMiner
from training.synthesize.drafts import Draft
from training.synthesize.filters import FilterLimits, apply_filters
from training.synthesize.material import Fact, Material
from training.synthesize.offline import DECLINE_FACT, OfflineSynthesizer
from training.synthesize.preferences import preference_pairs
from training.synthesize.requests import RequestSynthesizer
from training.synthesize.samples import Dataset, PreferencePair, Sample, Split
from training.synthesize.templates import is_l1_fact_template
from training.synthesize.with_llm import LLMSynthesizer, SynthesisError
from twin.config import Pronouns
from twin.privacy import Audience
from twin.tasks import CoTStrategy, PromptBudget, TaskKind, excerpt

__all__ = [
    "Dataset",
    "Fact",
    "PreferencePair",
    "Sample",
    "Split",
    "SynthesisError",
    "SynthesisLimits",
    "synthesize",
]


@dataclass(frozen=True)
class SynthesisLimits:
    """How much data to make and what to let through.

    The training run sets `train_samples` and the pairs from its recipe (what fits its time
    budget); the shares and filters are the same for every run.
    """

    train_samples: int = 320
    pairs: int = 64
    held_out_pairs: int = 24
    # shares of the training samples, at most (memory QA takes the rest); only the owner's
    # model gets enhance and critic requests, and a few dozen are what it needs to learn them
    enhance_share: float = 0.12
    critic_share: float = 0.2
    chat_share: float = 0.15
    # of the facts asked about, the share also asked in a held-out phrasing
    test_share: float = 0.12
    phrasings_per_fact: int = 3
    requests_per_template: int = 6
    max_sample_chars: int = 2400
    max_reply_chars: int = 800
    duplicate_cosine: float = 0.95
    judge_min_score: int = 4
    llm_batch_memories: int = 8
    # drafts kept before filtering, relative to what is wanted after (filters remove some)
    slack: float = 1.2


def synthesize(
    store: MemoryStore,
    *,
    audience: Audience,
    owner: str,
    strategy: CoTStrategy,
    budget: PromptBudget,
    identity: OwnerIdentity | None = None,
    pronouns: Pronouns = Pronouns.THEY,
    facts: Sequence[Fact] = (),
    bio: str = "",
    synthesizer: LLM | None = None,
    judge: LLM | None = None,
    seed: int = 0,
    limits: SynthesisLimits | None = None,
) -> Dataset:
    """One audience's training data: samples (train and held-out test), DPO pairs, and how many
    samples each filter removed. Deterministic given `seed` (and the LLMs' answers).

    `facts` are L1 facts (`Fact.from_view` reads `memory.profile` ones); a fact counts only when
    the audience may see every memory it rests on. `identity` is how the owner appears in
    memory (retrieval reads questions about the owner by it, as serving does); `pronouns` are
    how replies to third parties speak of the owner; `bio` is the bio
    the audience may see, shown when the budget has room for one. Raises SynthesisError when
    the `synthesizer` model gives no valid data.
    """
    limits = limits or SynthesisLimits()
    rng = random.Random(seed)
    material = Material.read(store, audience, owner, facts, pronouns=pronouns)
    search = ServingSearch(store, audience, budget, owner=identity)
    drafts = _drafts(material, search, synthesizer, rng, limits)
    selected = _select(drafts, material, rng, limits)

    bio = bio if budget.bio else ""
    assembler = Assembler(store, search, audience, owner, budget, strategy, rng, bio)
    samples = assembler.assemble(selected)
    kept, removed = apply_filters(
        samples,
        store=store,
        audience=audience,
        budget=budget,
        strategy=strategy,
        embed=search.retriever.embed_queries,
        judge=judge,
        limits=FilterLimits(limits.max_sample_chars, limits.max_reply_chars),
        duplicate_cosine=limits.duplicate_cosine,
        judge_min_score=limits.judge_min_score,
    )
    kept = _trim(kept, rng, limits.train_samples)
    by_id = {m.id: m for m in material.memories}

    def first_person(sample: Sample) -> str | None:
        """The owner's own words the sample's answer rests on."""
        memory = by_id.get(sample.support[0]) if sample.support else None
        if memory is None or not memory.is_owner or not sample.key_facts:
            return None
        return excerpt(memory.text, sample.key_facts[0], 160)

    pairs = preference_pairs(
        kept,
        material.lexicon,
        train_pairs=limits.pairs,
        held_out_pairs=limits.held_out_pairs,
        first_person=first_person,
        seed=seed,
    )
    return Dataset(samples=kept, pairs=pairs, removed=removed)


def _drafts(
    material: Material,
    search: ServingSearch,
    synthesizer: LLM | None,
    rng: random.Random,
    limits: SynthesisLimits,
) -> list[Draft]:
    offline = OfflineSynthesizer(
        material, rng, test_share=limits.test_share, phrasings_per_fact=limits.phrasings_per_fact
    )
    chats = ChatMiner(material, rng, test_share=limits.test_share)
    drafts: list[Draft] = []
    if synthesizer is not None:
        llm = LLMSynthesizer(
            material,
            synthesizer,
            rng,
            batch_memories=limits.llm_batch_memories,
            test_share=limits.test_share,
        )
        drafts += llm.drafts()
    else:
        requests = RequestSynthesizer(
            material, rng, test_share=limits.test_share, shown_chars=search.shown_chars
        )
        drafts += offline.memory_qa()
        drafts += requests.enhance(search, limits.requests_per_template)
        drafts += requests.critic(limits.requests_per_template)
    drafts += chats.exchanges()
    drafts += chats.pairs()
    drafts += offline.identity()
    drafts += offline.declines()
    return drafts


def _select(
    drafts: list[Draft], material: Material, rng: random.Random, limits: SynthesisLimits
) -> list[Draft]:
    """About `slack` × the wanted training samples, each kind within its share, chosen a fact
    at a time (a fact's drafts, training and held-out, stay together) and in turn from each
    source (note, chat), so that a small dataset still covers every part of memory. Questions
    on L1 facts come first among memory QA: they are what people ask a twin most. A group
    held out whole (a test request of its own) is kept whatever the quota: it adds nothing to
    training and is what the run is measured on."""
    wanted = limits.train_samples * limits.slack
    quota = {
        TaskKind.CONTEXT_ENHANCE: wanted * limits.enhance_share,
        TaskKind.CONTEXT_CRITIC: wanted * limits.critic_share,
        TaskKind.CHAT: wanted * limits.chat_share,
    }
    facts: dict[tuple[TaskKind, str], list[Draft]] = defaultdict(list)
    for draft in drafts:
        facts[(draft.kind, draft.fact or draft.text)].append(draft)
    source_of = {m.id: m.source_key for m in material.memories}
    chosen: list[Draft] = []
    by_kind: dict[TaskKind, list[list[Draft]]] = defaultdict(list)
    for (kind, fact), group in facts.items():
        if kind == TaskKind.IDENTITY or fact.startswith(DECLINE_FACT):
            chosen.extend(group)  # few, and each one needed
        else:
            by_kind[kind].append(group)
    for kind in (
        TaskKind.CONTEXT_ENHANCE,
        TaskKind.CONTEXT_CRITIC,
        TaskKind.CHAT,
        TaskKind.MEMORY_QA,
    ):
        limit = quota.get(kind, wanted - _train_count(chosen))
        taken = 0
        groups = by_kind.get(kind, [])
        ordered = _round_robin(
            [g for g in groups if is_l1_fact_template(g[0].template)], source_of, rng
        )
        ordered += _round_robin(
            [g for g in groups if not is_l1_fact_template(g[0].template)], source_of, rng
        )
        for group in ordered:
            trains = _train_count(group)
            # held out only: no training sample to count, and what the run is measured on
            if trains and taken >= limit:
                continue
            chosen.extend(group)
            taken += trains
    order = {id(d): i for i, d in enumerate(drafts)}
    return sorted(chosen, key=lambda d: order[id(d)])


def _round_robin(
    groups: list[list[Draft]], source_of: dict[str, str], rng: random.Random
) -> list[list[Draft]]:
    """`groups` shuffled, then interleaved by the source of the memory each rests on."""
    by_source: dict[str, list[list[Draft]]] = defaultdict(list)
    for group in groups:
        support = group[0].support
        by_source[source_of.get(support[0], "") if support else ""].append(group)
    queues = [by_source[key] for key in sorted(by_source)]
    rng.shuffle(queues)
    for queue in queues:
        rng.shuffle(queue)
    out: list[list[Draft]] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop())
    return out


def _train_count(drafts: Sequence[Draft]) -> int:
    return sum(1 for d in drafts if d.split == Split.TRAIN)


def _trim(samples: list[Sample], rng: random.Random, train_samples: int) -> list[Sample]:
    """At most `train_samples` training samples: memory QA gives way first, questions on L1
    facts last."""
    surplus = sum(1 for s in samples if s.split == Split.TRAIN) - train_samples
    if surplus <= 0:
        return samples
    qa = [
        i for i, s in enumerate(samples) if s.split == Split.TRAIN and s.kind == TaskKind.MEMORY_QA
    ]
    others = [i for i in qa if not is_l1_fact_template(samples[i].template)]
    on_facts = [i for i in qa if is_l1_fact_template(samples[i].template)]
    dropped = set(rng.sample(others, min(surplus, len(others))))
    dropped |= set(rng.sample(on_facts, min(surplus - len(dropped), len(on_facts))))
    return [s for i, s in enumerate(samples) if i not in dropped]
