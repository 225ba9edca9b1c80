"""What a build has decided, before it is written: topics, bios and facts per scope.

A build works out everything first (the slow part: clustering, and language-model calls when
a writer uses one) and then writes it in one transaction, so a failure anywhere leaves the
previous profile exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memory.profile.factbook import FactBook, FactRecord
from memory.profile.records import BioTexts, Scope


@dataclass(eq=False)
class TopicRecord:
    """A topic as stored, or about to be. `id` is None until it is written."""

    id: int | None
    scope: Scope
    members: list[int]
    centroid: np.ndarray
    threshold: float
    labelled_size: int
    label: str = ""
    description: str = ""
    keywords: tuple[str, ...] = ()
    namer: str = ""
    stale: bool = False
    new_members: list[int] = field(default_factory=list)
    relabel: bool = False

    @property
    def all_members(self) -> list[int]:
        return [*self.members, *self.new_members]


@dataclass
class BioPlan:
    """A scope's new bios: the texts, and every fact and topic the writer was given (the bios
    are linked to all of them, so forgetting any one makes the bios stale)."""

    scope: Scope
    texts: BioTexts
    writer: str
    inputs_hash: str
    facts: list[FactRecord]
    cited: list[bool]
    topics: list[TopicRecord]


@dataclass
class ScopePlan:
    scope: Scope
    step: str
    topics: list[TopicRecord]
    processed: list[int]
    bio: BioPlan | None = None


@dataclass
class BuildPlan:
    build_id: int
    full: bool
    fact_step: str
    fact_processed: list[int]
    facts: FactBook
    scopes: list[ScopePlan]

    def referenced_rowids(self) -> set[int]:
        """Every memory the plan writes a link to (it must still exist when the plan applies)."""
        rowids = set(self.fact_processed)
        for record in self.facts.alive:
            rowids.update(set(record.support) - record.stored_support)
        for scope in self.scopes:
            rowids.update(scope.processed)
            for topic in scope.topics:
                rowids.update(topic.new_members)
        return rowids
