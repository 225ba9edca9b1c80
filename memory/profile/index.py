"""L1 facts as an index into L0: a question that matches a fact reaches the memories behind it.

Facts are short, precise statements ("Iris Calder works at the Oceanário de Lisboa") with the
ids of the memories they come from, so a question phrased nothing like the memory ("Where does
Iris work?" against "Started my new job at the Oceanário today!") can still reach it. Only
active facts are indexed, each with the words a question about its attribute would use.

Privacy is exact: a fact is searched only in an index of the facts an audience may see (by
their computed visibility, so that a hidden fact cannot even shift the scores of visible ones),
and before use each matched fact is checked again against the asker's filter: its visibility as
computed now, and every one of its memories.

The index is built once per state of the profile (a build, a forgotten memory) and kept until
that state changes; telling whether it has is three small counts.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from memory.lexical import content_words
from memory.models import Visibility
from memory.store import MemoryFilter, MemoryStore

# The words a question about each kind of fact would use, beyond the fact's own words. Keyed by
# the first part of a fact's attribute (the offline extractor's attributes, which an LLM
# extractor is asked to use too).
ATTRIBUTE_WORDS: dict[str, str] = {
    "employer": "work job employer company workplace employed",
    "job": "job work profession occupation career living",
    "identity": "job profession describe",
    "diet": "diet eat food meat",
    "home_city": "live home city town based",
    "lived_in": "live lived before city",
    "hometown": "from grew up hometown city town originally",
    "birthplace": "born from birthplace",
    "pet": "pet animal",
    "partner": "partner girlfriend boyfriend wife husband spouse",
    "parent": "parent parents family",
    "sibling": "sibling siblings family",
    "child": "child children kid kids family",
    "grandparent": "grandparent grandparents family",
    "family": "family relative",
    "relation": "friend know",
    "allergy": "allergic allergy allergies",
    "likes": "like likes love favourite enjoy",
    "dislikes": "dislike hate like",
    "activity": "doing lately",
    "hobby": "hobby hobbies play",
    "studies": "study studies research",
    "favourite": "favourite favorite",
}
_MAX_MATCHES = 200


@dataclass(frozen=True)
class IndexedFact:
    """An active L1 fact, with the ids of its memories and its computed visibility."""

    id: int
    statement: str
    first_person: str
    attribute: str
    value: str
    memory_ids: tuple[str, ...]
    visibility: Visibility


@dataclass(frozen=True)
class FactMatch:
    fact: IndexedFact
    # BM25 of the fact for the query, scaled so that the best match is 1
    score: float


class FactIndex:
    """The active facts of a store's profile, searchable per audience."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._facts: dict[int, IndexedFact] = {}
        self._searchers: dict[frozenset[Visibility], sqlite3.Connection] = {}

    def visible(self, flt: MemoryFilter) -> list[IndexedFact]:
        """The facts `flt` may see, checked as `usable` does."""
        with self._lock:
            self._refresh()
            allowed = set(flt.visibilities)
            candidates = [f for f in self._facts.values() if f.visibility in allowed]
        return self.usable(candidates, flt)

    def match(self, text: str, flt: MemoryFilter, limit: int = 5) -> list[FactMatch]:
        """The facts `flt` may see that best match `text` (any of its words), best first."""
        words = content_words(text)
        if not words:
            return []
        query = " OR ".join(f'"{w}"' for w in words)
        with self._lock:
            self._refresh()
            searcher = self._searcher(frozenset(flt.visibilities))
            rows = searcher.execute(
                "SELECT rowid, -bm25(facts) FROM facts WHERE facts MATCH ?"
                " ORDER BY bm25(facts) LIMIT ?",
                (query, _MAX_MATCHES),
            ).fetchall()
            scored = [(self._facts[rowid], score) for rowid, score in rows]
        usable = {f.id for f in self.usable([f for f, _ in scored], flt)}
        kept = [(f, s) for f, s in scored if f.id in usable][:limit]
        top = max((s for _, s in kept), default=0.0)
        return [FactMatch(f, s / top if top > 0 else 0.0) for f, s in kept]

    def usable(self, facts: Sequence[IndexedFact], flt: MemoryFilter) -> list[IndexedFact]:
        """Those of `facts` that `flt` may use: their visibility, computed now, is one it may
        see, and it lets every one of their memories through."""
        if not facts:
            return []
        conn = self.store.conn
        ids = [f.id for f in facts]
        marks = ",".join("?" for _ in ids)
        now = dict(
            conn.execute(
                "SELECT fact_id, visibility FROM profile_fact_visibility"
                f" WHERE fact_id IN ({marks})",
                ids,
            ).fetchall()
        )
        allowed = {str(v) for v in flt.visibilities}
        memories = self.store.allowed(sorted({m for f in facts for m in f.memory_ids}), flt)
        return [
            f
            for f in facts
            if now.get(f.id) in allowed and f.memory_ids and set(f.memory_ids) <= memories
        ]

    # -- keeping it current ------------------------------------------------------------------

    def _refresh(self) -> None:
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        self._facts = self._load()
        for searcher in self._searchers.values():
            searcher.close()
        self._searchers = {}
        self._stamp = stamp

    def _current_stamp(self) -> tuple[object, ...]:
        conn = self.store.conn
        build = conn.execute("SELECT max(id) FROM profile_builds WHERE status = 'done'").fetchone()
        facts = conn.execute(
            "SELECT count(*), max(id), max(updated_at) FROM profile_facts"
        ).fetchone()
        support = conn.execute("SELECT count(*) FROM profile_fact_support").fetchone()
        return (build[0], *facts, support[0])

    def _load(self) -> dict[int, IndexedFact]:
        conn = self.store.conn
        support: dict[int, list[str]] = {}
        for fact_id, memory_id in conn.execute(
            "SELECT s.fact_id, m.id FROM profile_fact_support s"
            " JOIN memories m ON m.rowid = s.memory_rowid"
            " ORDER BY s.fact_id, coalesce(m.ts, m.created_at), m.rowid"
        ):
            support.setdefault(fact_id, []).append(memory_id)
        rows = conn.execute(
            "SELECT f.id, f.statement, f.first_person, f.attribute, f.value, v.visibility"
            " FROM profile_facts f JOIN profile_fact_visibility v ON v.fact_id = f.id"
            " WHERE f.status = 'active' ORDER BY f.id"
        )
        return {
            r[0]: IndexedFact(
                id=r[0],
                statement=r[1],
                first_person=r[2],
                attribute=r[3],
                value=r[4],
                memory_ids=tuple(support.get(r[0], ())),
                visibility=Visibility(r[5]),
            )
            for r in rows
        }

    def _searcher(self, visibilities: frozenset[Visibility]) -> sqlite3.Connection:
        """An in-memory FTS5 index of just the facts of these visibilities."""
        searcher = self._searchers.get(visibilities)
        if searcher is None:
            searcher = sqlite3.connect(":memory:", check_same_thread=False)
            searcher.execute(
                "CREATE VIRTUAL TABLE facts USING fts5(statement, first_person, words,"
                " tokenize='porter unicode61 remove_diacritics 2')"
            )
            searcher.executemany(
                "INSERT INTO facts(rowid, statement, first_person, words) VALUES (?, ?, ?, ?)",
                [
                    (f.id, f.statement, f.first_person, attribute_words(f.attribute))
                    for f in self._facts.values()
                    if f.visibility in visibilities
                ],
            )
            self._searchers[visibilities] = searcher
        return searcher


def attribute_words(attribute: str) -> str:
    """The attribute's own words and the words questions about it use."""
    parts = [p for p in re.split(r"[:_]", attribute) if p]
    extra = ATTRIBUTE_WORDS.get(parts[0], "") if parts else ""
    return " ".join([*parts, extra]).strip()
