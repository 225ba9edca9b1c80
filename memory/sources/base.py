"""What every importer is: something that recognises a format and parses it into memories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from memory.models import ParsedSource


class ImportFormatError(Exception):
    """An export could not be read. Names the file, where in it (line, message id) and what."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        location = f"{self.path}, {where}" if where else self.path
        super().__init__(f"{location}: {problem}")


@dataclass(frozen=True)
class ImportOptions:
    """Knobs importers share. Chunk sizes apply to documents (notes, PDFs)."""

    chunk_chars: int = 900
    chunk_overlap: int = 120


class Importer(Protocol):
    """One export format. `detect` is cheap (peeks at a file), `parse` reads it whole.

    `parse` must not write anything; it raises `ImportFormatError` on malformed input, so that a
    bad file is reported before any memory is stored.
    """

    name: str

    def detect(self, path: Path) -> bool: ...

    def parse(self, path: Path, options: ImportOptions) -> list[ParsedSource]: ...
