"""Importers, one module per export format, found by name or detected from a file's content."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path

from memory.sources.base import DateOrder, Importer, ImportFormatError, ImportOptions
from memory.sources.discord import DiscordImporter
from memory.sources.discover import (
    Discovery,
    ImportUnit,
    NothingToImport,
    Skipped,
    SkipReason,
    claim,
    discover,
    inspect_path,
    is_blank,
)
from memory.sources.notes import NotesImporter
from memory.sources.telegram import TelegramImporter
from memory.sources.whatsapp import WhatsAppImporter

IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (TelegramImporter(), DiscordImporter(), WhatsAppImporter(), NotesImporter())
}
# Chat exports are checked first: a file no chat format claims may still be a note.
DETECTION_ORDER: tuple[Importer, ...] = tuple(
    IMPORTERS[name] for name in ("telegram", "discord", "whatsapp", "notes")
)

__all__ = [
    "DETECTION_ORDER",
    "IMPORTERS",
    "DateOrder",
    "Discovery",
    "ImportFormatError",
    "ImportOptions",
    "ImportUnit",
    "Importer",
    "NothingToImport",
    "SkipReason",
    "Skipped",
    "detect_format",
    "find_imports",
    "get_importer",
]


def get_importer(name: str) -> Importer:
    try:
        return IMPORTERS[name]
    except KeyError:
        known = ", ".join(sorted(IMPORTERS))
        raise ValueError(f"unknown format {name!r}; known formats: {known}") from None


def detect_format(path: Path) -> Importer:
    """The importer whose format `path` is in, judged by content (not only by file name).

    Chat exports are checked first; a folder or a text file no chat format claims is notes.
    """
    status = inspect_path(path)
    if isinstance(status, Skipped):
        raise ImportFormatError(path, "", status.problem)
    if stat.S_ISREG(status.st_mode) and is_blank(path, status):
        raise ImportFormatError(path, "", str(SkipReason.EMPTY))
    importer = claim(path, DETECTION_ORDER)
    if importer is None:
        raise ImportFormatError(
            path, "", "not a format twin recognises (Telegram/Discord JSON, WhatsApp .txt, notes)"
        )
    return importer


def find_imports(paths: Iterable[Path], options: ImportOptions, fmt: str = "auto") -> Discovery:
    """The import units under `paths` (files and folders), each file detected by content, or,
    with `fmt`, read as that format. See `memory.sources.discover.discover`."""
    if fmt == "auto":
        return discover(paths, options, DETECTION_ORDER)
    forced = get_importer(fmt)
    return discover(paths, options, (forced,), forced=forced)
