"""Where a run's datasets come from: one per model, synthesized from what its audience may
see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from memory.store import MemoryStore
from training.synthesize.samples import Dataset
from twin.config import Settings
from twin.privacy import ModelSide
from twin.tasks import CoTStrategy, PromptBudget


@dataclass(frozen=True)
class DataRequest:
    """What a run asks of its data source for one model."""

    side: ModelSide
    strategy: CoTStrategy
    budget: PromptBudget
    seed: int
    train_samples: int
    pairs: int
    held_out_pairs: int


class TrainingData(Protocol):
    """A source of one model's dataset (samples with a held-out split, preference pairs)."""

    def dataset(self, store: MemoryStore, request: DataRequest) -> Dataset: ...


@dataclass
class SynthesizedData:
    """The default: `training.synthesize.synthesize` with the L1 facts the audience may see and
    the configured synthesizer and judge (none configured: offline synthesis)."""

    settings: Settings

    def dataset(self, store: MemoryStore, request: DataRequest) -> Dataset:
        from memory.profile import Profile
        from training.synthesize import SynthesisLimits, synthesize
        from training.synthesize.material import Fact
        from twin.llm_factory import build_llm

        audience = request.side.audience
        profile = Profile(store, self.settings.owner.name).for_audience(audience.visibilities)
        roles = self.settings.llm
        return synthesize(
            store,
            audience=audience,
            owner=self.settings.owner.name,
            identity=self.settings.owner.identity(),
            pronouns=self.settings.owner.pronouns,
            strategy=request.strategy,
            budget=request.budget,
            facts=[Fact.from_view(view) for view in profile.facts],
            synthesizer=build_llm(roles.synthesizer) if roles.synthesizer.configured else None,
            judge=build_llm(roles.judge) if roles.judge.configured else None,
            seed=request.seed,
            limits=SynthesisLimits(
                train_samples=request.train_samples,
                pairs=request.pairs,
                held_out_pairs=request.held_out_pairs,
            ),
        )
