"""Reading a large text note: seconds and peak Python memory to find and chunk it (no embedding).

The peak is what the parse allocates, the chunks it returns included.

    python benchmarks/large_note.py examples/persona/notes --megabytes 50

The note is the Markdown of the given notes folder, repeated (each copy numbered, so every chunk
is distinct) until it is that large. The note's size against the default `max_note_mb` limit is
reported too. Ends by printing one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.models import ParsedSource
from memory.sources import ImportOptions, find_imports
from memory.sources.base import MEGABYTE
from twin.config import MemorySettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes", type=Path, help="a folder of Markdown notes (source of text)")
    parser.add_argument("--megabytes", type=float, default=50.0)
    args = parser.parse_args()

    sample = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(args.notes.rglob("*.md")))
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "huge.md"
        size = 0
        with note.open("w", encoding="utf-8") as out:
            copy = 0
            while size < args.megabytes * MEGABYTE:
                copy += 1
                # every paragraph numbered: no chunk repeats another (repeats are one memory)
                size += out.write(sample.replace("\n\n", f"\n\n({copy}) ") + "\n\n")
        size = note.stat().st_size

        started = time.perf_counter()
        chunks = len(parse(note).drafts)
        seconds = time.perf_counter() - started
        tracemalloc.start()  # a second run, traced: tracing slows it down several times
        parse(note)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    limit = MemorySettings().max_note_mb
    print(
        json.dumps(
            {
                "note_mb": round(size / MEGABYTE, 1),
                "chunks": chunks,
                "parse_s": round(seconds, 2),
                "peak_python_mb": round(peak / MEGABYTE, 1),
                "peak_over_size": round(peak / size, 2),
                "default_max_note_mb": limit,
                "refused_by_default": size > limit * MEGABYTE,
            }
        )
    )


def parse(note: Path) -> ParsedSource:
    """The note found and parsed as `twin ingest` does, without its size limit."""
    (unit,) = find_imports([note], ImportOptions()).units
    (parsed,) = unit.parse(ImportOptions())
    return parsed


if __name__ == "__main__":
    main()
