"""Facts being merged during a build: de-duplication and contradictions, in memory.

A draft joins an existing fact when it has the same attribute and the same value once
normalised ("the Oceanário de Lisboa" = "Oceanario de Lisboa"), or one value's words contain the
other's ("Lisbon" and "Lisbon, Portugal"); the fact then gains the draft's supporting memories.
For an exclusive attribute (where someone lives, works), the fact whose newest support is the
newest wins and the others are marked superseded by it, never deleted: if the newer memory is
forgotten, the older fact comes back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from memory.models import Visibility
from memory.profile.records import FactDraft
from memory.profile.sentences import normalise_value


@dataclass(frozen=True)
class Support:
    """A memory supporting a fact: what the fact's visibility and age are computed from."""

    rowid: int
    memory_id: str
    ts: float
    visibility: Visibility  # effective: a memory shared with one friend counts as private


@dataclass(eq=False)
class FactRecord:
    """A fact as stored, or about to be. `id` is None until it is written."""

    id: int | None
    attribute: str
    value: str
    statement: str
    first_person: str
    exclusive: bool
    extractor: str
    status: str = "active"
    superseded_by: FactRecord | None = None
    support: dict[int, Support] = field(default_factory=dict)
    stored_support: frozenset[int] = frozenset()
    stored_status: tuple[str, int | None] = ("active", None)
    stored_text: tuple[str, str, str] = ("", "", "")
    created_at: float | None = None
    order: int = 0

    @property
    def value_key(self) -> str:
        return normalise_value(self.value)

    @property
    def newest(self) -> float:
        return max((s.ts for s in self.support.values()), default=0.0)

    @property
    def visibility(self) -> Visibility:
        """The narrowest visibility of the supporting memories (what the SQL view computes)."""
        return Visibility.narrowest([s.visibility for s in self.support.values()])

    @property
    def is_new(self) -> bool:
        return self.id is None

    @property
    def text_changed(self) -> bool:
        return (self.statement, self.first_person, self.value) != self.stored_text

    @property
    def status_changed(self) -> bool:
        target = self.superseded_by.id if self.superseded_by else None
        return (self.status, target) != self.stored_status or (
            self.superseded_by is not None and self.superseded_by.id is None
        )


def same_value(a: str, b: str) -> bool:
    """Whether two normalised values name the same thing (equal, or one's words contain the
    other's)."""
    if a == b:
        return True
    wa, wb = set(a.split()), set(b.split())
    return bool(wa) and bool(wb) and (wa <= wb or wb <= wa)


class FactBook:
    """All facts of a profile while a build merges new drafts into them."""

    def __init__(self, records: list[FactRecord]) -> None:
        self.records = list(records)
        self._by_attribute: dict[str, list[FactRecord]] = defaultdict(list)
        for index, record in enumerate(self.records):
            record.order = index
            self._by_attribute[record.attribute].append(record)
        self.added = 0
        self.merged = 0

    def add(self, draft: FactDraft, supports: list[Support], extractor: str) -> FactRecord:
        """Merge `draft` (supported by `supports`) into a matching fact, or add it."""
        key = normalise_value(draft.value)
        for record in self._by_attribute[draft.attribute]:
            if same_value(record.value_key, key):
                if not record.support:
                    # A fact being re-derived (full build) takes the current extractor's words.
                    record.statement, record.first_person = draft.statement, draft.first_person
                    record.value, record.extractor = draft.value, extractor
                    record.exclusive = draft.exclusive
                for support in supports:
                    record.support[support.rowid] = support
                self.merged += 1
                return record
        record = FactRecord(
            id=None,
            attribute=draft.attribute,
            value=draft.value,
            statement=draft.statement,
            first_person=draft.first_person,
            exclusive=draft.exclusive,
            extractor=extractor,
            support={s.rowid: s for s in supports},
            order=len(self.records),
        )
        self.records.append(record)
        self._by_attribute[draft.attribute].append(record)
        self.added += 1
        return record

    def resolve(self) -> int:
        """Settle contradictions: per exclusive attribute the fact with the newest support is
        active and the others are superseded by it. Returns how many facts became superseded."""
        newly_superseded = 0
        for records in self._by_attribute.values():
            alive = [r for r in records if r.support]
            for record in alive:
                if not record.exclusive:
                    record.status, record.superseded_by = "active", None
            exclusive = [r for r in alive if r.exclusive]
            if not exclusive:
                continue
            winner = max(exclusive, key=lambda r: (r.newest, r.order))
            winner.status, winner.superseded_by = "active", None
            for record in exclusive:
                if record is winner:
                    continue
                if record.stored_status[0] != "superseded":
                    newly_superseded += 1
                record.status, record.superseded_by = "superseded", winner
        return newly_superseded

    @property
    def alive(self) -> list[FactRecord]:
        """The facts that still have support (the others are deleted when the build applies)."""
        return [r for r in self.records if r.support]

    @property
    def dead(self) -> list[FactRecord]:
        """Stored facts left with no support (a full build that did not find them again)."""
        return [r for r in self.records if not r.support and r.id is not None]
