"""The types of L1 memory: audience scopes, what the writers produce, and what readers get."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from memory.models import Memory, Visibility
from memory.store import MemoryFilter


class Scope(StrEnum):
    """Who an L1 artefact is built for. Topics and bios exist once per scope, each made only
    from the memories that scope may see; a memory shared with one friend counts as private."""

    OWNER = "owner"
    FRIENDS = "friends"
    PUBLIC = "public"

    @property
    def visibilities(self) -> tuple[Visibility, ...]:
        return _SCOPE_VISIBILITIES[self]

    @property
    def memory_filter(self) -> MemoryFilter:
        """The memories this scope is built from."""
        return MemoryFilter(visibilities=self.visibilities, see_all_shared=self is Scope.OWNER)

    def may_see(self, visibility: Visibility) -> bool:
        """Whether a fact or memory with this (effective) visibility belongs in this scope."""
        return visibility in self.visibilities

    @classmethod
    def for_audience(cls, visibilities: tuple[Visibility, ...]) -> Scope | None:
        """The widest scope an audience that may see `visibilities` can be shown, or None.

        A scope is only chosen when the audience may see everything in it, so an odd audience
        (friends-only, say, without public) gets the next narrower scope, never a wider one.
        """
        allowed = set(visibilities)
        for scope in (cls.OWNER, cls.FRIENDS, cls.PUBLIC):
            if set(scope.visibilities) <= allowed:
                return scope
        return None


_SCOPE_VISIBILITIES = {
    Scope.OWNER: (Visibility.PRIVATE, Visibility.FRIENDS, Visibility.PUBLIC),
    Scope.FRIENDS: (Visibility.FRIENDS, Visibility.PUBLIC),
    Scope.PUBLIC: (Visibility.PUBLIC,),
}


def effective_visibility(visibility: Visibility, shared_with: str | None) -> Visibility:
    """What a memory counts as when something is derived from it: a memory shared with one
    friend is private, because nobody else may see what was built from it."""
    return Visibility.PRIVATE if shared_with is not None else visibility


# -- what the writers produce -----------------------------------------------------------------


@dataclass(frozen=True)
class FactDraft:
    """A fact as an extractor proposes it, before it is merged into the profile.

    `attribute` groups facts that talk about the same thing ("home_city", "sibling:sister",
    "likes"); `exclusive` says a newer value replaces an older one (where someone lives) rather
    than adding to it (what they like). `support` are the ids of the memories it comes from.
    """

    statement: str
    first_person: str
    attribute: str
    value: str
    support: tuple[str, ...]
    exclusive: bool = False


@dataclass(frozen=True)
class TopicCluster:
    """A group of memories to be named: its keywords and the members nearest its centre."""

    scope: Scope
    keywords: tuple[str, ...]
    samples: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class TopicName:
    label: str
    description: str = ""


@dataclass(frozen=True)
class BioFact:
    """A fact as a bio writer sees it; `key` is how the writer cites it."""

    key: int
    statement: str
    first_person: str
    attribute: str
    value: str
    newest: datetime | None


@dataclass(frozen=True)
class BioTopic:
    key: int
    label: str
    keywords: tuple[str, ...]
    description: str
    size: int
    first: datetime | None
    last: datetime | None
    recent_size: int = 0


@dataclass(frozen=True)
class BioRequest:
    """Everything one scope's bios may be written from.

    `recent_facts` and `recent_topics` are the subsets active in the status window (the last
    `status_days` before the newest memory the scope can see, `now`).
    """

    owner_name: str
    scope: Scope
    facts: tuple[BioFact, ...]
    topics: tuple[BioTopic, ...]
    recent_facts: tuple[BioFact, ...]
    recent_topics: tuple[BioTopic, ...]
    now: datetime | None
    since: datetime | None

    @property
    def is_empty(self) -> bool:
        return not self.facts and not self.topics


@dataclass(frozen=True)
class BioTexts:
    """The four bio texts of one scope, and the facts (by `BioFact.key`) the writer cited."""

    global_third: str
    global_first: str
    status_third: str
    status_first: str
    cited: tuple[int, ...] = ()

    def items(self) -> list[tuple[str, str, str]]:
        """(kind, person, text) for each of the four texts."""
        return [
            ("global", "third", self.global_third),
            ("global", "first", self.global_first),
            ("status", "third", self.status_third),
            ("status", "first", self.status_first),
        ]


# -- what builds and readers return -----------------------------------------------------------


@dataclass(frozen=True)
class ScopeStats:
    """What one build did to one scope's topics and bios."""

    scope: Scope
    memories: int
    new_memories: int
    assigned: int
    new_topics: int
    relabelled: int
    topics: int
    bios_rebuilt: bool


@dataclass(frozen=True)
class BuildReport:
    """What a build did, and how long each part took (seconds)."""

    build_id: int
    mode: str
    seconds: float
    fact_memories: int
    fact_drafts: int
    facts_added: int
    facts_merged: int
    facts_removed: int
    facts_superseded: int
    facts_total: int
    scopes: tuple[ScopeStats, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "mode": self.mode,
            "seconds": round(self.seconds, 3),
            "fact_memories": self.fact_memories,
            "fact_drafts": self.fact_drafts,
            "facts_added": self.facts_added,
            "facts_merged": self.facts_merged,
            "facts_removed": self.facts_removed,
            "facts_superseded": self.facts_superseded,
            "facts_total": self.facts_total,
            "scopes": {
                str(s.scope): {
                    "memories": s.memories,
                    "new_memories": s.new_memories,
                    "assigned": s.assigned,
                    "new_topics": s.new_topics,
                    "relabelled": s.relabelled,
                    "topics": s.topics,
                    "bios_rebuilt": s.bios_rebuilt,
                }
                for s in self.scopes
            },
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class FactView:
    """A fact as an audience sees it, with the memories it comes from."""

    id: int
    statement: str
    first_person: str
    attribute: str
    value: str
    visibility: Visibility
    status: str
    superseded_by: int | None
    extractor: str
    newest: datetime | None
    sources: tuple[Memory, ...]


@dataclass(frozen=True)
class TopicView:
    id: int
    label: str
    description: str
    keywords: tuple[str, ...]
    size: int
    first: datetime | None
    last: datetime | None
    stale: bool
    member_ids: tuple[str, ...]


@dataclass(frozen=True)
class BioView:
    """One bio text. `fallback` is set when the stored text was stale and this one was
    assembled offline from the current facts and topics instead."""

    kind: str
    person: str
    text: str
    writer: str
    fallback: bool


@dataclass(frozen=True)
class ProfileView:
    """L1 memory as one audience may see it."""

    scope: Scope | None
    bios: tuple[BioView, ...]
    topics: tuple[TopicView, ...]
    facts: tuple[FactView, ...]
    build_id: int | None
    built_at: datetime | None

    def bio(self, kind: str = "global", person: str = "third") -> str:
        """The text of one bio ("" when there is none)."""
        for bio in self.bios:
            if bio.kind == kind and bio.person == person:
                return bio.text
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": str(self.scope) if self.scope else None,
            "build_id": self.build_id,
            "built_at": self.built_at.isoformat() if self.built_at else None,
            "bios": [
                {
                    "kind": b.kind,
                    "person": b.person,
                    "text": b.text,
                    "writer": b.writer,
                    "fallback": b.fallback,
                }
                for b in self.bios
            ],
            "topics": [
                {
                    "id": t.id,
                    "label": t.label,
                    "description": t.description,
                    "keywords": list(t.keywords),
                    "size": t.size,
                    "first": t.first.isoformat() if t.first else None,
                    "last": t.last.isoformat() if t.last else None,
                    "stale": t.stale,
                    "members": list(t.member_ids),
                }
                for t in self.topics
            ],
            "facts": [
                {
                    "id": f.id,
                    "statement": f.statement,
                    "first_person": f.first_person,
                    "attribute": f.attribute,
                    "value": f.value,
                    "visibility": str(f.visibility),
                    "status": f.status,
                    "superseded_by": f.superseded_by,
                    "extractor": f.extractor,
                    "newest": f.newest.isoformat() if f.newest else None,
                    "sources": [{"id": m.id, "snippet": m.snippet(120)} for m in f.sources],
                }
                for f in self.facts
            ],
        }
