"""Which L1 writers a twin's settings ask for: the LLM-backed ones
(`memory.profile.llm_writers`) when a synthesizer model is configured, else the offline ones."""

from __future__ import annotations

from dataclasses import dataclass

from memory.profile import BioWriter, FactExtractor, ProfileBuilder, TopicNamer
from memory.profile.llm_writers import LLMBioWriter, LLMFactExtractor, LLMTopicNamer
from memory.store import MemoryStore
from twin.config import Settings
from twin.llm_factory import build_llm


@dataclass(frozen=True)
class ProfileWriters:
    """The three writers a build uses; None means the offline one."""

    namer: TopicNamer | None = None
    extractor: FactExtractor | None = None
    bio_writer: BioWriter | None = None

    @property
    def uses_llm(self) -> bool:
        return self.namer is not None


def profile_writers(settings: Settings) -> ProfileWriters:
    """The LLM writers when a synthesizer model is configured, else the offline ones."""
    if not settings.llm.synthesizer.configured:
        return ProfileWriters()
    llm = build_llm(settings.llm.synthesizer)
    return ProfileWriters(LLMTopicNamer(llm), LLMFactExtractor(llm), LLMBioWriter(llm))


def profile_builder(store: MemoryStore, settings: Settings) -> ProfileBuilder:
    """The builder of this twin's L1 profile, with the writers its settings ask for."""
    writers = profile_writers(settings)
    return ProfileBuilder(
        store,
        settings.owner.name,
        namer=writers.namer,
        extractor=writers.extractor,
        bio_writer=writers.bio_writer,
    )
