"""Building L1 from L0: facts, topics per audience scope, bios. Full or incremental.

An incremental build only looks at memories no earlier build has processed: facts are extracted
from the owner's new memories and merged into the existing ones; new memories join the nearest
existing topic when they are close enough to its centre, and only the rest are clustered into
new topics; only topics whose membership changed enough (or that lost members) are named again;
a scope's bios are rewritten only when what they are written from changed. A full build
re-derives everything (facts keep their ids when they are found again).

Everything is worked out first and written in one transaction at the end: a failure, in a
language model or anywhere else, leaves the previous profile in place, with the failed build
recorded in `profile_builds`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace

import numpy as np

from core.clock import SYSTEM_CLOCK, Clock
from memory.models import Visibility
from memory.profile import db
from memory.profile.bio import (
    MAX_FACTS,
    MAX_TOPICS,
    STATUS_DAYS,
    TemplateBioWriter,
    bio_request,
)
from memory.profile.fact_patterns import PatternFactExtractor
from memory.profile.factbook import FactBook
from memory.profile.plan import BioPlan, BuildPlan, ScopePlan, TopicRecord
from memory.profile.records import (
    BioFact,
    BioRequest,
    BioTopic,
    BuildReport,
    FactDraft,
    Scope,
    ScopeStats,
    TopicCluster,
)
from memory.profile.sentences import topic_terms
from memory.profile.topics import (
    Background,
    KeywordTopicNamer,
    TopicConfig,
    TopicWords,
    assign,
    assign_threshold,
    centroid,
    class_keywords,
    cluster,
    nearest,
)
from memory.profile.writers import BioWriter, FactExtractor, TopicNamer
from memory.store import MemoryStore

BuildProgress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while a build runs."""

SAMPLE_CHARS = 300


@dataclass(frozen=True)
class ProfileConfig:
    topics: TopicConfig = field(default_factory=TopicConfig)
    status_days: int = STATUS_DAYS
    max_bio_facts: int = MAX_FACTS
    max_bio_topics: int = MAX_TOPICS
    scopes: tuple[Scope, ...] = (Scope.OWNER, Scope.FRIENDS, Scope.PUBLIC)


@dataclass
class _ScopeWork:
    """What planning one scope found, for its bios and its line in the report."""

    plan: ScopePlan
    rows: list[db.ScopeMemory]
    stats: ScopeStats


class ProfileBuilder:
    """Builds the L1 profile of one store. Writers default to the offline ones."""

    def __init__(
        self,
        store: MemoryStore,
        owner_name: str,
        *,
        namer: TopicNamer | None = None,
        extractor: FactExtractor | None = None,
        bio_writer: BioWriter | None = None,
        config: ProfileConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.owner_name = owner_name
        # "recent" in the status bio is relative to the clock's now
        self.clock = clock
        self.namer: TopicNamer = namer or KeywordTopicNamer()
        self.extractor: FactExtractor = extractor or PatternFactExtractor()
        self.bio_writer: BioWriter = bio_writer or TemplateBioWriter()
        self.config = config or ProfileConfig()

    @property
    def writers(self) -> dict[str, str]:
        return {
            "namer": self.namer.name,
            "extractor": self.extractor.name,
            "bio_writer": self.bio_writer.name,
        }

    def build(self, *, full: bool = False, progress: BuildProgress | None = None) -> BuildReport:
        """Bring L1 up to date with L0 (everything again with `full`). Raises whatever a writer
        raised, or `ProfileBuildConflict` when memories it used were forgotten meanwhile; the
        previous profile then stays as it was."""
        started = time.perf_counter()
        with self.store.transaction() as conn:
            build_id = db.start_build(
                conn, self.config.scopes, full, self.owner_name, self.writers, self._now()
            )
        try:
            timings: dict[str, float] = {}
            plan, work, fact_counts = self._plan(build_id, full, progress or _quiet, timings)
            tick = time.perf_counter()
            with self.store.transaction() as conn:
                db.apply(conn, plan, self._now())
                timings["write"] = time.perf_counter() - tick
                report = BuildReport(
                    build_id=build_id,
                    mode="full" if full else "incremental",
                    seconds=time.perf_counter() - started,
                    scopes=tuple(w.stats for w in work),
                    timings=timings,
                    **fact_counts,
                )
                db.finish_build(conn, build_id, report.to_json(), self._now())
            return report
        except BaseException as exc:
            # The error to report is `exc`; recording the failed build is best effort.
            with suppress(sqlite3.Error), self.store.transaction() as conn:
                db.fail_build(conn, build_id, f"{type(exc).__name__}: {exc}", self._now())
            raise

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # -- planning ---------------------------------------------------------------------------

    def _plan(
        self, build_id: int, full: bool, progress: BuildProgress, timings: dict[str, float]
    ) -> tuple[BuildPlan, list[_ScopeWork], dict[str, int]]:
        tick = time.perf_counter()
        book, fact_step, fact_processed, counts = self._plan_facts(full, progress)
        timings["facts"] = time.perf_counter() - tick
        work = []
        # The scopes overlap (friends' memories are the owner's too): read each memory's words
        # once per build.
        terms: dict[int, list[tuple[str, str]]] = {}
        for scope in self.config.scopes:
            tick = time.perf_counter()
            work.append(self._plan_topics(scope, full, progress, terms))
            timings[f"topics:{scope}"] = time.perf_counter() - tick
        tick = time.perf_counter()
        for i, item in enumerate(work):
            progress("bios", i, len(work))
            self._plan_bio(item, book, full)
        progress("bios", len(work), len(work))
        timings["bios"] = time.perf_counter() - tick
        plan = BuildPlan(
            build_id=build_id,
            full=full,
            fact_step=fact_step,
            fact_processed=fact_processed,
            facts=book,
            scopes=[w.plan for w in work],
        )
        return plan, work, counts

    def _plan_facts(
        self, full: bool, progress: BuildProgress
    ) -> tuple[FactBook, str, list[int], dict[str, int]]:
        conn = self.store.conn
        step = f"facts:{self.extractor.name}"
        done = set() if full else db.processed(conn, step)
        todo = [row for row in db.owner_memories(conn) if row[0] not in done]
        # Each batch holds memories of one visibility, so that a fact citing the wrong memory
        # of its batch still cannot end up visible to more people than its source was.
        batches: list[list[str]] = []
        for visibility in Visibility:
            ids = [mid for _, mid, vis in todo if vis == visibility]
            size = max(1, self.extractor.batch_size)
            batches.extend(ids[i : i + size] for i in range(0, len(ids), size))
        drafts: list[tuple[FactDraft, list[str]]] = []
        finished = 0
        for batch in batches:
            progress("facts", finished, len(todo))
            memories = self.store.get_many(batch)
            allowed = {m.id for m in memories}
            for draft in self.extractor.extract(memories, self.owner_name):
                cited = [mid for mid in dict.fromkeys(draft.support) if mid in allowed]
                if cited:
                    drafts.append((draft, cited))
            finished += len(batch)
        progress("facts", len(todo), len(todo))
        book = FactBook(db.load_facts(conn, with_support=not full))
        known = db.supports(conn, (mid for _, cited in drafts for mid in cited))
        for draft, cited in drafts:
            found = [known[mid] for mid in cited if mid in known]
            if found:
                book.add(draft, found, self.extractor.name)
        superseded = book.resolve()
        counts = {
            "fact_memories": len(todo),
            "fact_drafts": len(drafts),
            "facts_added": book.added,
            "facts_merged": book.merged,
            "facts_removed": len(book.dead),
            "facts_superseded": superseded,
            "facts_total": len(book.alive),
        }
        return book, step, [rowid for rowid, _, _ in todo], counts

    def _plan_topics(
        self,
        scope: Scope,
        full: bool,
        progress: BuildProgress,
        terms: dict[int, list[tuple[str, str]]],
    ) -> _ScopeWork:
        conn = self.store.conn
        cfg = self.config.topics
        stage = f"topics:{scope}"
        progress(stage, 0, 3)
        rows = db.scope_memories(conn, scope)
        by_rowid = {r.rowid: r for r in rows}
        step = f"topics:{scope}"
        done = set() if full else db.processed(conn, step)
        topics = [] if full else db.load_topics(conn, scope)
        new_rows = [r for r in rows if r.rowid not in done]

        def terms_of(rowid: int) -> list[tuple[str, str]]:
            if rowid not in terms:
                terms[rowid] = topic_terms(by_rowid[rowid].text)
            return terms[rowid]

        # Too few content words ("haha yes!") and a memory says nothing a topic could be about.
        candidates = [
            r.rowid
            for r in new_rows
            if sum(" " not in key for key, _ in terms_of(r.rowid)) >= cfg.min_words
        ]
        vecs, has = db.vectors(conn, candidates)
        candidates = [rowid for rowid, ok in zip(candidates, has, strict=True) if ok]
        vecs = vecs[has]

        if topics and len(candidates) and topics[0].centroid.shape[0] != vecs.shape[1]:
            raise ValueError(
                f"the {scope} topics were built with embeddings of another size than the stored "
                "ones (the embedding model changed); run a full build"
            )
        assigned = 0
        leftover = list(range(len(candidates)))
        if topics and candidates:
            centres = np.stack([t.centroid for t in topics])
            thresholds = np.array([t.threshold for t in topics])
            best, _ = assign(vecs, centres, thresholds)
            leftover = []
            for i, topic_index in enumerate(best):
                if topic_index >= 0:
                    topics[topic_index].new_members.append(candidates[i])
                    assigned += 1
                else:
                    leftover.append(i)
        progress(stage, 1, 3)
        new_topics = []
        if leftover:
            for group in cluster(vecs[leftover], cfg):
                members = [candidates[leftover[i]] for i in group]
                new_topics.append(
                    TopicRecord(
                        id=None,
                        scope=scope,
                        members=[],
                        new_members=members,
                        centroid=np.zeros(0, dtype=np.float32),
                        threshold=0.0,
                        labelled_size=0,
                        relabel=True,
                    )
                )
        for topic in topics:
            grown = len(topic.new_members) > 0 and len(topic.new_members) >= max(
                1.0, cfg.relabel_growth * topic.labelled_size
            )
            topic.relabel = topic.stale or grown
        relabelled = sum(t.relabel for t in topics)
        everything = [*topics, *new_topics]
        progress(stage, 2, 3)
        self._label(scope, everything, rows, terms_of)
        progress(stage, 3, 3)
        stats = ScopeStats(
            scope=scope,
            memories=len(rows),
            new_memories=len(new_rows),
            assigned=assigned,
            new_topics=len(new_topics),
            relabelled=relabelled,
            topics=len(everything),
            bios_rebuilt=False,
        )
        plan = ScopePlan(
            scope=scope, step=step, topics=everything, processed=[r.rowid for r in new_rows]
        )
        return _ScopeWork(plan=plan, rows=rows, stats=stats)

    def _label(
        self,
        scope: Scope,
        topics: list[TopicRecord],
        rows: list[db.ScopeMemory],
        terms_of: Callable[[int], list[tuple[str, str]]],
    ) -> None:
        """Recompute centre, threshold and keywords of the topics marked for relabelling, and
        name them."""
        changed = [i for i, t in enumerate(topics) if t.relabel]
        if not changed:
            return
        cfg = self.config.topics
        text_of = {r.rowid: r.text for r in rows}
        keywords = self._keywords(topics, changed, rows, terms_of)
        clusters = []
        for i in changed:
            topic = topics[i]
            members = topic.all_members
            vecs, has = db.vectors(self.store.conn, members)
            vecs = vecs[has]
            topic.centroid = centroid(vecs)
            topic.threshold = assign_threshold(vecs, topic.centroid, cfg)
            topic.labelled_size = len(members)
            topic.keywords = keywords[i]
            kept = [m for m, ok in zip(members, has, strict=True) if ok]
            nearest_members = nearest(vecs, topic.centroid, cfg.samples)
            samples = [text_of[kept[j]][:SAMPLE_CHARS] for j in nearest_members]
            clusters.append(TopicCluster(scope, topic.keywords, tuple(samples), len(members)))
        names = self.namer.name_topics(clusters)
        if len(names) != len(clusters):
            raise ValueError(f"{self.namer.name} named {len(names)} of {len(clusters)} topics")
        for i, name in zip(changed, names, strict=True):
            topics[i].label = name.label
            topics[i].description = name.description
            topics[i].namer = self.namer.name

    def _keywords(
        self,
        topics: list[TopicRecord],
        changed: list[int],
        rows: list[db.ScopeMemory],
        terms_of: Callable[[int], list[tuple[str, str]]],
    ) -> dict[int, tuple[str, ...]]:
        """c-TF-IDF keywords of the `changed` topics (by index into `topics`)."""
        cfg = self.config.topics
        if len(changed) < len(topics) and len(rows) > cfg.background_sample:
            # A few topics renamed in a big scope: count their own words exactly, and estimate
            # how common words are from an evenly spread, fixed sample of the scope.
            step = len(rows) / cfg.background_sample
            sample = [rows[int(i * step)] for i in range(cfg.background_sample)]
            counts = Counter(key for r in sample for key, _ in terms_of(r.rowid))
            background = Background(counts, len(rows) / len(sample), len(topics) + 1)
            classes = [TopicWords([terms_of(m) for m in topics[i].all_members]) for i in changed]
            found = class_keywords(classes, range(len(changed)), cfg.keywords, background)
            return {i: found[pos] for pos, i in enumerate(changed)}
        in_topic = {rowid for t in topics for rowid in t.all_members}
        rest = [r.rowid for r in rows if r.rowid not in in_topic]
        classes = [TopicWords([terms_of(m) for m in t.all_members]) for t in topics]
        classes.append(TopicWords([terms_of(m) for m in rest]))
        return class_keywords(classes, changed, cfg.keywords)

    def _plan_bio(self, work: _ScopeWork, book: FactBook, full: bool) -> None:
        scope = work.plan.scope
        facts = [r for r in book.alive if r.status == "active" and scope.may_see(r.visibility)]
        ts_of = {r.rowid: r.ts for r in work.rows}
        now = self.clock.now()
        since_ts = now.timestamp() - self.config.status_days * 86400
        bio_facts = [
            BioFact(i, r.statement, r.first_person, r.attribute, r.value, db.to_datetime(r.newest))
            for i, r in enumerate(facts)
        ]
        bio_topics = []
        for i, t in enumerate(work.plan.topics):
            stamps = [ts_of[m] for m in t.all_members if m in ts_of]
            recent = sum(1 for s in stamps if s >= since_ts)
            bio_topics.append(
                BioTopic(
                    key=i,
                    label=t.label,
                    keywords=t.keywords,
                    description=t.description,
                    size=len(stamps),
                    first=db.to_datetime(min(stamps, default=None)),
                    last=db.to_datetime(max(stamps, default=None)),
                    recent_size=recent,
                )
            )
        request = bio_request(
            self.owner_name,
            scope,
            bio_facts,
            bio_topics,
            now,
            status_days=self.config.status_days,
            max_facts=self.config.max_bio_facts,
            max_topics=self.config.max_bio_topics,
        )
        digest = inputs_hash(request, self.bio_writer.name)
        stored = db.stored_bios(self.store.conn, scope)
        current = len(stored) == 4 and all(b.inputs_hash == digest and not b.stale for b in stored)
        if current and not full:
            return
        texts = self.bio_writer.write(request)
        cited = set(texts.cited)
        used_facts = [facts[f.key] for f in request.facts]
        topic_keys = {t.key for t in (*request.topics, *request.recent_topics)}
        work.plan.bio = BioPlan(
            scope=scope,
            texts=texts,
            writer=self.bio_writer.name,
            inputs_hash=digest,
            facts=used_facts,
            cited=[f.key in cited for f in request.facts],
            topics=[work.plan.topics[k] for k in sorted(topic_keys)],
        )
        work.stats = replace(work.stats, bios_rebuilt=True)


def inputs_hash(request: BioRequest, writer: str) -> str:
    """A fingerprint of what a scope's bios are written from: same inputs, same bios."""
    payload = {
        "writer": writer,
        "owner": request.owner_name,
        "now": request.now.date().isoformat() if request.now else None,
        "facts": [_fact_key(f) for f in request.facts],
        "recent_facts": [_fact_key(f) for f in request.recent_facts],
        "topics": [_topic_key(t) for t in request.topics],
        "recent_topics": [_topic_key(t) for t in request.recent_topics],
    }
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def _fact_key(fact: BioFact) -> list[str]:
    return [fact.statement, fact.first_person, fact.attribute, fact.value]


def _topic_key(topic: BioTopic) -> list[str]:
    return [topic.label, topic.description, *topic.keywords]


def _quiet(stage: str, done: int, total: int) -> None:
    """The progress callback when nobody is watching."""
