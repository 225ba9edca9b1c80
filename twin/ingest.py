"""From files on disk to L0 memory: pick the importer, parse, then store with the right owner and
visibility. Parsing every path happens before anything is stored, so one malformed file in a
batch stops the batch with nothing written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memory.embed import SentenceTransformerEmbedder
from memory.models import ParsedSource, Visibility
from memory.sources import ImportOptions, detect_format, get_importer
from memory.store import IngestReport, MemoryStore, Progress
from twin.config import Settings


@dataclass(frozen=True)
class ParsedPath:
    path: Path
    format: str
    sources: list[ParsedSource]


def open_store(settings: Settings) -> MemoryStore:
    """The twin's L0 store, with the configured embedding model (loaded on first use)."""
    embedder = SentenceTransformerEmbedder(settings.memory.embedding_model)
    return MemoryStore.open(settings.paths.memory_dir, embedder)


def parse_paths(paths: list[Path], settings: Settings, fmt: str = "auto") -> list[ParsedPath]:
    """Parse every path (raising `ImportFormatError` on the first malformed one)."""
    options = ImportOptions(
        chunk_chars=settings.memory.chunk_chars, chunk_overlap=settings.memory.chunk_overlap
    )
    parsed = []
    for path in paths:
        importer = detect_format(path) if fmt == "auto" else get_importer(fmt)
        parsed.append(ParsedPath(path, importer.name, importer.parse(path, options)))
    return parsed


def store_parsed(
    store: MemoryStore,
    parsed: ParsedPath,
    settings: Settings,
    visibility: Visibility | None = None,
    progress: Progress | None = None,
) -> list[IngestReport]:
    """Store one parsed path: each of its sources in its own transaction.

    Memories without a visibility of their own get `visibility` if given, else the configured
    default for the format; `visibility`, when given, also caps the ones that do have their own.
    """
    default = visibility or settings.memory.visibility_for(parsed.format)
    owner = settings.owner.identity()
    return [
        store.ingest(
            source,
            owner=owner,
            visibility=default,
            cap=visibility,
            fmt=parsed.format,
            progress=progress,
        )
        for source in parsed.sources
    ]
