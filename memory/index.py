"""The dense index: a Chroma collection of memory embeddings, rebuildable from SQLite at any time.

Vectors are computed by our own `Embedder` and handed to Chroma, never computed by Chroma: its
default embedding function downloads a model, which fails offline.

Chroma's `PersistentClient` keeps the HNSW graph in memory, one copy per process, and is not safe
for several processes writing at once: a process that writes with a stale graph overwrites on
disk what another process added, and a process that only reads never sees it. So the store writes
to the index only under its SQLite write lock, counts those writes (a "generation" in SQLite), and
calls `sync_to` before every use: when another process has written since this one loaded the
index, the client is closed and opened again, which loads the current graph from disk.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class IndexEntry:
    """One memory as the index stores it: its id, vector and the fields dense search filters on."""

    id: str
    vector: np.ndarray
    visibility: str
    source_key: str
    author: str
    ts: float | None
    thread: str
    shared_with: str


@dataclass(frozen=True)
class DenseHit:
    id: str
    similarity: float


def collection_name(model: str) -> str:
    """One collection per embedding model, so switching models never mixes vector spaces."""
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", Path(model).name or model).strip("-_")[:40] or "model"
    return f"memories-{slug}"


class VectorIndex:
    """A Chroma `PersistentClient` collection under the twin's home.

    Every `VectorIndex` on the same folder in one process shares one client (Chroma caches one
    per folder anyway), so that reloading it after another process wrote reaches all of them.
    """

    def __init__(self, path: Path, model: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.name = collection_name(model)
        self._client = _SharedClient.acquire(path)
        self._closed = False

    @property
    def needs_setup(self) -> bool:
        """Whether the collection may not exist yet. Chroma's setup of a new folder or collection
        is not safe for two processes at once (they fail on "table collections already
        exists"), so the store calls `set_up` under its write lock while this is true."""
        return not self._ready_mark.exists()

    def set_up(self) -> None:
        """Create the folder's Chroma database and the collection, then mark them as there."""
        self.count()
        self._ready_mark.touch()

    @property
    def _ready_mark(self) -> Path:
        return self.path / f".ready-{self.name}"

    def sync_to(self, generation: int) -> None:
        """Make sure this process sees the index as of `generation` (the count of writes to it
        that the store keeps): reload it when another process has written since."""
        self._client.sync_to(generation)

    def written(self, generation: int) -> None:
        """Record that this process's own write brought the index to `generation`."""
        self._client.generation = generation

    def invalidate(self) -> None:
        """Forget which generation this process has: a write failed half-way, reload next time."""
        self._client.generation = None

    def count(self) -> int:
        with self._client.lock:
            return self._client.collection(self.name).count()

    def upsert(self, entries: list[IndexEntry], batch_size: int = 4096) -> None:
        with self._client.lock:
            collection = self._client.collection(self.name)
            for start in range(0, len(entries), batch_size):
                chunk = entries[start : start + batch_size]
                collection.upsert(
                    ids=[e.id for e in chunk],
                    embeddings=np.stack([e.vector for e in chunk]),
                    metadatas=[_metadata(e) for e in chunk],
                )

    def delete(self, ids: list[str]) -> None:
        with self._client.lock:
            collection = self._client.collection(self.name)
            for start in range(0, len(ids), 4096):
                collection.delete(ids=ids[start : start + 4096])

    def all_ids(self) -> set[str]:
        with self._client.lock:
            return set(self._client.collection(self.name).get(include=[])["ids"])

    def reset(self) -> None:
        """Drop and recreate the collection (used by reindex)."""
        with self._client.lock:
            self._client.drop(self.name)

    def query(
        self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[DenseHit]:
        with self._client.lock:
            collection = self._client.collection(self.name)
            size = collection.count()
            if k <= 0 or size == 0:
                return []
            result = collection.query(
                query_embeddings=vector.reshape(1, -1),
                n_results=min(k, size),
                where=where or None,
                include=["distances"],
            )
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [
            DenseHit(id=i, similarity=1.0 - float(d)) for i, d in zip(ids, distances, strict=True)
        ]

    def close(self) -> None:
        """Let go of the shared client (closed when the last index on its folder closes)."""
        if not self._closed:
            self._closed = True
            self._client.release()


class _SharedClient:
    """The one Chroma client of a folder in this process, connected when first used."""

    _open: ClassVar[dict[Path, _SharedClient]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        # Chroma calls from several threads are serialised, so that a reload never closes the
        # client under a query that is still running.
        self.lock = threading.RLock()
        self.users = 0
        self.generation: int | None = None
        self._client: Any = None
        self._collections: dict[str, Any] = {}

    @classmethod
    def acquire(cls, path: Path) -> _SharedClient:
        key = path.resolve()
        with cls._open_lock:
            shared = cls._open.setdefault(key, cls(key))
            shared.users += 1
            return shared

    def release(self) -> None:
        with self._open_lock:
            self.users -= 1
            if self.users > 0:
                return
            del self._open[self.path]
        with self.lock:
            self._disconnect()

    def sync_to(self, generation: int) -> None:
        with self.lock:
            if self._client is not None and self.generation != generation:
                self._disconnect()
            if self._client is None:
                self._connect()
            # The caller read `generation` before this call: what the client loads now is at
            # least that recent.
            self.generation = generation

    def collection(self, name: str) -> Any:
        if self._client is None:
            self._connect()
        if name not in self._collections:
            self._collections[name] = self._client.get_or_create_collection(
                name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        return self._collections[name]

    def drop(self, name: str) -> None:
        """Delete the collection `name` and create it again, empty."""
        self.collection(name)  # so that there is one to delete
        del self._collections[name]
        self._client.delete_collection(name)
        self.collection(name)

    def _connect(self) -> None:
        import chromadb
        from chromadb.config import Settings

        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=Settings(anonymized_telemetry=False, allow_reset=True)
        )
        self.generation = None

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._collections.clear()


def _metadata(entry: IndexEntry) -> dict[str, str | float]:
    meta: dict[str, str | float] = {
        "visibility": entry.visibility,
        "source_key": entry.source_key,
        "author": entry.author,
        "thread": entry.thread,
        "shared_with": entry.shared_with,
    }
    if entry.ts is not None:
        meta["ts"] = entry.ts
    return meta
