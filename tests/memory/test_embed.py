"""The embedder: a few texts go through NumPy, many through torch, and both give one vector."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from memory.embed import SentenceTransformerEmbedder, default_model_path
from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef, Visibility
from memory.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "When did I run the half marathon?",
    "Biscuit hurt his paw on the beach",
    "x",
    "Tomás: Größe, Übung, café, 🐙 — and a cuttlefish that changes colour",
    # longer than the model's 256 tokens: both encoders truncate it the same way
    "The octopus hides in the reef, then swims to the next rock. " * 30,
]


def test_numpy_and_torch_give_the_same_vectors(embedder: SentenceTransformerEmbedder) -> None:
    by_numpy = SentenceTransformerEmbedder().embed(TEXTS)
    by_torch = SentenceTransformerEmbedder(small_batch=0).embed(TEXTS)
    assert by_numpy.shape == by_torch.shape == (len(TEXTS), 384)
    assert by_numpy.dtype == np.float32
    assert np.abs(by_numpy - by_torch).max() < 1e-5
    assert (by_numpy * by_torch).sum(axis=1).min() > 1 - 1e-5


def test_a_few_texts_do_not_load_torch_and_many_do() -> None:
    embedder = SentenceTransformerEmbedder(small_batch=2)
    assert embedder.dim == 384
    done: list[int] = []
    embedder.embed(TEXTS[:2], progress=done.append)
    assert embedder._model is None
    assert done == [2]
    embedder.embed(TEXTS[:3])
    assert embedder._model is not None


def test_a_model_the_numpy_encoder_cannot_read_goes_through_torch(tmp_path: Path) -> None:
    folder = tmp_path / "minilm"
    shutil.copytree(default_model_path(), folder)
    (folder / "tokenizer.json").unlink()  # sentence-transformers rebuilds it from vocab.txt
    embedder = SentenceTransformerEmbedder(str(folder))
    vector = embedder.embed(TEXTS[:1])
    assert embedder._model is not None
    expected = SentenceTransformerEmbedder().embed(TEXTS[:1])
    assert np.abs(vector - expected).max() < 1e-5


def test_searching_a_store_does_not_import_torch(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    source = SourceRef(key="notes:run", kind="notes", name="Running")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    texts = ["Ran the Lisbon half marathon in 1:52", "Biscuit's paw is healing", "Sourdough day"]
    drafts = [
        MemoryDraft(
            text=text,
            kind=Kind.NOTE,
            source_id=str(i),
            timestamp=start + timedelta(days=i),
        )
        for i, text in enumerate(texts)
    ]
    with MemoryStore.open(tmp_path / "memory", embedder) as store:
        store.ingest(ParsedSource(source=source, drafts=drafts), visibility=Visibility.PRIVATE)
    script = f"""
import json, sys
from pathlib import Path
from memory.embed import SentenceTransformerEmbedder
from memory.retrieve import Retriever
from memory.store import MemoryStore

with MemoryStore.open(Path({str(tmp_path / "memory")!r}), SentenceTransformerEmbedder()) as store:
    hits = Retriever(store).search("When did I run the half marathon?", k=2)
heavy = ("torch", "transformers", "sentence_transformers")
print(json.dumps({{"top": hits[0].memory.text, "loaded": [m for m in heavy if m in sys.modules]}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"top": texts[0], "loaded": []}
