"""L0 memory: SQLite as the source of truth, with a Chroma index kept in step with it.

Every write is one SQLite transaction. New memories are embedded and added to the index before
that transaction commits, so a failure anywhere (a bad row, the embedder, Chroma) rolls the whole
import back. Re-importing is idempotent: a memory is identified by its source and its
source-native id, and forgotten memories leave a tombstone that blocks them from coming back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from memory.embed import Embedder
from memory.index import IndexEntry, VectorIndex
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

Progress = Callable[[int, int], None]
"""Called as progress(done, total) while long work runs."""


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

    The store is safe to share between threads: writes are serialised by a lock and SQLite runs
    in WAL mode, so readers in other processes (a bot, the MCP server) are never blocked for long.
    """

    def __init__(self, db_path: Path, index: VectorIndex, embedder: Embedder) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self.index = index
        self.embedder = embedder
        self._lock = threading.RLock()
        self._source_names: dict[str, str] = {}
        self._conn = sqlite3.connect(
            db_path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            migrate(self._conn)

    @classmethod
    def open(cls, directory: Path, embedder: Embedder) -> MemoryStore:
        """Open (creating if needed) the store kept in `directory`: memory.sqlite and chroma/."""
        return cls(
            directory / "memory.sqlite", VectorIndex(directory / "chroma", embedder.name), embedder
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The SQLite connection, for layers built on L0 (L1 lives in the same database)."""
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

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
        started = time.time()
        source = parsed.source
        try:
            with self.transaction() as conn:
                run_id = self._start_run(conn, source, fmt, started)
                self._upsert_source(conn, source, started)
                report = self._ingest_in_transaction(
                    conn,
                    run_id,
                    parsed,
                    owner or OwnerIdentity(),
                    visibility,
                    cap,
                    progress,
                    block_forgotten_text,
                )
                conn.execute(
                    "UPDATE ingestion_runs SET status='done', finished_at=?, added=?, unchanged=?,"
                    " removed=?, blocked=? WHERE id=?",
                    (
                        time.time(),
                        report.added,
                        report.unchanged,
                        report.removed,
                        report.blocked,
                        run_id,
                    ),
                )
            return report
        except Exception as exc:
            self._record_failed_run(source, fmt, started, exc)
            raise

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
        or was forgotten before."""
        if not text.strip():
            raise ValueError("a memory needs some text")
        when = timestamp or datetime.now(UTC)
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

    def _ingest_in_transaction(
        self,
        conn: sqlite3.Connection,
        run_id: int,
        parsed: ParsedSource,
        owner: OwnerIdentity,
        visibility: Visibility,
        cap: Visibility | None,
        progress: Progress | None,
        block_forgotten_text: bool,
    ) -> IngestReport:
        source_key = parsed.source.key
        existing = {
            row["source_id"]: row["content_hash"]
            for row in conn.execute(
                "SELECT source_id, content_hash FROM memories WHERE source_key = ?", (source_key,)
            )
        }
        blocked_ids = {
            row[0]
            for row in conn.execute(
                "SELECT source_id FROM tombstones WHERE source_key = ?", (source_key,)
            )
        }
        seen: set[str] = set()
        new: list[MemoryDraft] = []
        unchanged = blocked = 0
        for draft in parsed.drafts:
            if draft.source_id in seen:
                continue  # an export may repeat a message (e.g. a forward shown twice)
            seen.add(draft.source_id)
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

        removed = 0
        if parsed.replaces_missing:
            gone = [sid for sid in existing if sid not in seen]
            removed = self._delete_by_source_ids(conn, source_key, gone)

        now = time.time()
        rows = []
        for draft in new:
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
        ids = [r[0] for r in rows]
        self._embed_and_index(conn, ids, progress)
        return IngestReport(
            source_key=source_key,
            run_id=run_id,
            added=len(ids),
            unchanged=unchanged,
            removed=removed,
            blocked=blocked,
            added_ids=ids,
        )

    def _embed_and_index(
        self, conn: sqlite3.Connection, ids: list[str], progress: Progress | None
    ) -> None:
        """Embed the given (just inserted) memories once, keep the vectors, index them."""
        if not ids:
            return
        memories = self._fetch(conn, ids)
        total = len(memories)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        vectors = self.embedder.embed([embedding_text(m) for m in memories], progress=step)
        conn.executemany(
            "INSERT OR REPLACE INTO embeddings (memory_rowid, model, vector, indexed)"
            " SELECT rowid, ?, ?, 1 FROM memories WHERE id = ?",
            [
                (self.embedder.name, vec.astype(np.float32).tobytes(), m.id)
                for m, vec in zip(memories, vectors, strict=True)
            ],
        )
        entries = [_index_entry(m, vec) for m, vec in zip(memories, vectors, strict=True)]
        try:
            self.index.upsert(entries)
        except Exception:
            # The SQLite transaction will roll back; take the vectors out again so the index
            # does not hold memories that do not exist.
            with suppress(Exception):  # the original error is the one to report
                self.index.delete(ids)
            raise

    def forget(self, ids: Iterable[str], reason: str = "") -> list[str]:
        """Delete memories everywhere (SQLite, full-text index, vectors) and leave tombstones so
        that no later import brings them back. Returns the ids that were forgotten."""
        wanted = list(dict.fromkeys(ids))
        with self.transaction() as conn:
            memories = self._fetch(conn, wanted)
            now = time.time()
            conn.executemany(
                "INSERT INTO tombstones (memory_id, source_key, source_id, content_hash,"
                " forgotten_at, reason) VALUES (?,?,?,?,?,?)",
                [(m.id, m.source_key, m.source_id, m.content_hash, now, reason) for m in memories],
            )
            conn.executemany("DELETE FROM memories WHERE id = ?", [(m.id,) for m in memories])
            self.index.delete([m.id for m in memories])
        return [m.id for m in memories]

    def _delete_by_source_ids(
        self, conn: sqlite3.Connection, source_key: str, source_ids: list[str]
    ) -> int:
        """Remove memories replaced by a newer version of their document (no tombstone)."""
        if not source_ids:
            return 0
        ids = [memory_id(source_key, sid) for sid in source_ids]
        conn.executemany("DELETE FROM memories WHERE id = ?", [(i,) for i in ids])
        self.index.delete(ids)
        return len(ids)

    def reindex(self, *, re_embed: bool = False, progress: Progress | None = None) -> int:
        """Rebuild the vector index from SQLite. Stored vectors are reused unless `re_embed` is
        set or they came from another embedding model. Returns the number of memories indexed."""
        with self.transaction() as conn:
            if re_embed:
                conn.execute("DELETE FROM embeddings")
            else:
                conn.execute("DELETE FROM embeddings WHERE model != ?", (self.embedder.name,))
            missing = [
                row[0]
                for row in conn.execute(
                    "SELECT m.id FROM memories m LEFT JOIN embeddings e ON e.memory_rowid = m.rowid"
                    " WHERE e.memory_rowid IS NULL"
                )
            ]
            self.index.reset()
            if missing:
                self._embed_and_index(conn, missing, progress)
            entries = [
                _index_entry(
                    self._row_to_memory(row), np.frombuffer(row["vector"], dtype=np.float32)
                )
                for row in conn.execute(
                    "SELECT m.*, e.vector FROM memories m"
                    " JOIN embeddings e ON e.memory_rowid = m.rowid"
                )
            ]
            self.index.upsert(entries)
            conn.execute("UPDATE embeddings SET indexed = 1")
            return len(entries)

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
            created_at=_from_epoch(row["created_at"]) or datetime.now(UTC),
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

    def _record_failed_run(
        self, source: SourceRef, fmt: str, started: float, exc: Exception
    ) -> None:
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO ingestion_runs (source_key, path, format, started_at, finished_at,"
                    " status, error) VALUES (?,?,?,?,?, 'failed', ?)",
                    (
                        source.key,
                        source.path,
                        fmt,
                        started,
                        time.time(),
                        f"{type(exc).__name__}: {exc}",
                    ),
                )
        except sqlite3.Error:
            pass  # the original error is the one to report; the run log is best effort


def is_distinctive(text: str) -> bool:
    """Whether a text says enough to be recognised elsewhere: four words or more, or twenty
    characters, or any digit ("door code 4071" is; "ok thanks!" is not)."""
    stripped = text.strip()
    return len(stripped.split()) >= 4 or len(stripped) >= 20 or any(c.isdigit() for c in stripped)


def memory_id(source_key: str, source_id: str) -> str:
    """A memory's id: stable for the same message of the same source, so re-imports collide."""
    digest = hashlib.sha256(f"{source_key}\0{source_id}".encode()).hexdigest()
    return f"m_{digest[:16]}"


def embedding_text(memory: Memory) -> str:
    """What gets embedded for a memory: the text, with the speaker for chat messages, because
    "who said it" is often what a question asks about."""
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


def _index_entry(memory: Memory, vector: np.ndarray) -> IndexEntry:
    return IndexEntry(
        id=memory.id,
        vector=vector,
        visibility=str(memory.visibility),
        source_key=memory.source_key,
        author=memory.author or "",
        ts=_epoch(memory.timestamp) if memory.timestamp else None,
        thread=memory.thread or "",
        shared_with=memory.shared_with or "",
    )


def _epoch(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
