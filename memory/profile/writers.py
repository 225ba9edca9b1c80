"""The parts of an L1 build a language model can do better than the offline methods.

Each is a small protocol. The offline implementations live beside it in this package
(`KeywordTopicNamer`, `PatternFactExtractor`, `TemplateBioWriter`), the LLM-backed ones in
`memory.profile.llm_writers`. The builder only ever hands a writer what the scope being built
may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from memory.models import Memory
from memory.profile.records import BioRequest, BioTexts, FactDraft, TopicCluster, TopicName


class TopicNamer(Protocol):
    """Names clusters of memories."""

    @property
    def name(self) -> str: ...

    def name_topics(self, clusters: Sequence[TopicCluster]) -> list[TopicName]:
        """One name per cluster, in order."""
        ...


class FactExtractor(Protocol):
    """Finds facts about the owner in a batch of memories.

    `batch_size` is how many memories one call should get. `limits` says, in a sentence or two,
    what the method cannot do ("" when there is nothing special to warn about); it is shown to
    the owner next to the facts.
    """

    @property
    def name(self) -> str: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def limits(self) -> str: ...

    def extract(self, memories: Sequence[Memory], owner_name: str) -> list[FactDraft]:
        """Facts supported by `memories` (each citing the ids of the ones it comes from)."""
        ...


class BioWriter(Protocol):
    """Writes a scope's four bio texts from its facts and topics."""

    @property
    def name(self) -> str: ...

    def write(self, request: BioRequest) -> BioTexts: ...
