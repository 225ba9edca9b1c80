"""The dense index: a Chroma collection of memory embeddings, rebuildable from SQLite at any time.

Vectors are computed by our own `Embedder` and handed to Chroma, never computed by Chroma: its
default embedding function downloads a model, which fails offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """A Chroma `PersistentClient` collection under the twin's home."""

    def __init__(self, path: Path, model: str) -> None:
        import chromadb
        from chromadb.config import Settings

        path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=True)
        )
        self.name = collection_name(model)
        self._collection = self._open()

    def _open(self) -> Any:
        return self._client.get_or_create_collection(
            self.name, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )

    def count(self) -> int:
        return self._collection.count()

    def upsert(self, entries: list[IndexEntry], batch_size: int = 4096) -> None:
        for start in range(0, len(entries), batch_size):
            chunk = entries[start : start + batch_size]
            self._collection.upsert(
                ids=[e.id for e in chunk],
                embeddings=np.stack([e.vector for e in chunk]),
                metadatas=[_metadata(e) for e in chunk],
            )

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), 4096):
            self._collection.delete(ids=ids[start : start + 4096])

    def all_ids(self) -> set[str]:
        return set(self._collection.get(include=[])["ids"])

    def reset(self) -> None:
        """Drop and recreate the collection (used by reindex)."""
        self._client.delete_collection(self.name)
        self._collection = self._open()

    def query(
        self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[DenseHit]:
        size = self.count()
        if k <= 0 or size == 0:
            return []
        result = self._collection.query(
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
