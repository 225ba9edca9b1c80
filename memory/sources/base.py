"""What every importer is: something that recognises a format and parses it into memories."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from memory.models import ParsedSource

MEGABYTE = 1024 * 1024


class ImportFormatError(Exception):
    """An export could not be read. Names the file, where in it (line, message id) and what."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        location = f"{self.path}, {where}" if where else self.path
        super().__init__(f"{location}: {problem}")


def load_json_export(file: Path) -> Any:
    """The JSON in an export file (UTF-8, a byte-order mark allowed); `ImportFormatError` names
    the byte, or the line and column, where it is not."""
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(file, f"byte {exc.start}", "not UTF-8 text") from exc
    if not text.strip():
        raise ImportFormatError(file, "", "empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(
            file, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}"
        ) from exc


class DateOrder(Enum):
    """How a chat export without a date format of its own writes dates (WhatsApp: the phone's
    locale)."""

    DAY_FIRST = "day-first"
    MONTH_FIRST = "month-first"
    YEAR_FIRST = "year-first"


@dataclass(frozen=True)
class ImportOptions:
    """Knobs importers share. Chunk sizes apply to documents (notes, PDFs).

    The size limits are checked when files are found (see `memory.sources.discover`): a Markdown
    or text note above `max_note_bytes`, or any other file above `max_file_bytes`, is refused.
    None means no limit. `date_order` settles how ambiguous chat dates are read; None decides
    from the file.
    """

    chunk_chars: int = 900
    chunk_overlap: int = 120
    max_file_bytes: int | None = None
    max_note_bytes: int | None = None
    date_order: DateOrder | None = None


class Importer(Protocol):
    """One export format. `detect` is cheap (peeks at a file), `parse` reads it whole.

    `parse` must not write anything; it raises `ImportFormatError` on malformed input, so that a
    bad file is reported before any memory is stored.
    """

    name: str

    def detect(self, path: Path) -> bool: ...

    def parse(self, path: Path, options: ImportOptions) -> list[ParsedSource]: ...
