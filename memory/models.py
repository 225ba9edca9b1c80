"""The types that cross the memory layer's boundary: what importers produce, what the store
returns."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.text import one_line


class Kind(StrEnum):
    """What a memory is: a chunk of a note, one chat message, or a chunk of another document."""

    NOTE = "note"
    CHAT = "chat"
    DOCUMENT = "document"


class AskedBy(StrEnum):
    """Who is asking retrieval: the owner, or anyone else (a friend, an agent, the public).
    It decides how "I", "you" and "she" in a question are read, never what may be seen."""

    OWNER = "owner"
    OTHER = "other"


class Visibility(StrEnum):
    """Who may see a memory. Ordered from narrowest to widest."""

    PRIVATE = "private"
    FRIENDS = "friends"
    PUBLIC = "public"

    @property
    def rank(self) -> int:
        return _VISIBILITY_RANK[self]

    @classmethod
    def narrowest(cls, visibilities: list[Visibility]) -> Visibility:
        """The narrowest of several visibilities: what a claim derived from all of them may have."""
        if not visibilities:
            raise ValueError("narrowest() needs at least one visibility")
        return min(visibilities, key=lambda v: v.rank)


_VISIBILITY_RANK = {Visibility.PRIVATE: 0, Visibility.FRIENDS: 1, Visibility.PUBLIC: 2}


def content_hash(text: str) -> str:
    """A stable hash of a memory's text, insensitive to unicode form and surrounding whitespace."""
    normal = unicodedata.normalize("NFC", text).strip()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SourceRef:
    """One conversation, channel or notes folder that memories come from.

    `key` is stable across exports of the same chat (e.g. ``telegram:chat:4242``), so that a
    later, larger export of the same chat lands in the same source and only adds what is new.
    """

    key: str
    kind: str
    name: str
    path: str = ""


@dataclass(frozen=True)
class MemoryDraft:
    """A memory as an importer produces it, before it is stored.

    `source_id` is the source-native id (a message id, or a chunk id for notes); together with the
    source key it identifies the memory, which is what makes re-importing idempotent.
    """

    text: str
    kind: Kind
    source_id: str
    author: str | None = None
    author_id: str | None = None
    timestamp: datetime | None = None
    thread: str | None = None
    reply_to: str | None = None
    visibility: Visibility | None = None
    # A conversation between the twin and one friend is visible to that friend (and the owner) only.
    shared_with: str | None = None
    is_owner: bool | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class ParsedSource:
    """Everything one importer read from one export or folder: a source and its memories."""

    source: SourceRef
    drafts: list[MemoryDraft]
    # Notes are documents that change: a re-import replaces the file's old chunks. Chat exports
    # only ever grow, and a partial export must not delete what an earlier one brought in.
    replaces_missing: bool = False
    skipped: int = 0
    # What the importer had to assume and the user should know (e.g. an ambiguous date order).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Memory:
    """A stored L0 memory with its provenance."""

    id: str
    text: str
    kind: Kind
    source_key: str
    source_name: str
    source_id: str
    author: str | None
    author_id: str | None
    is_owner: bool
    timestamp: datetime | None
    thread: str | None
    reply_to: str | None
    visibility: Visibility
    shared_with: str | None
    content_hash: str
    created_at: datetime
    meta: dict[str, str] = field(default_factory=dict)

    def snippet(self, width: int = 160) -> str:
        """The text on one line, shortened to `width` characters."""
        return one_line(self.text, width)


@dataclass(frozen=True)
class OwnerIdentity:
    """How the owner appears in exports: display names and platform ids."""

    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    def matches(self, author: str | None, author_id: str | None) -> bool:
        if author_id and author_id in self.ids:
            return True
        if author:
            folded = author.casefold().strip()
            return any(folded == name.casefold().strip() for name in self.names)
        return False
