"""Ingestion throughput: memories/s for importing a large chat export end to end (parse, SQLite,
embed, index), against the raw `encode()` throughput of the same embedding model on the same texts
in the same run.

    python benchmarks/ingest_throughput.py ../shared/data/locomo-dev.json --messages 20000

The texts are LoCoMo turns, repeated until there are enough, in one Telegram export. Ends by
printing one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.locomo import load, write_export
from core.progress import progress_bar
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore, embedding_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a LoCoMo JSON file (source of realistic text)")
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()

    conversation = big_conversation(args.path, args.messages)
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up the model and its threads"] * 64)

    with tempfile.TemporaryDirectory() as tmp:
        export = write_export(conversation, Path(tmp) / "export")
        start = time.perf_counter()
        (source,) = get_importer("telegram").parse(export, ImportOptions())
        parse_s = time.perf_counter() - start
        with (
            MemoryStore.open(Path(tmp) / "memory", embedder) as store,
            progress_bar("Ingesting") as bar,
        ):
            report = store.ingest(
                source, owner=OwnerIdentity(names=(conversation.owner,)), progress=bar
            )
            ingest_s = time.perf_counter() - start
            texts = [embedding_text(m) for m in store.iter_memories()]
            assert store.index.count() == report.added == len(texts)

    start = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - start

    figures = {
        "messages": report.added,
        "parse_s": round(parse_s, 2),
        "ingest_s": round(ingest_s, 2),
        "ingest_per_s": round(report.added / ingest_s, 1),
        "raw_encode_s": round(raw_s, 2),
        "raw_encode_per_s": round(len(texts) / raw_s, 1),
        "ratio_to_raw": round(raw_s / ingest_s, 3),
    }
    print(json.dumps(figures))


def big_conversation(path: Path, n: int):
    """One LoCoMo conversation grown to `n` messages by replaying all conversations' turns."""
    conversations = load(path)
    base = conversations[0]
    pool = [m for c in conversations for m in c.export["messages"]]
    messages = []
    for i in range(n):
        m = dict(pool[i % len(pool)])
        m["id"] = i + 1
        m["from"], m["from_id"] = (
            (base.owner, "user1000001") if i % 2 else (base.other, "user1000002")
        )
        messages.append(m)
    export = {**base.export, "messages": messages}
    return type(base)(base.sample_id, base.owner, base.other, export, [], [])


if __name__ == "__main__":
    main()
