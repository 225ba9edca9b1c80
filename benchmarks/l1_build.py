"""L1 build time: a full build against an incremental one after 1% new memories.

    python benchmarks/l1_build.py examples/persona --locomo ../shared/data/locomo-dev.json \
        --memories 20000 --store .bench/l1

Two data sets: (a) the sample persona, (b) `--memories` LoCoMo turns in one Telegram chat (see
`benchmarks/ingest_throughput.py`), imported as friends-visible so that two scopes (owner and
friends) are built. For each, the newest 1% of chat messages is held out: the other 99% is
imported once into a base store under `--store` (reused by later runs, since embedding 20k
memories takes minutes), copied to a scratch store, and built in full; then the held-out 1% is
imported and built incrementally, and finally everything is built in full again. Builds are
offline (pattern facts, keyword topics, template bios). Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_throughput import big_conversation
from benchmarks.locomo import write_export
from core.progress import progress_bar
from memory.embed import SentenceTransformerEmbedder
from memory.models import OwnerIdentity, ParsedSource, Visibility
from memory.profile import BuildReport, ProfileBuilder
from memory.sources import ImportOptions, get_importer
from memory.store import MemoryStore
from twin.config import load_settings
from twin.ingest import parse_paths

NEW_SHARE = 0.01


@dataclass(frozen=True)
class Batch:
    """What to import: parsed sources, with who the owner is and the default visibility."""

    sources: list[ParsedSource]
    owner: OwnerIdentity
    visibility: dict[str, Visibility]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persona", type=Path, help="the sample persona folder")
    parser.add_argument("--locomo", type=Path, help="a LoCoMo JSON file (for the big store)")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--store", type=Path, default=Path(".bench/l1"), help="base stores")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder()
    figures = {"persona": measure("persona", persona_batch(args.persona), args.store, embedder)}
    if args.locomo:
        name = f"locomo-{args.memories}"
        batch = locomo_batch(args.locomo, args.memories)
        figures["locomo"] = measure(name, batch, args.store, embedder)
    print(json.dumps(figures))


def persona_batch(persona: Path) -> Batch:
    """The persona as `twin demo` imports it (notes private, chats friends, from twin.toml)."""
    settings = load_settings(persona)
    folders = sorted(p for p in persona.iterdir() if p.is_dir())
    paths = [f if f.name == "notes" else p for f in folders for p in _inputs(f)]
    parsed = parse_paths(list(dict.fromkeys(paths)), settings)
    return Batch(
        sources=[s for item in parsed for s in item.sources],
        owner=settings.owner.identity(),
        visibility={
            s.source.key: settings.memory.visibility_for(item.format)
            for item in parsed
            for s in item.sources
        },
    )


def _inputs(folder: Path) -> list[Path]:
    return (
        [folder] if folder.name == "notes" else sorted(p for p in folder.iterdir() if p.is_file())
    )


def locomo_batch(path: Path, n: int) -> Batch:
    conversation = big_conversation(path, n)
    with tempfile.TemporaryDirectory() as tmp:
        export = write_export(conversation, Path(tmp) / "export")
        (source,) = get_importer("telegram").parse(export, ImportOptions())
    return Batch(
        sources=[source],
        owner=OwnerIdentity(names=(conversation.owner,)),
        visibility={source.source.key: Visibility.FRIENDS},
    )


def split(batch: Batch) -> tuple[list[ParsedSource], list[ParsedSource]]:
    """The batch without its newest 1% of chat messages, and those messages. Notes are never
    held out: a notes import replaces what it does not contain."""
    chats = [d for s in batch.sources if not s.replaces_missing for d in s.drafts]
    chats.sort(key=lambda d: (d.timestamp is not None, d.timestamp))
    held = {id(d) for d in chats[len(chats) - max(1, round(len(chats) * NEW_SHARE)) :]}
    base = [
        ParsedSource(s.source, [d for d in s.drafts if id(d) not in held], s.replaces_missing)
        for s in batch.sources
    ]
    new = [
        ParsedSource(s.source, [d for d in s.drafts if id(d) in held])
        for s in batch.sources
        if any(id(d) in held for d in s.drafts)
    ]
    return base, new


def ingest(store: MemoryStore, sources: list[ParsedSource], batch: Batch) -> int:
    added = 0
    with progress_bar("Embedding") as bar:
        for source in sources:
            visibility = batch.visibility[source.source.key]
            report = store.ingest(source, owner=batch.owner, visibility=visibility, progress=bar)
            added += report.added
    return added


def measure(name: str, batch: Batch, root: Path, embedder: SentenceTransformerEmbedder) -> dict:
    base_sources, new_sources = split(batch)
    base_dir = root / name
    if not (base_dir / "memory.sqlite").exists():
        with MemoryStore.open(base_dir, embedder) as store:
            ingest(store, base_sources, batch)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(shutil.copytree(base_dir, Path(tmp) / name))
        with MemoryStore.open(work, embedder) as store:
            owner = batch.owner.names[0]
            first = ProfileBuilder(store, owner).build(full=True)
            added = ingest(store, new_sources, batch)
            start = time.perf_counter()
            incremental = ProfileBuilder(store, owner).build()
            incremental_s = time.perf_counter() - start
            start = time.perf_counter()
            full = ProfileBuilder(store, owner).build(full=True)
            full_s = time.perf_counter() - start
            total = store.count()
    return {
        "memories": total,
        "new_memories": added,
        "full_s": round(full_s, 2),
        "incremental_s": round(incremental_s, 2),
        "speedup": round(full_s / incremental_s, 1) if incremental_s else None,
        "first_full_s": round(first.seconds, 2),
        "full": summary(full),
        "incremental": summary(incremental),
    }


def summary(report: BuildReport) -> dict:
    data = report.to_json()
    return {
        "fact_memories": data["fact_memories"],
        "facts_added": data["facts_added"],
        "facts_total": data["facts_total"],
        "scopes": {
            scope: {k: v for k, v in stats.items() if k != "memories"}
            for scope, stats in data["scopes"].items()
            if stats["memories"]
        },
        "timings": data["timings"],
    }


if __name__ == "__main__":
    main()
