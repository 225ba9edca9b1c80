"""Importers, one module per export format, found by name or detected from a file's content."""

from __future__ import annotations

from pathlib import Path

from memory.sources.base import Importer, ImportFormatError, ImportOptions
from memory.sources.discord import DiscordImporter
from memory.sources.notes import NotesImporter
from memory.sources.telegram import TelegramImporter
from memory.sources.whatsapp import WhatsAppImporter

IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (TelegramImporter(), DiscordImporter(), WhatsAppImporter(), NotesImporter())
}

__all__ = [
    "IMPORTERS",
    "ImportFormatError",
    "ImportOptions",
    "Importer",
    "detect_format",
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
    if not path.exists():
        raise ImportFormatError(path, "", "no such file or folder")
    for name in ("telegram", "discord", "whatsapp", "notes"):
        importer = IMPORTERS[name]
        if importer.detect(path):
            return importer
    raise ImportFormatError(
        path, "", "not a format twin recognises (Telegram/Discord JSON, WhatsApp .txt, notes)"
    )
