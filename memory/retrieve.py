"""Hybrid retrieval over L0: lexical (SQLite FTS5, BM25) and dense (Chroma), fused by rank.

Beyond plain fusion, each about how people ask and how memory is written, none about one data
set (see BENCHMARKS.md for what each part moves):

- A memory is scored with its context. A chat message alone ("Yes! Last Saturday.") rarely holds
  what a question is about; the turns around it do. Each candidate's lexical and dense scores are
  blended with its neighbours' in the same thread, weighted down with distance.
- Names are people, not topics, and questions are read for whom they are about
  (`memory.query`): a name is taken out of the text that is matched (otherwise every "thanks
  Tomás!" looks relevant), the question is embedded in the voice of the person it is about
  ("Where does Iris work?" → "Where do I work?"), and that person's own memories are ranked up
  (for the owner: their messages and notes).
- L1 is an index into L0 (`memory.profile.index`): a question that matches a fact about the
  owner ranks up the memories behind the fact, and the owner's kin ("her sister", "Dad") are
  resolved to people through facts and speakers (`memory.people`).
- Times are dates (`memory.timeref`): a question that names a time ("in August 2026", "last
  Christmas") ranks up the memories written then, and finds them among those dates even when
  no word matches.

Every one of these paths reads memory through the caller's `MemoryFilter`, and L1 facts only as
far as the filter may see them and all of their memories, so none of them widens what an
audience sees or lets what it may not see steer its results. What comes back is always single
memories with their provenance.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from core.clock import SYSTEM_CLOCK, Clock
from memory.index import DenseHit
from memory.lexical import STOPWORDS, content_words, fts_query
from memory.models import AskedBy, Memory, OwnerIdentity
from memory.people import People, Relative, author_named, fact_role
from memory.profile.index import FactIndex
from memory.query import AnswerKind, QueryPlan, QueryReader
from memory.store import MemoryFilter, MemoryStore
from memory.timeref import MONTHS, WEEKDAYS, TimeWindow, mentions_time

__all__ = ["STOPWORDS", "Mode", "RetrievalConfig", "Retriever", "SearchHit", "fts_query"]

# Query vectors kept for reuse (a few MB at most).
QUERY_CACHE = 8192
# A fact about a person adds them to the query when it matches at least this well (of the best).
PERSON_FACT_SCORE = 0.5
# How deep in the combined ranking memories are checked for the kind of answer asked for.
ANSWER_KIND_DEPTH = 40
# How many more dense hits to ask for when a filter will drop some of them.
DENSE_OVERFETCH = 4

Mode = Literal["hybrid", "lexical", "dense"]


# Below this cosine similarity, and with no word in common, a memory is not about the query.
RELEVANCE_FLOOR = 0.3


@dataclass(frozen=True)
class SearchHit:
    """A memory found for a query, with its fused score and where each retriever ranked it."""

    memory: Memory
    score: float
    lexical_rank: int | None = None
    dense_rank: int | None = None
    # rank among the memories behind the L1 facts (and kin) the question matched
    fact_rank: int | None = None
    # cosine similarity of the memory alone to the query (hybrid mode): how on-topic it is
    similarity: float | None = None

    @property
    def relevant(self) -> bool:
        """Whether the memory is about the query at all (shares a word with it, stands behind
        an L1 fact that does, or is close in meaning): the rule for what goes into a prompt, in
        serving and in training alike."""
        return (
            self.lexical_rank is not None
            or self.fact_rank is not None
            or (self.similarity or 0.0) >= RELEVANCE_FLOOR
        )


@dataclass(frozen=True)
class RetrievalConfig:
    """How retrieval looks. The defaults are general choices for chat and notes, not fitted to
    one benchmark (see BENCHMARKS.md for how each part moves recall); each rule can be turned
    off to measure it."""

    candidates: int = 100
    rrf_k: int = 60
    # Weight of the nearest neighbour's score in a memory's own; further neighbours get
    # `context_decay` times less per step. 0 scores memories alone.
    context_weight: float = 0.5
    context_window: int = 2
    context_decay: float = 0.5
    # Names of speakers are people: taken out of the matched text, their messages ranked up.
    speaker_aware: bool = True
    # Questions about the owner (by name, alias or pronoun) rank up the owner's own memories.
    owner_aware: bool = True
    # How much the ranking of the asked-about people's own memories counts in the fusion: as
    # much as each other ranking (a value chosen on a test set would be tuned to it).
    subject_weight: float = 1.0
    # The dense query is the question in the voice of the person it is about.
    voice: bool = True
    # L1 facts that match a question about the owner rank up the memories behind them.
    facts: bool = True
    fact_limit: int = 3
    # The owner's kin words are resolved to people through L1 facts and speakers.
    kin: bool = True
    # A time the question names ranks up the memories of those dates.
    time_aware: bool = True
    # Below this many memories in a named time, all of them are compared with the query.
    window_scan: int = 3000
    # Words that say what kind of answer is wanted ("name", "called") are not matched.
    answer_frame: bool = True
    # Memories that say nothing the question does not ("InkSpot?") come after those that do.
    informative: bool = True
    # A question that asks for a date, a name, a number or a place ranks up the memories that
    # hold one.
    answer_kind: bool = True

    @classmethod
    def without_question_reading(cls) -> RetrievalConfig:
        """Fusion, context and speakers only: none of the rules that read the question for
        whom, which kin, which facts, which times and which kind of answer it asks about."""
        return cls(
            owner_aware=False,
            voice=False,
            facts=False,
            kin=False,
            time_aware=False,
            answer_frame=False,
            informative=False,
            answer_kind=False,
        )


@dataclass(frozen=True)
class _Meta:
    author: str | None
    is_owner: bool
    ts: float | None


class Retriever:
    """Finds the memories that answer a query, within what a filter allows.

    `owner` names the owner (their names and aliases; the names their own messages carry are
    read from memory too); `clock` says when "last week" is. The profile's facts are read from
    the store as they are, cached until the next build.
    """

    def __init__(
        self,
        store: MemoryStore,
        config: RetrievalConfig | None = None,
        *,
        owner: OwnerIdentity | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.config = config or RetrievalConfig()
        self.owner = owner or OwnerIdentity()
        self.clock = clock
        self.facts = FactIndex(store)
        self.people = People(store, self.facts)
        # Query vectors by text: `prime` fills it in one batch for callers that know their
        # queries in advance (training data synthesis asks thousands).
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        # Who speaks, per filter, until memory changes; and a reader per set of names.
        self._lock = threading.Lock()
        self._names: dict[MemoryFilter, tuple[tuple[int, int], tuple[str, ...], tuple[str, ...]]]
        self._names = {}
        self._readers: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], QueryReader]
        self._readers = OrderedDict()

    def prime(
        self,
        queries: Iterable[str],
        flt: MemoryFilter | None = None,
        asker: AskedBy = AskedBy.OWNER,
    ) -> None:
        """Embed, in one batch, what `search` will embed for each of `queries`."""
        flt = flt or MemoryFilter()
        asked = [q for q in queries if q.strip()]
        self.embed_queries([*asked, *(self.plan(q, flt, asker).dense for q in asked)])

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
        self,
        query: str,
        k: int = 10,
        flt: MemoryFilter | None = None,
        mode: Mode = "hybrid",
        asker: AskedBy = AskedBy.OWNER,
    ) -> list[SearchHit]:
        """The `k` best memories for `query` among those `flt` lets through, asked by `asker`
        (which decides who "I", "you" and "she" are; `flt` alone decides what may be seen).

        `mode` "lexical" or "dense" runs one retriever alone on single memories (no context, no
        reading of the question): the baselines the hybrid is measured against.
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
            return self._hits(ranked[:k], {mid: 1.0 / (r + 1) for r, mid in enumerate(ranked)})

        plan = self.plan(query, flt, asker)
        lexical = self._lexical_ids(plan.lexical, n, flt)
        vector = self._embed(plan.dense)
        dense = self._dense_ids(vector, n, flt)
        from_facts = self._fact_memories(plan, flt)
        window = plan.time.window.padded() if plan.time.window else None
        in_window = self._window_ids(plan, vector, window, n, flt) if window else []
        candidates = list(dict.fromkeys([*lexical, *dense, *from_facts, *in_window]))
        if not candidates:
            return []
        context = self._context(candidates, flt)
        scored = list(
            dict.fromkeys([*candidates, *(i for ids, _ in context.values() for i in ids)])
        )
        lex_scores = self._bm25(plan.lexical, scored, flt)
        dense_scores = self._similarities(vector, scored)

        lex_ctx = {mid: self._with_context(mid, lex_scores, context) for mid in candidates}
        dense_ctx = {mid: self._with_context(mid, dense_scores, context) for mid in candidates}
        order = sorted(candidates, key=lambda mid: -(lex_ctx[mid] + dense_ctx[mid]))
        rankings = [
            sorted(candidates, key=lambda mid: -lex_ctx[mid]),
            sorted(candidates, key=lambda mid: -dense_ctx[mid]),
        ]
        meta = self._meta(candidates) if plan.names_people or window else {}
        weights = [1.0, 1.0]
        if plan.names_people and (subject := self._subject_ranking(order, plan, meta)):
            rankings.append(subject)
            weights.append(self.config.subject_weight)
        if from_facts:
            rankings.append(from_facts)
            weights.append(1.0)
        if window:
            rankings.append(
                [m for m in order if meta[m].ts is not None and _inside(window, meta[m].ts)]
            )
            weights.append(1.0)
        if self.config.answer_kind and plan.answer is not None:
            rankings.append(self._answer_ranking(order, plan))
            weights.append(1.0)
        fused: dict[str, float] = defaultdict(float)
        for ranking, weight in zip(rankings, weights, strict=True):
            for rank, mid in enumerate(ranking):
                fused[mid] += weight / (self.config.rrf_k + rank + 1)
        ranked = sorted(fused, key=lambda mid: -fused[mid])
        best = self._informative_first(ranked, plan, k) if self.config.informative else ranked[:k]
        return self._hits(
            best,
            fused,
            lex_rank={mid: r for r, mid in enumerate(lexical)},
            dense_rank={mid: r for r, mid in enumerate(dense)},
            fact_rank={mid: r for r, mid in enumerate(from_facts)},
            similarity=dense_scores,
        )

    def plan(self, query: str, flt: MemoryFilter, asker: AskedBy = AskedBy.OWNER) -> QueryPlan:
        """How `search` reads `query` for this filter and asker (what it matches, what it
        embeds, whose memories it ranks up), with the owner's kin resolved."""
        cfg = self.config
        speakers: tuple[str, ...] = ()
        owner_names: tuple[str, ...] = ()
        if cfg.speaker_aware:
            speakers, owner_authors = self._people(flt)
            if cfg.owner_aware:
                owner_names = (*self.owner.names, *owner_authors)
        reader = self._reader(owner_names, speakers)
        plan = reader.read(
            query,
            asker,
            self.clock.now(),
            answer_frame=cfg.answer_frame,
            times=cfg.time_aware,
        )
        if not cfg.owner_aware:
            plan = replace(plan, about_owner=False)
        if cfg.kin and plan.owner_kin:
            plan = self._with_relatives(plan, flt, list(speakers))
        if cfg.facts and plan.about_owner:
            plan = self._with_facts(plan, flt, list(speakers))
        if not cfg.voice:
            plan = replace(plan, dense=plan.lexical)
        return plan

    # -- the parts ---------------------------------------------------------------------------

    def _people(self, flt: MemoryFilter) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The authors `flt` lets the asker see, and those of them that are the owner."""
        stamp = self.store.stamp()
        with self._lock:
            cached = self._names.get(flt)
            if cached and cached[0] == stamp:
                return cached[1], cached[2]
        speakers = tuple(self.people.speakers(flt))
        owners = tuple(self.people.owner_authors(flt))
        with self._lock:
            if len(self._names) > 64:
                self._names.clear()
            self._names[flt] = (stamp, speakers, owners)
        return speakers, owners

    def _reader(self, owner_names: tuple[str, ...], speakers: tuple[str, ...]) -> QueryReader:
        key = (owner_names, speakers)
        with self._lock:
            reader = self._readers.get(key)
            if reader is None:
                reader = QueryReader(owner_names, speakers)
                self._readers[key] = reader
                while len(self._readers) > 16:
                    self._readers.popitem(last=False)
            return reader

    def _with_relatives(self, plan: QueryPlan, flt: MemoryFilter, speakers: list[str]) -> QueryPlan:
        """The plan with the owner's kin words resolved: their names join the matched text,
        those who speak join the speakers, and the facts that say who they are join the facts."""
        found: list[Relative] = []
        for word in plan.owner_kin:
            found.extend(self.people.relatives(word, flt, speakers))
        if not found:
            return plan
        names = [r.name for r in found if r.name.casefold() not in plan.lexical.casefold()]
        dense = plan.dense
        for word in plan.owner_kin:
            named = " ".join(r.name for r in found if r.name.casefold() not in dense.casefold())
            if named:
                pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
                dense = pattern.sub(lambda m, extra=named: f"{m.group(0)} {extra}", dense, count=1)
        authors = {r.author for r in found if r.author}
        return replace(
            plan,
            lexical=" ".join([plan.lexical, *names]),
            dense=dense,
            speakers=tuple(sorted({*plan.speakers, *authors})),
            relatives=tuple(found),
        )

    def _with_facts(self, plan: QueryPlan, flt: MemoryFilter, speakers: list[str]) -> QueryPlan:
        """The plan with the L1 facts a question about the owner matches; a fact that names
        someone ("my climbing partner is Tomás") adds them as a resolved kin word does."""
        matches = tuple(self.facts.match(plan.lexical, flt, self.config.fact_limit))
        people = [
            m.fact.value
            for m in matches
            if m.score >= PERSON_FACT_SCORE
            and fact_role(m.fact) is not None
            and m.fact.value[:1].isupper()
            and m.fact.value.casefold() not in plan.lexical.casefold()
        ]
        authors = {a for name in people if (a := author_named(name, speakers))}
        return replace(
            plan,
            facts=matches,
            lexical=" ".join([plan.lexical, *people]),
            speakers=tuple(sorted({*plan.speakers, *authors})),
        )

    def _fact_memories(self, plan: QueryPlan, flt: MemoryFilter) -> list[str]:
        """The memories behind the facts a question about the owner matches (and behind the
        facts that resolved its kin words), best fact first."""
        ids: list[str] = [m for r in plan.relatives for m in r.memory_ids]
        if self.config.facts:
            for match in plan.facts:
                ids.extend(match.fact.memory_ids)
        # `FactIndex` checked every fact's memories against `flt`; checked again here so that
        # this path can never return what the filter does not let through.
        allowed = self.store.allowed(ids, flt) if ids else set()
        return [m for m in dict.fromkeys(ids) if m in allowed]

    def _window_ids(
        self,
        plan: QueryPlan,
        vector: np.ndarray,
        window: TimeWindow,
        n: int,
        flt: MemoryFilter,
    ) -> list[str]:
        """Memories of the named time that match the question: lexically, and by meaning when
        the time holds few enough memories to compare them all."""
        narrowed = _narrowed(flt, window)
        if narrowed is None:
            return []
        found = self._lexical_ids(plan.lexical, n, narrowed)
        where, params = narrowed.sql("m")
        ids = [
            r[0]
            for r in self.store.conn.execute(
                f"SELECT m.id FROM memories m WHERE {where} LIMIT ?",
                [*params, self.config.window_scan + 1],
            )
        ]
        if ids and len(ids) <= self.config.window_scan:
            sims = self.store.vectors(ids) @ vector
            best = np.argsort(-sims)[:n]
            found.extend(ids[i] for i in best)
        return list(dict.fromkeys(found))

    def _answer_ranking(self, order: list[str], plan: QueryPlan) -> list[str]:
        """Among the best candidates, those that hold the kind of thing the question asks for
        (a date or time for "when", a name for "who", a number for "how many", a place for
        "where"), in combined-score order."""
        head = order[:ANSWER_KIND_DEPTH]
        texts = self._texts(head)
        asked = asked_words(plan.query)
        now = self.clock.now()
        kind = plan.answer
        return [m for m in head if holds_answer(kind, texts.get(m, ""), asked, now)]

    def _informative_first(self, ranked: list[str], plan: QueryPlan, k: int) -> list[str]:
        """The top `k` of `ranked`, with memories that say nothing the question does not
        ("InkSpot?" for "What is InkSpot?", "Team name?") after those that do: they match it
        well and cannot answer it."""
        head = ranked[: 2 * k]
        asked = {_stem(w) for w in content_words(f"{plan.query} {plan.dense} {plan.lexical}")}
        texts = self._texts(head)
        says = {
            mid: bool({_stem(w) for w in content_words(texts.get(mid, ""))} - asked) for mid in head
        }
        order = [m for m in head if says[m]] + [m for m in head if not says[m]] + ranked[2 * k :]
        return order[:k]

    def _texts(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" for _ in chunk)
            out.update(
                self.store.conn.execute(
                    f"SELECT id, text FROM memories WHERE id IN ({marks})", chunk
                ).fetchall()
            )
        return out

    def _meta(self, ids: Sequence[str]) -> dict[str, _Meta]:
        out: dict[str, _Meta] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" for _ in chunk)
            for mid, author, is_owner, ts in self.store.conn.execute(
                f"SELECT id, author, is_owner, ts FROM memories WHERE id IN ({marks})", chunk
            ):
                out[mid] = _Meta(author, bool(is_owner), ts)
        return out

    def _subject_ranking(
        self, order: list[str], plan: QueryPlan, meta: dict[str, _Meta]
    ) -> list[str]:
        """The memories of the people the question is about first (the owner's own messages
        and notes, a named speaker's messages), each group in combined-score order; empty when
        none of the candidates is theirs."""

        def theirs(mid: str) -> bool:
            m = meta.get(mid)
            if m is None:
                return False
            return (plan.about_owner and m.is_owner) or m.author in plan.speakers

        own = [mid for mid in order if theirs(mid)]
        return own + [mid for mid in order if not theirs(mid)] if own else []

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

    def _hits(
        self,
        ids: list[str],
        scores: dict[str, float],
        *,
        lex_rank: dict[str, int] | None = None,
        dense_rank: dict[str, int] | None = None,
        fact_rank: dict[str, int] | None = None,
        similarity: dict[str, float] | None = None,
    ) -> list[SearchHit]:
        return [
            SearchHit(
                memory=m,
                score=scores[m.id],
                lexical_rank=(lex_rank or {}).get(m.id),
                dense_rank=(dense_rank or {}).get(m.id),
                fact_rank=(fact_rank or {}).get(m.id),
                similarity=(similarity or {}).get(m.id),
            )
            for m in self.store.get_many(ids)
        ]


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


def _narrowed(flt: MemoryFilter, window: TimeWindow) -> MemoryFilter | None:
    """`flt` narrowed to `window` (never wider than either); None when they do not meet."""
    since = window.start if flt.since is None else max(flt.since, window.start)
    until = window.end if flt.until is None else min(flt.until, window.end)
    return replace(flt, since=since, until=until) if since < until else None


_PROPER_NAME = re.compile(r"(?<=[\w,;:)] )[A-ZÀ-Þ][\w'’-]+")
_NUMBER = re.compile(
    r"\d+|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"hundred|thousand|dozen|once|twice|half)\b",
    re.IGNORECASE,
)
_NOT_NAMES = frozenset(
    ["i", "i'm", "i've", "i'll", "i'd", *MONTHS, *WEEKDAYS, "ok", "okay", "omg", "lol"]
)


def asked_words(question: str) -> set[str]:
    """The words of `question`, case-folded: what `holds_answer` does not take for its answer."""
    return {w.casefold() for w in re.findall(r"\w+", question)}


def holds_answer(kind: AnswerKind | None, text: str, asked: set[str], now: datetime) -> bool:
    """Whether `text` holds something of the kind a question asks for (a number, name or
    place it does not already say, for "how many", "who" and "where")."""
    if kind == AnswerKind.DATE:
        return mentions_time(text, now)
    if kind == AnswerKind.NUMBER:
        return any(n.casefold() not in asked for n in _NUMBER.findall(text))
    if kind in (AnswerKind.PERSON, AnswerKind.PLACE):
        return any(
            w.casefold() not in asked and w.casefold() not in _NOT_NAMES
            for w in _PROPER_NAME.findall(text)
        )
    return False


def _stem(word: str) -> str:
    """A word without a plural or possessive "s", enough to tell "names" from "name"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _inside(window: TimeWindow, ts: float) -> bool:
    return window.contains(datetime.fromtimestamp(ts, tz=UTC))


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ":")


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
