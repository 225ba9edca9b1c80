"""Search latency: p50/p95 of hybrid `Retriever.search` over a store of many chat memories.

    python benchmarks/search_latency.py ../shared/data/locomo-dev.json --memories 20000 \
        --queries 200 [--store DIR]

The store is built from LoCoMo turns (as in ingest_throughput.py) unless --store points at one
built before; queries are LoCoMo questions. Ends by printing one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_throughput import big_conversation
from benchmarks.locomo import load, write_export
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity, Visibility
from memory.retrieve import Retriever
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore
from twin.privacy import Audience
from twin.progress import progress_bar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a LoCoMo JSON file")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--store", type=Path, help="reuse (or keep) the store in this folder")
    args = parser.parse_args()

    questions = [q.text for c in load(args.path) for q in c.questions][: args.queries]
    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.store or Path(tmp)
        with MemoryStore.open(folder / "memory", embedder) as store:
            if store.count() < args.memories:
                conversation = big_conversation(args.path, args.memories)
                (source,) = get_importer("telegram").parse(
                    write_export(conversation, folder / "export"), ImportOptions()
                )
                with progress_bar("Building the store") as bar:
                    owner = OwnerIdentity(names=(conversation.owner,))
                    # Chats are visible to friends by default, as in twin.toml.
                    store.ingest(source, owner=owner, visibility=Visibility.FRIENDS, progress=bar)
            retriever = Retriever(store)
            retriever.search("warm up", k=args.k)
            figures = {"memories": store.count(), "queries": len(questions), "k": args.k}
            for audience in ("owner", "friend"):
                flt = Audience.parse(audience).memory_filter()
                times = []
                for question in questions:
                    start = time.perf_counter()
                    retriever.search(question, k=args.k, flt=flt)
                    times.append(1000 * (time.perf_counter() - start))
                times.sort()
                figures[f"{audience}_p50_ms"] = round(statistics.median(times), 1)
                figures[f"{audience}_p95_ms"] = round(times[int(0.95 * len(times)) - 1], 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
