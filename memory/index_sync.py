"""The vector index's bookkeeping in SQLite: what waits to be indexed or removed, how many writes
the index has had, and how far it agrees with the database.

SQLite is the record and the Chroma index is derived from it. A write commits its rows with their
vectors marked `indexed = 0` (and the ids it removed in `index_removals`) before it touches
Chroma, and clears those marks only once Chroma has the change. Whatever a crash leaves marked is
therefore exactly what Chroma may lack, and replaying it from the stored vectors is idempotent.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from memory.index import IndexEntry


@dataclass(frozen=True)
class IndexHealth:
    """How far the vector index agrees with the database, from counts (cheap to take)."""

    memories: int
    vectors: int  # memories with a stored vector of the current embedding model
    indexed: int  # of those, the ones recorded as being in the index
    to_index: int  # vectors waiting to be added to the index
    to_remove: int  # removed memories whose vectors may still be in the index
    in_index: int  # entries the index holds

    @property
    def in_step(self) -> bool:
        return (
            self.to_index == 0
            and self.to_remove == 0
            and self.in_index == self.indexed
            and self.vectors == self.memories
        )

    @property
    def without_vector(self) -> int:
        """Memories that need embedding before they can be indexed (the model changed)."""
        return self.memories - self.vectors

    def describe(self) -> str:
        """What is out of step, in words ("" when nothing is)."""
        parts = []
        if self.to_index:
            parts.append(f"{self.to_index} waiting to be indexed")
        if self.to_remove:
            parts.append(f"{self.to_remove} forgotten or replaced still to be removed")
        if self.in_index != self.indexed:
            parts.append(f"the index holds {self.in_index} entries where {self.indexed} belong")
        if self.without_vector:
            parts.append(f"{self.without_vector} memories without a vector of this model")
        return "; ".join(parts)


def generation(conn: sqlite3.Connection) -> int:
    """How many writes the vector index has had (see `memory.index`)."""
    return conn.execute("SELECT generation FROM index_state WHERE id = 1").fetchone()[0]


def bump_generation(conn: sqlite3.Connection) -> int:
    """Count one more write to the index (inside the write transaction); returns the new count."""
    conn.execute("UPDATE index_state SET generation = generation + 1 WHERE id = 1")
    return generation(conn)


def counts(conn: sqlite3.Connection, model: str, in_index: int) -> IndexHealth:
    """The index's health, given how many entries the index itself holds."""

    def one(sql: str, *params: object) -> int:
        return conn.execute(sql, params).fetchone()[0]

    vectors = one("SELECT count(*) FROM embeddings WHERE model = ?", model)
    to_index = one("SELECT count(*) FROM embeddings WHERE model = ? AND indexed = 0", model)
    return IndexHealth(
        memories=one("SELECT count(*) FROM memories"),
        vectors=vectors,
        indexed=vectors - to_index,
        to_index=to_index,
        to_remove=one("SELECT count(*) FROM index_removals"),
        in_index=in_index,
    )


def store_vectors(
    conn: sqlite3.Connection, model: str, vectors: list[tuple[str, np.ndarray]]
) -> None:
    """Keep the vectors of these memories (by id), waiting to be indexed; a memory that is no
    longer there is left out. An id that was waiting to be removed is not any more."""
    conn.executemany(
        "INSERT OR REPLACE INTO embeddings (memory_rowid, model, vector, indexed)"
        " SELECT rowid, ?, ?, 0 FROM memories WHERE id = ?",
        [(model, vec.astype(np.float32).tobytes(), mid) for mid, vec in vectors],
    )
    conn.executemany(
        "DELETE FROM index_removals WHERE memory_id = ?", [(mid,) for mid, _ in vectors]
    )


def record_removals(conn: sqlite3.Connection, ids: list[str]) -> None:
    """These memories were deleted: their vectors are to leave the index."""
    conn.executemany(
        "INSERT OR IGNORE INTO index_removals (memory_id) VALUES (?)", [(i,) for i in ids]
    )


def waiting_removals(conn: sqlite3.Connection, ids: list[str] | None, limit: int) -> list[str]:
    """Up to `limit` ids waiting to leave the index: of `ids`, or any when `ids` is None."""
    if ids is None:
        rows = conn.execute("SELECT memory_id FROM index_removals LIMIT ?", (limit,))
        return [r[0] for r in rows]
    found: list[str] = []
    for chunk in _chunks(ids[:limit]):
        marks = ",".join("?" for _ in chunk)
        rows = conn.execute(
            f"SELECT memory_id FROM index_removals WHERE memory_id IN ({marks})", chunk
        )
        found.extend(r[0] for r in rows)
    return found


def waiting_rows(
    conn: sqlite3.Connection, model: str, ids: list[str] | None, limit: int
) -> list[sqlite3.Row]:
    """Up to `limit` memories whose vectors wait to be indexed, with those vectors: of `ids`, or
    any when `ids` is None. Read inside the write transaction, so a memory forgotten meanwhile
    is not among them."""
    sql = (
        "SELECT m.rowid AS rowid, m.id, m.visibility, m.source_key, m.author, m.ts, m.thread,"
        " m.shared_with, e.vector FROM embeddings e JOIN memories m ON m.rowid = e.memory_rowid"
        " WHERE e.model = ? AND e.indexed = 0"
    )
    if ids is None:
        return conn.execute(f"{sql} LIMIT ?", (model, limit)).fetchall()
    found: list[sqlite3.Row] = []
    for chunk in _chunks(ids[:limit]):
        marks = ",".join("?" for _ in chunk)
        found.extend(conn.execute(f"{sql} AND m.id IN ({marks})", (model, *chunk)))
    return found


def entry(row: sqlite3.Row) -> IndexEntry:
    """The index entry of a row from `waiting_rows`."""
    return IndexEntry(
        id=row["id"],
        vector=np.frombuffer(row["vector"], dtype=np.float32),
        visibility=row["visibility"],
        source_key=row["source_key"],
        author=row["author"] or "",
        ts=row["ts"],
        thread=row["thread"] or "",
        shared_with=row["shared_with"] or "",
    )


def mark_indexed(conn: sqlite3.Connection, rowids: list[int]) -> None:
    conn.executemany(
        "UPDATE embeddings SET indexed = 1 WHERE memory_rowid = ?", [(r,) for r in rowids]
    )


def clear_removals(conn: sqlite3.Connection, ids: list[str]) -> None:
    conn.executemany("DELETE FROM index_removals WHERE memory_id = ?", [(i,) for i in ids])


def differences(
    conn: sqlite3.Connection, model: str, in_index: set[str]
) -> tuple[list[str], list[int]]:
    """Compare the index's ids with the database: the entries with no memory behind them, and
    the rowids of memories recorded as indexed that the index does not hold."""
    known: set[str] = set()
    lacking: list[int] = []
    rows = conn.execute(
        "SELECT m.id, m.rowid, e.indexed FROM embeddings e JOIN memories m"
        " ON m.rowid = e.memory_rowid WHERE e.model = ?",
        (model,),
    )
    for mid, rowid, indexed in rows:
        known.add(mid)
        if indexed and mid not in in_index:
            lacking.append(rowid)
    return sorted(in_index - known), lacking


def requeue(conn: sqlite3.Connection, rowids: list[int]) -> None:
    """Mark these memories' vectors as waiting to be indexed again."""
    conn.executemany(
        "UPDATE embeddings SET indexed = 0 WHERE memory_rowid = ?", [(r,) for r in rowids]
    )


def _chunks(items: list[str], size: int = 900) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
