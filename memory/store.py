"""L0 memory: SQLite as the source of truth, with a Chroma index kept in step with it.

An import runs in phases, and only one of them holds SQLite's write lock. It decides what is new
(a read), embeds the new texts (no lock held: embedding is the slow part), then writes everything
in one short transaction that decides again against what other writers did meanwhile: a memory
another writer added is not added twice, one forgotten meanwhile does not come back. So a source's
new memories are all stored or none are. Only then is the vector index brought in step, in short
write transactions of its own (see `memory.index_sync` for why a crash at any point is repaired
from the stored vectors the next time the store opens).

Re-importing is idempotent: a memory is identified by its source and its source-native id, and
forgotten memories leave a tombstone that blocks them from coming back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import numpy as np

from core.clock import SYSTEM_CLOCK, Clock
from core.progress import Progress
from memory import index_sync
from memory.embed import Embedder
from memory.index import VectorIndex
from memory.index_sync import IndexHealth
from memory.migrations import migrate
from memory.models import (
    Kind,
    Memory,
    MemoryDraft,
    OwnerIdentity,
    ParsedSource,
    SourceRef,
    Visibility,
)
from memory.write_lock import (
    DEFAULT_WRITE_WAIT,
    QUIET_WAIT,
    StoreBusyError,
    begin_write,
    busy_error,
    is_busy,
)

log = logging.getLogger(__name__)

"""Called as progress(done, total) while long work runs."""

INDEX_BATCH = 1024
"""Index entries written per transaction: about a second of Chroma work, so that another writer
(a `remember` during a large import) never waits long for its turn."""


class WritePhase(StrEnum):
    """The steps of a write, in order (a forget skips the first two).

    `MemoryStore.on_phase`, when set, is called as each is reached. It exists for tests, which
    kill a process at one of them to check that a crash anywhere leaves a store that agrees with
    itself once it is opened again.
    """

    PLANNED = "planned"  # what is new is decided: a read, nothing held
    EMBEDDED = "embedded"  # the new memories have vectors; nothing is written yet
    WRITTEN = "written"  # rows are written in the open transaction, not committed
    COMMITTED = "committed"  # the rows are in SQLite; the vector index lacks them
    INDEXED = "indexed"  # Chroma has a batch; SQLite does not record it yet


@dataclass(frozen=True)
class IngestReport:
    source_key: str
    run_id: int
    added: int
    unchanged: int
    removed: int
    blocked: int
    added_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """What an import would change, as decided against the database at one moment."""

    new: list[MemoryDraft]
    unchanged: int
    blocked: int
    gone: list[str]  # source ids that a replacing import drops


@dataclass(frozen=True)
class MemoryFilter:
    """Restricts which memories a read may see. Empty fields do not restrict.

    Visibility works in two parts. `visibilities` are the levels the asker may see. A memory
    shared with one principal (a friend's own conversation with the twin) is seen by everyone
    when `see_all_shared` is set (the owner), and otherwise only by that `principal`.
    """

    visibilities: tuple[Visibility, ...] = (
        Visibility.PRIVATE,
        Visibility.FRIENDS,
        Visibility.PUBLIC,
    )
    principal: str | None = None
    see_all_shared: bool = True
    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    thread: str | None = None

    @property
    def is_everything(self) -> bool:
        """True when the filter lets every memory through (the owner, with no narrowing)."""
        return (
            set(self.visibilities) == set(Visibility)
            and self.see_all_shared
            and self.since is None
            and self.until is None
            and not self.sources
            and not self.speakers
            and self.thread is None
        )

    def sql(self, alias: str = "m") -> tuple[str, list[Any]]:
        """A WHERE clause (without the keyword) and its parameters."""
        a = alias
        marks = ",".join("?" for _ in self.visibilities)
        params: list[Any] = [str(v) for v in self.visibilities]
        if self.see_all_shared:
            clauses = [f"{a}.visibility IN ({marks})"]
        else:
            clause = f"({a}.shared_with IS NULL AND {a}.visibility IN ({marks}))"
            if self.principal:
                clause = f"({clause} OR {a}.shared_with = ?)"
                params.append(self.principal)
            clauses = [clause]
        if self.since is not None:
            clauses.append(f"{a}.ts >= ?")
            params.append(_epoch(self.since))
        if self.until is not None:
            clauses.append(f"{a}.ts < ?")
            params.append(_epoch(self.until))
        if self.sources:
            ors = " OR ".join(f"{a}.source_key = ? OR {a}.source_key LIKE ?" for _ in self.sources)
            clauses.append(f"({ors})")
            for src in self.sources:
                params.extend([src, f"{src}:%"])
        if self.speakers:
            ors = " OR ".join(
                f"lower({a}.author) = lower(?) OR {a}.author_id = ?" for _ in self.speakers
            )
            clauses.append(f"({ors})")
            for speaker in self.speakers:
                params.extend([speaker, speaker])
        if self.thread is not None:
            clauses.append(f"{a}.thread = ?")
            params.append(self.thread)
        return " AND ".join(clauses), params


class MemoryStore:
    """The L0 memory of one twin.

    The store is safe to share between threads and between processes (the CLI, the MCP server,
    the bots and a training run share one home). SQLite runs in WAL mode, so readers never wait;
    writers take turns, each holding the write lock only briefly, and wait up to `write_wait`
    seconds for it (saying so) before giving up with `StoreBusyError`.
    """

    def __init__(
        self,
        db_path: Path,
        index: VectorIndex,
        embedder: Embedder,
        *,
        clock: Clock = SYSTEM_CLOCK,
        write_wait: float = DEFAULT_WRITE_WAIT,
    ) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self.embedder = embedder
        self.clock = clock
        self.write_wait = write_wait
        self.on_phase: Callable[[WritePhase], None] | None = None
        self._index = index
        self._lock = threading.RLock()
        self._source_names: dict[str, str] = {}
        self._conn = sqlite3.connect(
            db_path, check_same_thread=False, isolation_level=None, timeout=write_wait
        )
        self._conn.row_factory = sqlite3.Row
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> None:
        """Bring the schema up to date and check the index (see `open`)."""
        # Switching a new database to WAL needs a moment of exclusive access, and SQLite
        # answers "busy" at once rather than calling its busy handler: wait here instead.
        deadline = time.monotonic() + self.write_wait
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                if time.monotonic() > deadline:
                    raise busy_error(self.db_path, self.write_wait) from exc
                time.sleep(0.05)
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            migrate(
                self._conn, begin=lambda: begin_write(self._conn, self.db_path, self.write_wait)
            )
        if self._index.needs_setup:  # a new home: two `twin ingest` may be starting at once
            with self._write() as conn:
                self._index.sync_to(index_sync.generation(conn))
                self._index.set_up()
        self._check_index()

    @classmethod
    def open(
        cls,
        directory: Path,
        embedder: Embedder,
        *,
        clock: Clock = SYSTEM_CLOCK,
        write_wait: float = DEFAULT_WRITE_WAIT,
    ) -> MemoryStore:
        """Open (creating if needed) the store kept in `directory`: memory.sqlite and chroma/.

        Opening checks that the vector index agrees with the database and repairs it from the
        stored vectors when a crash left them apart (see `repair_index`)."""
        return cls(
            directory / "memory.sqlite",
            VectorIndex(directory / "chroma", embedder.name),
            embedder,
            clock=clock,
            write_wait=write_wait,
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._index.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The SQLite connection, for layers built on L0 (L1 lives in the same database)."""
        return self._conn

    @property
    def index(self) -> VectorIndex:
        """The vector index, reloaded first if another process has written to it since."""
        self._index.sync_to(index_sync.generation(self._conn))
        return self._index

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Waits its turn behind other writers (up to `write_wait` seconds, then `StoreBusyError`);
        keep the block short, since every other writer waits for it."""
        with self._write() as conn:
            yield conn

    @contextmanager
    def _write(self, wait: float | None = None) -> Iterator[sqlite3.Connection]:
        with self._lock:
            begin_write(self._conn, self.db_path, self.write_wait if wait is None else wait)
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _phase(self, phase: WritePhase) -> None:
        if self.on_phase is not None:
            self.on_phase(phase)

    # -- writing ----------------------------------------------------------------------------

    def ingest(
        self,
        parsed: ParsedSource,
        *,
        owner: OwnerIdentity | None = None,
        visibility: Visibility = Visibility.PRIVATE,
        cap: Visibility | None = None,
        fmt: str = "",
        progress: Progress | None = None,
        block_forgotten_text: bool = True,
    ) -> IngestReport:
        """Store what an importer parsed; only memories not seen before are added.

        `visibility` applies to memories that do not carry their own (a note whose front matter
        says `visibility: friends` keeps that). `cap`, when given, is the widest any memory of
        this import may be: a memory's own visibility can narrow it, never widen it.

        A forgotten memory never comes back under its own id; with `block_forgotten_text`, its
        text does not come back from another export either (when the text is distinctive: a
        forgotten "ok" must not block every later "ok").
        """
        started = self._now()
        source = parsed.source
        try:
            plan = self._plan(self._conn, parsed, block_forgotten_text)
            self._phase(WritePhase.PLANNED)
            vectors = self._embed(plan.new, progress)
            self._phase(WritePhase.EMBEDDED)
            with self.transaction() as conn:
                # Decide again: another writer may have added or forgotten some of these since.
                plan = self._plan(conn, parsed, block_forgotten_text)
                late = [d for d in plan.new if d.source_id not in vectors]
                vectors.update(self._embed(late, None))  # rare: the other writer removed them
                run_id = self._start_run(conn, source, fmt, started)
                self._upsert_source(conn, source, started)
                removed = self._delete_by_source_ids(conn, source.key, plan.gone)
                ids = self._insert(
                    conn,
                    run_id,
                    source.key,
                    plan.new,
                    vectors,
                    owner or OwnerIdentity(),
                    visibility,
                    cap,
                )
                report = IngestReport(
                    source_key=source.key,
                    run_id=run_id,
                    added=len(ids),
                    unchanged=plan.unchanged,
                    removed=len(removed),
                    blocked=plan.blocked,
                    added_ids=ids,
                )
                self._finish_run(conn, report)
                self._phase(WritePhase.WRITTEN)
            self._phase(WritePhase.COMMITTED)
        except Exception as exc:
            self._record_failed_run(source, fmt, started, exc)
            raise
        self._bring_index_in_step(ids, removed)
        return report

    def add(
        self,
        text: str,
        *,
        source: SourceRef,
        kind: Kind = Kind.NOTE,
        author: str | None = None,
        author_id: str | None = None,
        is_owner: bool = True,
        visibility: Visibility = Visibility.PRIVATE,
        shared_with: str | None = None,
        thread: str | None = None,
        reply_to: str | None = None,
        timestamp: datetime | None = None,
        source_id: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> Memory | None:
        """Add one memory (a `remember` call, a bot message). Returns None if it already exists
        or was forgotten before. `timestamp` defaults to the store clock's now."""
        if not text.strip():
            raise ValueError("a memory needs some text")
        when = timestamp or self.clock.now()
        draft = MemoryDraft(
            text=text,
            kind=kind,
            source_id=source_id
            or hashlib.sha256(f"{when.isoformat()}\0{text}".encode()).hexdigest()[:24],
            author=author,
            author_id=author_id,
            timestamp=when,
            thread=thread,
            reply_to=reply_to,
            visibility=visibility,
            shared_with=shared_with,
            is_owner=is_owner,
            meta=meta or {},
        )
        # Someone saying it again is new, even if an earlier copy was forgotten.
        report = self.ingest(
            ParsedSource(source=source, drafts=[draft]),
            visibility=visibility,
            fmt="api",
            block_forgotten_text=False,
        )
        return self.get(report.added_ids[0]) if report.added_ids else None

    def forget(self, ids: Iterable[str], reason: str = "") -> list[str]:
        """Delete memories everywhere (SQLite, full-text index, vectors) and leave tombstones so
        that no later import brings them back. Returns the ids that were forgotten."""
        wanted = list(dict.fromkeys(ids))
        with self.transaction() as conn:
            memories = self._fetch(conn, wanted)
            now = self._now()
            conn.executemany(
                "INSERT INTO tombstones (memory_id, source_key, source_id, content_hash,"
                " forgotten_at, reason) VALUES (?,?,?,?,?,?)",
                [(m.id, m.source_key, m.source_id, m.content_hash, now, reason) for m in memories],
            )
            gone = [m.id for m in memories]
            conn.executemany("DELETE FROM memories WHERE id = ?", [(i,) for i in gone])
            index_sync.record_removals(conn, gone)
            self._phase(WritePhase.WRITTEN)
        self._phase(WritePhase.COMMITTED)
        self._bring_index_in_step([], gone)
        return gone

    def reindex(self, *, re_embed: bool = False, progress: Progress | None = None) -> int:
        """Rebuild the vector index from SQLite. Stored vectors are reused unless `re_embed` is
        set or they came from another embedding model. Returns the number of memories indexed.

        Embedding happens with no lock held; the index is then emptied and refilled from the
        stored vectors in short transactions (a crash half-way is finished on the next open)."""
        model = self.embedder.name
        if re_embed:
            todo = [r[0] for r in self._conn.execute("SELECT id FROM memories")]
        else:
            todo = [
                r[0]
                for r in self._conn.execute(
                    "SELECT m.id FROM memories m LEFT JOIN embeddings e"
                    " ON e.memory_rowid = m.rowid AND e.model = ? WHERE e.memory_rowid IS NULL",
                    (model,),
                )
            ]
        memories = self.get_many(todo)
        vectors = self._embed(memories, progress)
        self._phase(WritePhase.EMBEDDED)
        with self.transaction() as conn:
            conn.execute("DELETE FROM embeddings WHERE model != ?", (model,))
            # memories forgotten meanwhile are left out; ones added meanwhile came with vectors
            index_sync.store_vectors(conn, model, [(m.id, vectors[m.id]) for m in memories])
            self._index.sync_to(index_sync.generation(conn))
            try:
                self._index.reset()
            except BaseException:
                self._index.invalidate()
                raise
            conn.execute("UPDATE embeddings SET indexed = 0")
            conn.execute("DELETE FROM index_removals")
            generation = index_sync.bump_generation(conn)
            self._phase(WritePhase.WRITTEN)
        self._index.written(generation)
        self._phase(WritePhase.COMMITTED)
        total = self._conn.execute(
            "SELECT count(*) FROM embeddings WHERE model = ?", (model,)
        ).fetchone()[0]
        done = 0
        while step := self._index_batch(None, None):
            done += step
            if progress is not None:
                progress(done, total)
        return self.index_health().indexed

    # -- keeping the vector index in step ---------------------------------------------------

    def index_health(self) -> IndexHealth:
        """How far the vector index agrees with the database (from counts: cheap)."""
        in_index = self.index.count()
        return index_sync.counts(self._conn, self.embedder.name, in_index)

    def repair_index(self, *, wait: float | None = None) -> IndexHealth:
        """Bring the vector index in step with the database from the stored vectors: index what
        waits to be indexed, remove what was forgotten, and, when the counts still disagree (an
        index changed behind the store's back, or a crash in an older version of twin), compare
        ids and fix the difference. Memories without a stored vector of the current model need
        `reindex` (which embeds). `wait` is how long each step waits for the write lock."""
        before = self.index_health()
        while self._index_batch(None, None, wait):
            pass
        settled = self.index_health()
        if settled.in_index != settled.indexed:
            self._reconcile(wait)
            while self._index_batch(None, None, wait):
                pass
        after = self.index_health()
        if before.describe() != after.describe():
            log.warning(
                "the vector index of %s was out of step with the database (%s); repaired from"
                " the stored vectors",
                self.db_path,
                before.describe(),
            )
        return after

    def _check_index(self) -> None:
        """On open: repair the index if a crash left it out of step, unless another process is
        writing right now (it brings its own writes in step; leftovers wait for the next open)."""
        health = self.index_health()
        if health.in_step:
            return
        if health.to_index or health.to_remove or health.in_index != health.indexed:
            try:
                health = self.repair_index(wait=0.0)
            except StoreBusyError:
                log.debug("another writer is at work; the index check waits for the next open")
                return
            except Exception as exc:
                log.warning(
                    "the vector index of %s is out of step with the database (%s) and could not"
                    " be repaired (%s: %s): run `twin memory reindex`",
                    self.db_path,
                    health.describe(),
                    type(exc).__name__,
                    exc,
                )
                return
        if health.without_vector:
            log.warning(
                "%d memories in %s have no vector of %s (was the embedding model changed?);"
                " semantic search misses them until `twin memory reindex`",
                health.without_vector,
                self.db_path,
                self.embedder.name,
            )

    def _bring_index_in_step(self, added: list[str], removed: list[str]) -> None:
        """Index what this process just committed, batch by batch. SQLite already holds it: if
        the index cannot take it now, say so; the next open repairs it."""
        try:
            for batch in _chunks(removed, INDEX_BATCH):
                self._index_batch([], batch)
            for batch in _chunks(added, INDEX_BATCH):
                self._index_batch(batch, [])
        except Exception as exc:
            log.warning(
                "the vector index of %s could not be updated (%s: %s). The memories are saved;"
                " semantic search misses the change until the index is repaired, which happens"
                " when the store next opens (or run `twin memory reindex`)",
                self.db_path,
                type(exc).__name__,
                exc,
            )

    def _index_batch(
        self, ids: list[str] | None, removals: list[str] | None, wait: float | None = None
    ) -> int:
        """One short write that brings a batch of the index in step: removes the waiting
        removals of `removals` and indexes the waiting vectors of `ids` (None: whatever waits).
        Returns how many entries it changed."""
        with self._write(wait) as conn:
            self._index.sync_to(index_sync.generation(conn))
            gone = index_sync.waiting_removals(conn, removals, INDEX_BATCH)
            rows = index_sync.waiting_rows(conn, self.embedder.name, ids, INDEX_BATCH)
            if not gone and not rows:
                return 0
            try:
                if gone:
                    self._index.delete(gone)
                if rows:
                    self._index.upsert([index_sync.entry(row) for row in rows])
                self._phase(WritePhase.INDEXED)
                index_sync.clear_removals(conn, gone)
                index_sync.mark_indexed(conn, [row["rowid"] for row in rows])
                generation = index_sync.bump_generation(conn)
            except BaseException:
                self._index.invalidate()  # Chroma may hold part of the batch: reload next time
                raise
        self._index.written(generation)
        return len(gone) + len(rows)

    def _reconcile(self, wait: float | None) -> None:
        """Compare the index's ids with the database's: remove entries with no memory behind
        them, and queue memories the index lacks to be indexed again."""
        with self._write(wait) as conn:
            self._index.sync_to(index_sync.generation(conn))
            extra, lacking = index_sync.differences(conn, self.embedder.name, self._index.all_ids())
            if not extra and not lacking:
                return
            try:
                self._index.delete(extra)
                index_sync.requeue(conn, lacking)
                generation = index_sync.bump_generation(conn)
            except BaseException:
                self._index.invalidate()
                raise
        self._index.written(generation)

    # -- writing: internals -----------------------------------------------------------------

    def _plan(
        self, conn: sqlite3.Connection, parsed: ParsedSource, block_forgotten_text: bool
    ) -> _Plan:
        """Which of an import's drafts are new, unchanged or blocked by a tombstone."""
        source_key = parsed.source.key
        drafts: list[MemoryDraft] = []
        seen: set[str] = set()
        for draft in parsed.drafts:
            if draft.source_id not in seen:  # an export may repeat a message (a forward twice)
                seen.add(draft.source_id)
                drafts.append(draft)
        existing = self._existing_source_ids(
            conn, source_key, None if parsed.replaces_missing else [d.source_id for d in drafts]
        )
        blocked_ids = {
            row[0]
            for row in conn.execute(
                "SELECT source_id FROM tombstones WHERE source_key = ?", (source_key,)
            )
        }
        new: list[MemoryDraft] = []
        unchanged = blocked = 0
        for draft in drafts:
            text_blocked = (
                block_forgotten_text
                and is_distinctive(draft.text)
                and self._hash_forgotten(conn, draft.hash)
            )
            if draft.source_id in blocked_ids or text_blocked:
                blocked += 1
            elif draft.source_id in existing:
                unchanged += 1
            else:
                new.append(draft)
        gone = [sid for sid in existing if sid not in seen] if parsed.replaces_missing else []
        return _Plan(new=new, unchanged=unchanged, blocked=blocked, gone=gone)

    @staticmethod
    def _existing_source_ids(
        conn: sqlite3.Connection, source_key: str, source_ids: list[str] | None
    ) -> set[str]:
        """The source ids stored for a source: all of them, or those of `source_ids`."""
        if source_ids is None:
            rows = conn.execute(
                "SELECT source_id FROM memories WHERE source_key = ?", (source_key,)
            )
            return {r[0] for r in rows}
        found: set[str] = set()
        for chunk in _chunks(source_ids, 900):
            marks = ",".join("?" for _ in chunk)
            rows = conn.execute(
                f"SELECT source_id FROM memories WHERE source_key = ? AND source_id IN ({marks})",
                [source_key, *chunk],
            )
            found.update(r[0] for r in rows)
        return found

    def _embed(
        self, items: list[MemoryDraft] | list[Memory], progress: Progress | None
    ) -> dict[str, np.ndarray]:
        """Vectors for drafts (by source id) or memories (by memory id), computed once."""
        if not items:
            return {}
        total = len(items)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        vectors = self.embedder.embed([embedding_text(i) for i in items], progress=step)
        keys = [i.id if isinstance(i, Memory) else i.source_id for i in items]
        return dict(zip(keys, vectors, strict=True))

    def _insert(
        self,
        conn: sqlite3.Connection,
        run_id: int,
        source_key: str,
        drafts: list[MemoryDraft],
        vectors: dict[str, np.ndarray],
        owner: OwnerIdentity,
        visibility: Visibility,
        cap: Visibility | None,
    ) -> list[str]:
        """Insert new memories with their vectors (waiting to be indexed); returns their ids."""
        now = self._now()
        rows = []
        for draft in drafts:
            vis = draft.visibility or visibility
            if cap is not None:
                vis = Visibility.narrowest([vis, cap])
            is_owner = (
                draft.is_owner
                if draft.is_owner is not None
                else owner.matches(draft.author, draft.author_id)
            )
            rows.append(
                (
                    memory_id(source_key, draft.source_id),
                    source_key,
                    draft.source_id,
                    str(draft.kind),
                    draft.text,
                    draft.author,
                    draft.author_id,
                    int(is_owner),
                    _epoch(draft.timestamp) if draft.timestamp else None,
                    draft.thread,
                    draft.reply_to,
                    str(vis),
                    draft.shared_with,
                    draft.hash,
                    json.dumps(draft.meta, ensure_ascii=False, sort_keys=True),
                    now,
                    run_id,
                )
            )
        conn.executemany(
            "INSERT INTO memories (id, source_key, source_id, kind, text, author, author_id,"
            " is_owner, ts, thread, reply_to, visibility, shared_with, content_hash, meta,"
            " created_at, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        index_sync.store_vectors(conn, self.embedder.name, [(r[0], vectors[r[2]]) for r in rows])
        return [r[0] for r in rows]

    def _delete_by_source_ids(
        self, conn: sqlite3.Connection, source_key: str, source_ids: list[str]
    ) -> list[str]:
        """Remove memories replaced by a newer version of their document (no tombstone)."""
        ids = [memory_id(source_key, sid) for sid in source_ids]
        conn.executemany("DELETE FROM memories WHERE id = ?", [(i,) for i in ids])
        index_sync.record_removals(conn, ids)
        return ids

    # -- reading ----------------------------------------------------------------------------

    def get(self, memory_id: str) -> Memory | None:
        found = self._fetch(self._conn, [memory_id])
        return found[0] if found else None

    def get_many(self, ids: list[str]) -> list[Memory]:
        """Memories by id, in the order given; ids that do not exist are left out."""
        return self._fetch(self._conn, ids)

    def count(self, flt: MemoryFilter | None = None) -> int:
        where, params = (flt or MemoryFilter()).sql()
        return self._conn.execute(
            f"SELECT count(*) FROM memories m WHERE {where}", params
        ).fetchone()[0]

    def changes_since(self, since: datetime) -> tuple[int, int]:
        """How many memories were added, and how many forgotten, after `since`."""
        at = since.timestamp()
        added = self._conn.execute("SELECT count(*) FROM memories WHERE created_at > ?", (at,))
        forgotten = self._conn.execute(
            "SELECT count(*) FROM tombstones WHERE forgotten_at > ?", (at,)
        )
        return added.fetchone()[0], forgotten.fetchone()[0]

    def stamp(self, *, conversations: bool = True) -> tuple[int, int]:
        """A cheap mark that changes whenever memories are added or removed (their count and
        the last row id), to know when something derived from them is stale; without
        `conversations`, memories shared with one person only (talks with the twin) do not
        count."""
        where = "" if conversations else " WHERE shared_with IS NULL"
        row = self._conn.execute(
            f"SELECT count(*), coalesce(max(rowid), 0) FROM memories{where}"
        ).fetchone()
        return row[0], row[1]

    def iter_memories(self, flt: MemoryFilter | None = None, order: str = "ts") -> Iterator[Memory]:
        """Every memory that passes `flt`, oldest first (or by insertion with order='rowid')."""
        where, params = (flt or MemoryFilter()).sql()
        key = "m.rowid" if order == "rowid" else "coalesce(m.ts, m.created_at), m.rowid"
        for row in self._conn.execute(
            f"SELECT m.* FROM memories m WHERE {where} ORDER BY {key}", params
        ):
            yield self._row_to_memory(row)

    def vectors(self, ids: list[str]) -> np.ndarray:
        """The stored embeddings of `ids`, in order (zeros for a memory without one)."""
        out = np.zeros((len(ids), self.embedder.dim), dtype=np.float32)
        pos = {mid: i for i, mid in enumerate(ids)}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" for _ in chunk)
            for row in self._conn.execute(
                "SELECT m.id, e.vector FROM memories m JOIN embeddings e"
                f" ON e.memory_rowid = m.rowid WHERE m.id IN ({marks})",
                chunk,
            ):
                out[pos[row[0]]] = np.frombuffer(row[1], dtype=np.float32)
        return out

    def allowed(self, ids: list[str], flt: MemoryFilter) -> set[str]:
        """Those of `ids` that `flt` lets through."""
        where, params = flt.sql("m")
        out: set[str] = set()
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" for _ in chunk)
            rows = self._conn.execute(
                f"SELECT m.id FROM memories m WHERE m.id IN ({marks}) AND {where}",
                [*chunk, *params],
            )
            out.update(r[0] for r in rows)
        return out

    def find_text(self, phrase: str, flt: MemoryFilter | None = None) -> list[Memory]:
        """Memories whose text contains `phrase` (case-insensitive), for exact operations such as
        forgetting by query, where a fuzzy ranking would be the wrong tool."""
        where, params = (flt or MemoryFilter()).sql()
        rows = self._conn.execute(
            f"SELECT m.* FROM memories m WHERE {where} AND instr(lower(m.text), lower(?)) > 0"
            " ORDER BY coalesce(m.ts, m.created_at)",
            [*params, phrase],
        )
        return [self._row_to_memory(r) for r in rows]

    def source_memory_ids(self, source_prefix: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM memories WHERE source_key = ? OR source_key LIKE ?",
            (source_prefix, f"{source_prefix}:%"),
        )
        return [r[0] for r in rows]

    def sources(self) -> list[tuple[SourceRef, int]]:
        """Every source with the number of memories it holds."""
        rows = self._conn.execute(
            "SELECT s.*, (SELECT count(*) FROM memories m WHERE m.source_key = s.key) AS n"
            " FROM sources s ORDER BY s.key"
        )
        return [
            (SourceRef(key=r["key"], kind=r["kind"], name=r["name"], path=r["path"]), r["n"])
            for r in rows
        ]

    def is_forgotten(self, text: str) -> bool:
        from memory.models import content_hash

        return self._hash_forgotten(self._conn, content_hash(text))

    def export_jsonl(self, out: IO[str]) -> int:
        """Write every memory as one JSON object per line, with all its fields."""
        n = 0
        for memory in self.iter_memories(order="rowid"):
            out.write(json.dumps(memory_to_json(memory), ensure_ascii=False) + "\n")
            n += 1
        return n

    def thread_neighbours(
        self, ids: Iterable[str], window: int, flt: MemoryFilter | None = None
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        """For each memory: the ids of up to `window` memories before and after it in its thread
        (nearest last and first), among those `flt` lets through."""
        where, params = (flt or MemoryFilter()).sql("n")
        for mid in ids:
            row = self._conn.execute(
                "SELECT rowid, thread, ts FROM memories WHERE id = ?", (mid,)
            ).fetchone()
            if row is None or row["thread"] is None or row["ts"] is None:
                yield mid, [], []
                continue
            key = (row["thread"], row["ts"], row["ts"], row["rowid"])
            before = self._conn.execute(
                # Written as a range on ts (not an OR) so SQLite walks the (thread, ts) index
                # and stops after `window` rows instead of scanning the whole thread.
                "SELECT n.id FROM memories n WHERE n.thread = ? AND n.ts <= ? AND NOT (n.ts = ?"
                f" AND n.rowid >= ?) AND {where} ORDER BY n.ts DESC, n.rowid DESC LIMIT ?",
                [*key, *params, window],
            ).fetchall()
            after = self._conn.execute(
                "SELECT n.id FROM memories n WHERE n.thread = ? AND n.ts >= ? AND NOT (n.ts = ?"
                f" AND n.rowid <= ?) AND {where} ORDER BY n.ts, n.rowid LIMIT ?",
                [*key, *params, window],
            ).fetchall()
            yield mid, [r[0] for r in reversed(before)], [r[0] for r in after]

    def authors_matching(self, speakers: Iterable[str]) -> list[str]:
        """The authors, as stored, that a speaker filter names (by name, any case, or by id)."""
        found: list[str] = []
        for speaker in speakers:
            rows = self._conn.execute(
                "SELECT DISTINCT author FROM memories WHERE author IS NOT NULL AND"
                " (lower(author) = lower(?) OR author_id = ?)",
                (speaker, speaker),
            )
            found.extend(r[0] for r in rows)
        return list(dict.fromkeys(found))

    # -- internals ---------------------------------------------------------------------------

    def _fetch(self, conn: sqlite3.Connection, ids: list[str]) -> list[Memory]:
        found: dict[str, Memory] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" for _ in chunk)
            for row in conn.execute(f"SELECT * FROM memories WHERE id IN ({marks})", chunk):
                found[row["id"]] = self._row_to_memory(row)
        return [found[i] for i in ids if i in found]

    def _row_to_memory(self, row: sqlite3.Row) -> Memory:
        return Memory(
            id=row["id"],
            text=row["text"],
            kind=Kind(row["kind"]),
            source_key=row["source_key"],
            source_name=self.source_name(row["source_key"]),
            source_id=row["source_id"],
            author=row["author"],
            author_id=row["author_id"],
            is_owner=bool(row["is_owner"]),
            timestamp=_from_epoch(row["ts"]),
            thread=row["thread"],
            reply_to=row["reply_to"],
            visibility=Visibility(row["visibility"]),
            shared_with=row["shared_with"],
            content_hash=row["content_hash"],
            created_at=datetime.fromtimestamp(row["created_at"], tz=UTC),
            meta=json.loads(row["meta"]),
        )

    def source_name(self, key: str) -> str:
        """The human name of a source (the key itself if the source is unknown)."""
        if key not in self._source_names:
            row = self._conn.execute("SELECT name FROM sources WHERE key = ?", (key,)).fetchone()
            self._source_names[key] = row[0] if row else key
        return self._source_names[key]

    @staticmethod
    def _hash_forgotten(conn: sqlite3.Connection, digest: str) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM tombstones WHERE content_hash = ? LIMIT 1", (digest,)
            ).fetchone()
            is not None
        )

    def _upsert_source(self, conn: sqlite3.Connection, source: SourceRef, now: float) -> None:
        conn.execute(
            "INSERT INTO sources (key, kind, name, path, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET name=excluded.name,"
            " path=excluded.path, updated_at=excluded.updated_at",
            (source.key, source.kind, source.name, source.path, now, now),
        )
        self._source_names.pop(source.key, None)

    @staticmethod
    def _start_run(conn: sqlite3.Connection, source: SourceRef, fmt: str, started: float) -> int:
        cur = conn.execute(
            "INSERT INTO ingestion_runs (source_key, path, format, started_at, status)"
            " VALUES (?,?,?,?, 'running')",
            (source.key, source.path, fmt, started),
        )
        return int(cur.lastrowid or 0)

    def _finish_run(self, conn: sqlite3.Connection, report: IngestReport) -> None:
        conn.execute(
            "UPDATE ingestion_runs SET status='done', finished_at=?, added=?, unchanged=?,"
            " removed=?, blocked=? WHERE id=?",
            (
                self._now(),
                report.added,
                report.unchanged,
                report.removed,
                report.blocked,
                report.run_id,
            ),
        )

    def _record_failed_run(
        self, source: SourceRef, fmt: str, started: float, exc: Exception
    ) -> None:
        try:
            # Best effort, and brief: the error to report is `exc` (which may be that the
            # database was busy for too long already).
            with self._write(QUIET_WAIT) as conn:
                conn.execute(
                    "INSERT INTO ingestion_runs (source_key, path, format, started_at, finished_at,"
                    " status, error) VALUES (?,?,?,?,?, 'failed', ?)",
                    (
                        source.key,
                        source.path,
                        fmt,
                        started,
                        self._now(),
                        f"{type(exc).__name__}: {exc}",
                    ),
                )
        except (sqlite3.Error, StoreBusyError):
            log.debug("could not record the failed import of %s", source.key, exc_info=True)


def is_distinctive(text: str) -> bool:
    """Whether a text says enough to be recognised elsewhere: four words or more, or twenty
    characters, or any digit ("door code 4071" is; "ok thanks!" is not)."""
    stripped = text.strip()
    return len(stripped.split()) >= 4 or len(stripped) >= 20 or any(c.isdigit() for c in stripped)


def memory_id(source_key: str, source_id: str) -> str:
    """A memory's id: stable for the same message of the same source, so re-imports collide."""
    digest = hashlib.sha256(f"{source_key}\0{source_id}".encode()).hexdigest()
    return f"m_{digest[:16]}"


def embedding_text(memory: Memory | MemoryDraft) -> str:
    """What gets embedded for a memory (or a draft of one): the text, with the speaker for chat
    messages, because "who said it" is often what a question asks about."""
    if memory.kind == Kind.CHAT and memory.author:
        return f"{memory.author}: {memory.text}"
    return memory.text


def memory_to_json(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "text": memory.text,
        "kind": str(memory.kind),
        "source": memory.source_key,
        "source_name": memory.source_name,
        "source_id": memory.source_id,
        "author": memory.author,
        "author_id": memory.author_id,
        "is_owner": memory.is_owner,
        "timestamp": memory.timestamp.isoformat() if memory.timestamp else None,
        "thread": memory.thread,
        "reply_to": memory.reply_to,
        "visibility": str(memory.visibility),
        "shared_with": memory.shared_with,
        "content_hash": memory.content_hash,
        "created_at": memory.created_at.isoformat(),
        "meta": memory.meta,
    }


def _epoch(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
