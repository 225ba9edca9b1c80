"""Hybrid retrieval over L0: lexical (SQLite FTS5, BM25) and dense (Chroma), fused by rank.

Two things beyond plain fusion, both about chat memory and neither about any one data set:

- A memory is scored with its context. A chat message alone ("Yes! Last Saturday.") rarely holds
  what a question is about; the turns around it do. Each candidate's lexical and dense scores are
  blended with its neighbours' in the same thread, weighted down with distance.
- Names are people, not topics. When a query names someone who speaks in memory ("What did Tomás
  say about…"), the name is taken out of the text that is matched (otherwise every "thanks Tomás!"
  looks relevant) and that person's own messages are ranked up instead.

What comes back is always single memories with their provenance.
"""

from __future__ import annotations

import re
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from memory.index import DenseHit
from memory.models import Memory
from memory.store import MemoryFilter, MemoryStore

# Query vectors kept for reuse (a few MB at most).
QUERY_CACHE = 8192
# How many more dense hits to ask for when a filter will drop some of them.
DENSE_OVERFETCH = 4

_WORD = re.compile(r"\w+", re.UNICODE)

# Words that carry no topic. Kept short on purpose: BM25's idf already discounts common words;
# this only keeps FTS5 from matching nearly every memory on "the".
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
    ]
)

Mode = Literal["hybrid", "lexical", "dense"]


@dataclass(frozen=True)
class SearchHit:
    """A memory found for a query, with its fused score and where each retriever ranked it."""

    memory: Memory
    score: float
    lexical_rank: int | None = None
    dense_rank: int | None = None
    # cosine similarity of the memory alone to the query (hybrid mode): how on-topic it is
    similarity: float | None = None


@dataclass(frozen=True)
class RetrievalConfig:
    """How retrieval looks. The defaults are general choices for chat and notes, not fitted to
    one benchmark (see BENCHMARKS.md for how each part moves recall)."""

    candidates: int = 100
    rrf_k: int = 60
    # Weight of the nearest neighbour's score in a memory's own; further neighbours get
    # `context_decay` times less per step. 0 scores memories alone.
    context_weight: float = 0.5
    context_window: int = 2
    context_decay: float = 0.5
    speaker_aware: bool = True


@dataclass(frozen=True)
class _Query:
    text: str
    speakers: tuple[str, ...]


class Retriever:
    """Finds the memories that answer a query, within what a filter allows."""

    def __init__(self, store: MemoryStore, config: RetrievalConfig | None = None) -> None:
        self.store = store
        self.config = config or RetrievalConfig()
        # Query vectors by text: `prime` fills it in one batch for callers that know their
        # queries in advance (training data synthesis asks thousands).
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def prime(self, queries: Iterable[str], flt: MemoryFilter | None = None) -> None:
        """Embed, in one batch, what `search` will embed for each of `queries`."""
        flt = flt or MemoryFilter()
        asked = [q for q in queries if q.strip()]
        self.embed_queries([*asked, *(self._parse(q, flt).text for q in asked)])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors for `texts`, in order: the ones not seen lately in one batch."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            for text, vector in zip(missing, self.store.embedder.embed(missing), strict=True):
                self._remember(text, vector)
        if not texts:
            return np.zeros((0, self.store.embedder.dim), dtype=np.float32)
        return np.stack([self._embed(t) for t in texts])

    def search(
        self, query: str, k: int = 10, flt: MemoryFilter | None = None, mode: Mode = "hybrid"
    ) -> list[SearchHit]:
        """The `k` best memories for `query` among those `flt` lets through.

        `mode` "lexical" or "dense" runs one retriever alone on single memories (no context, no
        speaker handling): the baselines the hybrid is measured against.
        """
        flt = flt or MemoryFilter()
        if not query.strip() or k <= 0:
            return []
        n = max(self.config.candidates, k)
        if mode != "hybrid":
            ranked = (
                self._lexical_ids(query, n, flt)
                if mode == "lexical"
                else self._dense_ids(self._embed(query), n, flt)
            )
            return self._hits(
                ranked[:k], {mid: 1.0 / (r + 1) for r, mid in enumerate(ranked)}, {}, {}
            )

        parsed = self._parse(query, flt)
        lexical = self._lexical_ids(parsed.text, n, flt)
        vector = self._embed(parsed.text)
        dense = self._dense_ids(vector, n, flt)
        candidates = list(dict.fromkeys([*lexical, *dense]))
        if not candidates:
            return []
        context = self._context(candidates, flt)
        scored = list(
            dict.fromkeys([*candidates, *(i for ids, _ in context.values() for i in ids)])
        )
        lex_scores = self._bm25(parsed.text, scored, flt)
        dense_scores = self._similarities(vector, scored)

        lex_ctx = {mid: self._with_context(mid, lex_scores, context) for mid in candidates}
        dense_ctx = {mid: self._with_context(mid, dense_scores, context) for mid in candidates}
        rankings = [
            sorted(candidates, key=lambda mid: -lex_ctx[mid]),
            sorted(candidates, key=lambda mid: -dense_ctx[mid]),
        ]
        if parsed.speakers:
            rankings.append(self._speaker_ranking(candidates, parsed.speakers, lex_ctx, dense_ctx))
        fused: dict[str, float] = defaultdict(float)
        for ranking in rankings:
            for rank, mid in enumerate(ranking):
                fused[mid] += 1.0 / (self.config.rrf_k + rank + 1)
        best = sorted(fused, key=lambda mid: -fused[mid])[:k]
        return self._hits(
            best,
            fused,
            {mid: r for r, mid in enumerate(lexical)},
            {mid: r for r, mid in enumerate(dense)},
            dense_scores,
        )

    # -- the parts ---------------------------------------------------------------------------

    def _parse(self, query: str, flt: MemoryFilter) -> _Query:
        """Split the people a query names (speakers in memory) from what it is about."""
        if not self.config.speaker_aware:
            return _Query(query, ())
        words = _WORD.findall(query)
        by_name = self._speaker_names(flt)
        named = {by_name[w.casefold()] for w in words if w.casefold() in by_name}
        if not named:
            return _Query(query, ())
        rest = " ".join(w for w in words if w.casefold() not in by_name)
        return _Query(rest if rest.strip() else query, tuple(sorted(named)))

    def _speaker_names(self, flt: MemoryFilter) -> dict[str, str]:
        """Each speaker's full name and first name (casefolded) → the author as stored."""
        where, params = flt.sql("m")
        names: dict[str, str] = {}
        rows = self.store.conn.execute(
            f"SELECT DISTINCT m.author FROM memories m WHERE m.author IS NOT NULL AND {where}",
            params,
        )
        for (author,) in rows:
            parts = _WORD.findall(author)
            for key in (author.casefold(), parts[0].casefold() if parts else ""):
                if key and key not in STOPWORDS:
                    names.setdefault(key, author)
        return names

    def _embed(self, text: str) -> np.ndarray:
        vector = self._vectors.get(text)
        if vector is None:
            vector = self.store.embedder.embed([text])[0]
        self._remember(text, vector)
        return vector

    def _remember(self, text: str, vector: np.ndarray) -> None:
        self._vectors[text] = vector
        self._vectors.move_to_end(text)
        while len(self._vectors) > QUERY_CACHE:
            self._vectors.popitem(last=False)

    def _lexical_ids(self, text: str, n: int, flt: MemoryFilter) -> list[str]:
        match = fts_query(text)
        if not match:
            return []
        where, params = flt.sql("m")
        rows = self.store.conn.execute(
            "SELECT m.id FROM memories_fts f JOIN memories m ON m.rowid = f.rowid"
            f" WHERE memories_fts MATCH ? AND {where} ORDER BY bm25(memories_fts) LIMIT ?",
            [match, *params, n],
        )
        return [r[0] for r in rows]

    def nearest(self, vector: np.ndarray, n: int, flt: MemoryFilter) -> list[DenseHit]:
        """The `n` memories closest to `vector` among those `flt` lets through."""
        index = self.store.index
        if flt.is_everything:
            return index.query(vector, n)
        # Chroma answers a metadata-filtered query several times slower than a plain one, and
        # most audiences see most memories: ask for more, filter in SQLite, and fall back to a
        # filtered query only when too few survive.
        wide = index.query(vector, n * DENSE_OVERFETCH)
        allowed = self.store.allowed([hit.id for hit in wide], flt)
        kept = [hit for hit in wide if hit.id in allowed]
        if len(kept) >= n or len(wide) < n * DENSE_OVERFETCH:
            return kept[:n]
        return index.query(vector, n, where=chroma_where(flt, self.store))

    def _dense_ids(self, vector: np.ndarray, n: int, flt: MemoryFilter) -> list[str]:
        return [hit.id for hit in self.nearest(vector, n, flt)]

    def _bm25(self, text: str, ids: Sequence[str], flt: MemoryFilter) -> dict[str, float]:
        """BM25 of `ids` for `text`, scaled so the best is 1 (0 for memories that do not match)."""
        scores = dict.fromkeys(ids, 0.0)
        match = fts_query(text)
        if not match:
            return scores
        where, params = flt.sql("m")
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" for _ in chunk)
            rows = self.store.conn.execute(
                "SELECT m.id, -bm25(memories_fts) FROM memories_fts f JOIN memories m"
                f" ON m.rowid = f.rowid WHERE memories_fts MATCH ? AND m.id IN ({marks})"
                f" AND {where}",
                [match, *chunk, *params],
            )
            scores.update(dict(rows.fetchall()))
        top = max(scores.values(), default=0.0)
        return {mid: s / top for mid, s in scores.items()} if top > 0 else scores

    def _similarities(self, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        sims = self.store.vectors(list(ids)) @ vector
        return dict(zip(ids, sims.tolist(), strict=True))

    def _context(
        self, ids: Sequence[str], flt: MemoryFilter
    ) -> dict[str, tuple[list[str], list[int]]]:
        """For each memory, the ids of its neighbours (that `flt` allows) and their distances."""
        window = self.config.context_window
        if window <= 0 or self.config.context_weight == 0:
            return {mid: ([], []) for mid in ids}
        out: dict[str, tuple[list[str], list[int]]] = {}
        for mid, before, after in self.store.thread_neighbours(ids, window, flt):
            out[mid] = (
                [*before, *after],
                [*range(len(before), 0, -1), *range(1, len(after) + 1)],
            )
        return out

    def _with_context(
        self,
        mid: str,
        scores: dict[str, float],
        context: dict[str, tuple[list[str], list[int]]],
    ) -> float:
        neighbours, distances = context.get(mid, ([], []))
        total = scores[mid]
        for other, distance in zip(neighbours, distances, strict=True):
            weight = self.config.context_weight * self.config.context_decay ** (distance - 1)
            total += weight * scores[other]
        return total

    def _speaker_ranking(
        self,
        candidates: list[str],
        speakers: tuple[str, ...],
        lex: dict[str, float],
        dense: dict[str, float],
    ) -> list[str]:
        """The named speakers' own messages first, each group ordered by combined score."""
        authors = {m.id: m.author for m in self.store.get_many(candidates)}
        order = sorted(candidates, key=lambda mid: -(lex[mid] + dense[mid]))
        own = [mid for mid in order if authors.get(mid) in speakers]
        return own + [mid for mid in order if authors.get(mid) not in speakers]

    def _hits(
        self,
        ids: list[str],
        scores: dict[str, float],
        lex_rank: dict[str, int],
        dense_rank: dict[str, int],
        similarity: dict[str, float] | None = None,
    ) -> list[SearchHit]:
        return [
            SearchHit(
                memory=m,
                score=scores[m.id],
                lexical_rank=lex_rank.get(m.id),
                dense_rank=dense_rank.get(m.id),
                similarity=(similarity or {}).get(m.id),
            )
            for m in self.store.get_many(ids)
        ]


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression: any of the query's content words, each quoted so that user
    input is never read as FTS5 syntax."""
    words = [w for w in _WORD.findall(text.casefold()) if w not in STOPWORDS]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def chroma_where(flt: MemoryFilter, store: MemoryStore) -> dict[str, Any] | None:
    """The restrictions of `flt.sql()`, in Chroma's metadata filter language."""
    vis = [str(v) for v in flt.visibilities]
    clauses: list[dict[str, Any]] = []
    if flt.see_all_shared:
        clauses.append({"visibility": {"$in": vis}})
    else:
        own: dict[str, Any] = {"$and": [{"shared_with": ""}, {"visibility": {"$in": vis}}]}
        clauses.append({"$or": [own, {"shared_with": flt.principal}]} if flt.principal else own)
    if flt.since is not None:
        clauses.append({"ts": {"$gte": flt.since.timestamp()}})
    if flt.until is not None:
        clauses.append({"ts": {"$lt": flt.until.timestamp()}})
    if flt.sources:
        keys = [s.key for s, _ in store.sources() if any(_under(s.key, p) for p in flt.sources)]
        clauses.append({"source_key": {"$in": keys or ["\0none"]}})
    if flt.speakers:
        clauses.append({"author": {"$in": store.authors_matching(flt.speakers) or ["\0none"]}})
    if flt.thread is not None:
        clauses.append({"thread": flt.thread})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ":")


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
