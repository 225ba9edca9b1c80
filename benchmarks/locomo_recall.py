"""Turn-level recall@k of retrieval on LoCoMo conversations.

Each conversation is written as a Telegram export, imported through the normal importer and store
(owner = the conversation's first speaker), its L1 profile is built offline (the clock fixed at
the conversation's last turn), and every category 1-4 question is asked through the normal
retrieval, as the owner asking (query vectors embedded in one batch first, so the latency it
reports is the search alone). A question's recall@k is the share of its evidence turns among
the top k memories; the figure is the mean over questions.

    python benchmarks/locomo_recall.py ../shared/data/locomo-dev.json \
        [--variants hybrid previous no-voice no-owner no-facts no-kin no-time no-frame \
                    no-informative no-answer-kind subject-weight-1 \
                    fusion fusion+context fusion+speakers lexical dense] \
        [--plot recall.png] [--store DIR]

"previous" is the hybrid before questions were read for people, facts and times; a "no-rule"
variant is the shipped hybrid without that one rule. --store keeps the imported conversations
(and their profiles) in DIR for the next run.

Ends by printing one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.progress import track

from benchmarks.locomo import Conversation, load, write_export
from core.clock import FixedClock
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity
from memory.profile import ProfileBuilder
from memory.retrieve import Mode, RetrievalConfig, Retriever
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore, memory_id

KS = (5, 10, 20)
# The hybrid before questions were read for people, facts and times.
PREVIOUS = RetrievalConfig.without_question_reading()
# What each --variants name runs: the shipped hybrid, it without each rule, the earlier hybrid
# and its parts, and the single retrievers.
VARIANTS: dict[str, tuple[Mode, RetrievalConfig]] = {
    "hybrid": ("hybrid", RetrievalConfig()),
    "previous": ("hybrid", PREVIOUS),
    "no-voice": ("hybrid", RetrievalConfig(voice=False)),
    "no-owner": ("hybrid", RetrievalConfig(owner_aware=False)),
    "no-facts": ("hybrid", RetrievalConfig(facts=False)),
    "no-kin": ("hybrid", RetrievalConfig(kin=False)),
    "no-time": ("hybrid", RetrievalConfig(time_aware=False)),
    "no-frame": ("hybrid", RetrievalConfig(answer_frame=False)),
    "no-informative": ("hybrid", RetrievalConfig(informative=False)),
    "no-answer-kind": ("hybrid", RetrievalConfig(answer_kind=False)),
    "subject-weight-1": ("hybrid", RetrievalConfig(subject_weight=1.0)),
    "fusion": ("hybrid", replace(PREVIOUS, context_weight=0.0, speaker_aware=False)),
    "fusion+context": ("hybrid", replace(PREVIOUS, speaker_aware=False)),
    "fusion+speakers": ("hybrid", replace(PREVIOUS, context_weight=0.0)),
    "lexical": ("lexical", RetrievalConfig()),
    "dense": ("dense", RetrievalConfig()),
}
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a LoCoMo JSON file")
    parser.add_argument(
        "--variants", nargs="+", default=["hybrid", "lexical", "dense"], choices=list(VARIANTS)
    )
    parser.add_argument("--plot", type=Path, help="write a recall@k plot (PNG) here")
    parser.add_argument("--store", type=Path, help="keep (and reuse) the imported stores here")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder()
    importer = get_importer("telegram")
    recalls: dict[str, dict[tuple[int, int], list[float]]] = {
        m: defaultdict(list) for m in args.variants
    }
    latencies: list[float] = []
    conversations = load(args.path)
    with tempfile.TemporaryDirectory() as tmp:
        for conv in track(conversations, description="Conversations"):
            folder = (args.store or Path(tmp)) / conv.sample_id
            (source,) = importer.parse(write_export(conv, folder), ImportOptions())
            owner = OwnerIdentity(names=(conv.owner,))
            clock = FixedClock(last_turn(conv))
            with MemoryStore.open(folder / "memory", embedder) as store:
                if store.count() == 0:
                    store.ingest(source, owner=owner, fmt="telegram")
                    ProfileBuilder(store, conv.owner, clock=clock).build(full=True)
                retrievers = {
                    name: (
                        VARIANTS[name][0],
                        Retriever(store, VARIANTS[name][1], owner=owner, clock=clock),
                    )
                    for name in args.variants
                }
                asked = [q for q in conv.questions if q.category in CATEGORIES and q.evidence]
                # Query vectors in one batch (as training synthesis does): the latency below is
                # the search itself; search_latency.py measures it with the embedding.
                for _, retriever in retrievers.values():
                    retriever.prime([q.text for q in asked])
                for q in asked:
                    wanted = {memory_id(source.source.key, e) for e in q.evidence}
                    for name, (mode, retriever) in retrievers.items():
                        start = time.perf_counter()
                        hits = retriever.search(q.text, k=max(KS), mode=mode)
                        if name == "hybrid":
                            latencies.append(time.perf_counter() - start)
                        ids = [h.memory.id for h in hits]
                        for k in KS:
                            share = len(wanted & set(ids[:k])) / len(wanted)
                            recalls[name][(q.category, k)].append(share)
                            recalls[name][(0, k)].append(share)

    figures: dict[str, object] = {"questions": len(recalls[args.variants[0]][(0, 10)])}
    for variant in args.variants:
        for (cat, k), values in sorted(recalls[variant].items()):
            name = "all" if cat == 0 else CATEGORIES[cat]
            figures[f"{variant}_{name}_recall@{k}"] = round(sum(values) / len(values), 4)
    if latencies:
        latencies.sort()
        figures["hybrid_p50_ms"] = round(1000 * latencies[len(latencies) // 2], 1)
        figures["hybrid_p95_ms"] = round(1000 * latencies[int(len(latencies) * 0.95)], 1)
    if args.plot:
        plot(recalls, args.plot)
        figures["plot"] = str(args.plot)
    print(json.dumps(figures))


def last_turn(conversation: Conversation) -> datetime:
    """When the conversation's last turn was written: "now" for its questions."""
    stamps = [int(m["date_unixtime"]) for m in conversation.export["messages"]]
    return datetime.fromtimestamp(max(stamps), tz=UTC)


def plot(recalls: dict[str, dict[tuple[int, int], list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for variant, values in recalls.items():
        recall = [sum(values[(0, k)]) / len(values[(0, k)]) for k in KS]
        axes[0].plot(KS, recall, "o-", label=variant)
    axes[0].set(title="LoCoMo turn recall@k (categories 1-4)", xlabel="k", ylabel="recall")
    axes[0].set_ylim(0, 1)
    axes[0].legend()
    cats = list(CATEGORIES)
    width = 0.8 / len(recalls)
    for i, (variant, values) in enumerate(recalls.items()):
        heights = [sum(values[(c, 10)]) / len(values[(c, 10)]) for c in cats]
        axes[1].bar([c + i * width for c in cats], heights, width, label=variant)
    axes[1].set_xticks([c + width * (len(recalls) - 1) / 2 for c in cats])
    axes[1].set_xticklabels([CATEGORIES[c] for c in cats])
    axes[1].set(title="recall@10 by category", ylabel="recall")
    axes[1].set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
