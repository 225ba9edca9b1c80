"""Who is asking, and what they may see.

Every memory has a visibility (private, friends, public), and a friend's own conversation with the
twin is shared with that friend alone. An `Audience` turns "who is asking" into the filter that
retrieval and training apply, so the rule lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from memory.models import Visibility
from memory.store import MemoryFilter


class AudienceKind(StrEnum):
    OWNER = "owner"
    FRIEND = "friend"
    PUBLIC = "public"


_VISIBLE: dict[AudienceKind, tuple[Visibility, ...]] = {
    AudienceKind.OWNER: (Visibility.PRIVATE, Visibility.FRIENDS, Visibility.PUBLIC),
    AudienceKind.FRIEND: (Visibility.FRIENDS, Visibility.PUBLIC),
    AudienceKind.PUBLIC: (Visibility.PUBLIC,),
}


@dataclass(frozen=True)
class Audience:
    """The asker: the owner, a friend (with their platform id), or anyone."""

    kind: AudienceKind
    principal: str | None = None

    @classmethod
    def owner(cls) -> Audience:
        return cls(AudienceKind.OWNER)

    @classmethod
    def friend(cls, principal: str | None = None) -> Audience:
        return cls(AudienceKind.FRIEND, principal)

    @classmethod
    def public(cls, principal: str | None = None) -> Audience:
        return cls(AudienceKind.PUBLIC, principal)

    @classmethod
    def parse(cls, name: str, principal: str | None = None) -> Audience:
        """An audience by name: "owner", "friend" or "public"."""
        try:
            return cls(AudienceKind(name.strip().lower()), principal)
        except ValueError:
            raise ValueError(f"unknown audience {name!r}; use owner, friend or public") from None

    @property
    def is_owner(self) -> bool:
        return self.kind == AudienceKind.OWNER

    @property
    def visibilities(self) -> tuple[Visibility, ...]:
        return _VISIBLE[self.kind]

    def may_see(self, visibility: Visibility, shared_with: str | None = None) -> bool:
        """Whether this audience may see a memory (or a claim) with this visibility."""
        if self.is_owner:
            return True
        if shared_with is not None:
            return shared_with == self.principal
        return visibility in self.visibilities

    def memory_filter(self, **narrowing: Any) -> MemoryFilter:
        """The filter for what this audience may see, narrowed further by `narrowing` (since,
        until, sources, speakers, thread)."""
        base = MemoryFilter(
            visibilities=self.visibilities,
            principal=self.principal,
            see_all_shared=self.is_owner,
        )
        return replace(base, **narrowing)
