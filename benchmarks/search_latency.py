"""Search latency: p50/p95 of hybrid `Retriever.search` over a store of many chat memories.

    python benchmarks/search_latency.py ../shared/data/locomo-dev.json --memories 20000 \
        --queries 200 [--store DIR] [--torch-threads 1]

The store is built from LoCoMo turns (as in ingest_throughput.py) unless --store points at one
built before, with its L1 profile; queries are LoCoMo questions, each embedded as part of its
search (a fresh retriever per audience). Wall-clock times, and the CPU time of the process
(`cpu_`), which is the steadier figure on a machine shared with other work. Ends by printing
one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_throughput import big_conversation
from benchmarks.locomo import load, write_export
from core.clock import FixedClock
from core.progress import progress_bar
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity, Visibility
from memory.profile import ProfileBuilder
from memory.retrieve import Retriever
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore
from twin.privacy import Audience


def big_owner(path: Path) -> str:
    """The owner of the big conversation (`big_conversation`: the first one's first speaker)."""
    return load(path)[0].owner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a LoCoMo JSON file")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--store", type=Path, help="reuse (or keep) the store in this folder")
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="threads for embedding queries (default: torch's; 1 keeps a shared machine's other "
        "work from stalling it)",
    )
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

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
            # built as the twin builds it: the owner's identity, a clock (the chat's last day),
            # and the profile whose facts retrieval reads
            owner = OwnerIdentity(names=(big_owner(args.path),))
            newest = store.conn.execute("SELECT max(ts) FROM memories").fetchone()[0]
            clock = FixedClock(datetime.fromtimestamp(newest, tz=UTC))
            if store.conn.execute("SELECT count(*) FROM profile_builds").fetchone()[0] == 0:
                ProfileBuilder(store, owner.names[0], clock=clock).build(full=True)
            figures = {
                "memories": store.count(),
                "queries": len(questions),
                "k": args.k,
                "torch_threads": args.torch_threads or "default",
            }
            for audience in ("owner", "friend"):
                # a fresh retriever per audience: every query is embedded, none comes cached
                retriever = Retriever(store, owner=owner, clock=clock)
                retriever.search("warm up", k=args.k)
                who = Audience.parse(audience)
                flt = who.memory_filter()
                wall, cpu = [], []
                for question in questions:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    retriever.search(question, k=args.k, flt=flt, asker=who.asker)
                    wall.append(1000 * (time.perf_counter() - start))
                    cpu.append(1000 * (time.process_time() - start_cpu))
                for name, times in (("", wall), ("cpu_", cpu)):
                    times.sort()
                    figures[f"{audience}_{name}p50_ms"] = round(statistics.median(times), 1)
                    figures[f"{audience}_{name}p95_ms"] = round(
                        times[int(0.95 * len(times)) - 1], 1
                    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
