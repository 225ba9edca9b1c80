"""From the paths given to import to import units: one step for files and folders alike.

A file given by name is detected by content; a folder is walked, and every file in it is
detected by content exactly as if it had been named, so a WhatsApp chat or a Discord export in a
folder of notes is read as what it is. Notes found in a folder are named relative to that
folder. What is left out (hidden, empty, too large, a format no importer claims, a broken or
looping symbolic link, the same file reached twice) is returned as `Skipped` records with the
reason; a path that yields nothing to import at all is an error.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from memory.models import ParsedSource
from memory.sources.base import MEGABYTE, Importer, ImportFormatError, ImportOptions
from memory.sources.notes import MARKDOWN_SUFFIXES, TEXT_SUFFIXES, NotesImporter

# A file this small is read whole to tell whether it holds anything but white space.
BLANK_PEEK_BYTES = 4096
_BLANK = "\ufeff \t\r\n\v\f"


class SkipReason(StrEnum):
    """Why a path was left out of an import."""

    UNRECOGNISED = "not a format twin recognises"
    HIDDEN = "hidden"
    EMPTY = "empty file"
    TOO_LARGE = "too large"
    MISSING = "no such file or folder"
    DANGLING_LINK = "broken symbolic link"
    SYMLINK_LOOP = "symbolic link loop"
    NOT_A_FILE = "not a regular file"
    UNREADABLE = "cannot be read"
    DUPLICATE = "already found at another path"


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out of an import, and why."""

    path: Path
    reason: SkipReason
    detail: str = ""

    @property
    def problem(self) -> str:
        """The reason in words, with its detail."""
        return f"{self.reason} ({self.detail})" if self.detail else str(self.reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True)
class ImportUnit:
    """One file to parse with one importer. `root` is the folder a note's name is relative to:
    the folder that was walked, or a named file's own folder."""

    importer: Importer
    path: Path
    root: Path

    @property
    def format(self) -> str:
        return self.importer.name

    def parse(self, options: ImportOptions) -> list[ParsedSource]:
        """What the importer reads from the file; a file that cannot be read is an
        `ImportFormatError` too."""
        try:
            if isinstance(self.importer, NotesImporter):
                return [self.importer.parse_note(self.path, self.root, options)]
            return self.importer.parse(self.path, options)
        except OSError as exc:
            raise ImportFormatError(
                self.path, "", f"{SkipReason.UNREADABLE} ({exc.strerror or exc})"
            ) from exc


@dataclass
class Discovery:
    """The import units found under the paths given, in order, and what was left out."""

    units: list[ImportUnit] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class NothingToImport(ImportFormatError):
    """A path given to import yields nothing: it was refused itself, or every file under it
    was left out. `skipped` says what and why."""

    def __init__(self, path: Path, skipped: list[Skipped], problem: str) -> None:
        super().__init__(path, "", problem)
        self.skipped = skipped


def discover(
    paths: Iterable[Path],
    options: ImportOptions,
    importers: Sequence[Importer],
    *,
    forced: Importer | None = None,
) -> Discovery:
    """The import units under `paths`, each file claimed by the first of `importers` that
    detects it. With `forced`, a file named in `paths` is read with that importer without
    detection, and a folder's files only when that importer detects them.

    Raises `NothingToImport` for a path that cannot be imported at all (missing, a broken
    link, empty, too large, an unrecognised file, a folder where every file was left out).
    """
    walk = _Walk(options, (forced,) if forced else tuple(importers), forced)
    for path in paths:
        walk.argument(path)
    return walk.found


def claim(path: Path, importers: Sequence[Importer]) -> Importer | None:
    """The first importer that detects `path`, or None."""
    return next((importer for importer in importers if importer.detect(path)), None)


def inspect_path(path: Path) -> os.stat_result | Skipped:
    """The path's status (following links), or why it cannot be used."""
    try:
        return path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return Skipped(path, SkipReason.DANGLING_LINK, f"points to {os.readlink(path)}")
        return Skipped(path, SkipReason.MISSING)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(path, SkipReason.SYMLINK_LOOP)
        return Skipped(path, SkipReason.UNREADABLE, exc.strerror or str(exc))


def is_blank(path: Path, status: os.stat_result) -> bool:
    """True for a file with nothing in it but white space (or a byte-order mark)."""
    if status.st_size == 0:
        return True
    if status.st_size > BLANK_PEEK_BYTES:
        return False
    with path.open("rb") as handle:
        head = handle.read(BLANK_PEEK_BYTES)
    return not head.decode("utf-8", errors="replace").strip(_BLANK)


def summarise(skipped: Sequence[Skipped]) -> str:
    """'3 files left out: 2 hidden, 1 empty file'."""
    counts = Counter(record.reason for record in skipped)
    parts = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
    noun = "file or folder" if len(skipped) == 1 else "files or folders"
    return f"{len(skipped)} {noun} left out: {parts}"


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False  # inspected, and reported, when its turn comes


def _megabytes(size: int) -> str:
    value = size / MEGABYTE
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"


class _Walk:
    """The state of one discovery: what has been found, and which files and folders were seen
    (so that the same file reached twice, through a link or two arguments, is read once)."""

    def __init__(
        self, options: ImportOptions, importers: Sequence[Importer], forced: Importer | None
    ) -> None:
        self.options = options
        self.importers = importers
        self.forced = forced
        self.found = Discovery()
        self._files: dict[str, Path] = {}
        self._folders: dict[str, Path] = {}

    def argument(self, path: Path) -> None:
        status = inspect_path(path)
        if isinstance(status, Skipped):
            raise NothingToImport(path, [status], status.problem)
        if stat.S_ISDIR(status.st_mode):
            self._folder_argument(path)
            return
        outcome = self._file(path, path.parent, status, named=True)
        if isinstance(outcome, ImportUnit):
            self.found.units.append(outcome)
        elif outcome.reason is SkipReason.DUPLICATE:
            self.found.skipped.append(outcome)  # named twice: read once, and say so
        else:
            raise NothingToImport(path, [outcome], outcome.problem)

    def _folder_argument(self, folder: Path) -> None:
        real = os.path.realpath(folder)
        if real in self._folders:
            self.found.skipped.append(
                Skipped(folder, SkipReason.DUPLICATE, f"same folder as {self._folders[real]}")
            )
            return
        self._folders[real] = folder
        units_before, skipped_before = len(self.found.units), len(self.found.skipped)
        self._walk(folder, folder, {real: folder})
        if len(self.found.units) > units_before:
            return
        mine = self.found.skipped[skipped_before:]
        if any(record.reason is SkipReason.DUPLICATE for record in mine):
            return  # its files come in through another path given
        problem = f"nothing to import: {summarise(mine)}" if mine else "the folder is empty"
        raise NothingToImport(folder, mine, problem)

    def _walk(self, folder: Path, root: Path, ancestors: dict[str, Path]) -> None:
        try:
            with os.scandir(folder) as scan:
                # a folder's own files first, then its subfolders, each by name (as os.walk)
                entries = sorted(scan, key=lambda entry: (_is_folder(entry), entry.name))
        except OSError as exc:
            self._skip(Skipped(folder, SkipReason.UNREADABLE, exc.strerror or str(exc)))
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                self._skip(Skipped(path, SkipReason.HIDDEN))
                continue
            status = inspect_path(path)
            if isinstance(status, Skipped):
                self._skip(status)
            elif stat.S_ISDIR(status.st_mode):
                self._subfolder(path, root, ancestors)
            else:
                outcome = self._file(path, root, status, named=False)
                if isinstance(outcome, ImportUnit):
                    self.found.units.append(outcome)
                else:
                    self._skip(outcome)

    def _subfolder(self, path: Path, root: Path, ancestors: dict[str, Path]) -> None:
        real = os.path.realpath(path)
        if real in ancestors:
            self._skip(Skipped(path, SkipReason.SYMLINK_LOOP, f"leads back to {ancestors[real]}"))
        elif real in self._folders:
            self._skip(Skipped(path, SkipReason.DUPLICATE, f"same folder as {self._folders[real]}"))
        else:
            self._folders[real] = path
            self._walk(path, root, {**ancestors, real: path})

    def _file(
        self, path: Path, root: Path, status: os.stat_result, *, named: bool
    ) -> ImportUnit | Skipped:
        if not stat.S_ISREG(status.st_mode):
            return Skipped(path, SkipReason.NOT_A_FILE)  # a pipe or a device would never end
        real = os.path.realpath(path)
        if real in self._files:
            return Skipped(path, SkipReason.DUPLICATE, f"same file as {self._files[real]}")
        try:
            if is_blank(path, status):
                return Skipped(path, SkipReason.EMPTY)
            importer = self.forced if named and self.forced else claim(path, self.importers)
        except OSError as exc:
            return Skipped(path, SkipReason.UNREADABLE, exc.strerror or str(exc))
        if importer is None:
            detail = f"not a {self.forced.name} file" if self.forced else ""
            return Skipped(path, SkipReason.UNRECOGNISED, detail)
        limit, what = self._limit(importer, path)
        if limit is not None and status.st_size > limit:
            return Skipped(
                path,
                SkipReason.TOO_LARGE,
                f"{_megabytes(status.st_size)} MB; the limit for {what} is {_megabytes(limit)} MB",
            )
        self._files[real] = path
        return ImportUnit(importer, path, root)

    def _limit(self, importer: Importer, path: Path) -> tuple[int | None, str]:
        """The size limit for this file and what it is called."""
        if isinstance(importer, NotesImporter) and path.suffix.lower() in (
            MARKDOWN_SUFFIXES | TEXT_SUFFIXES
        ):
            return self.options.max_note_bytes, "a text note"
        return self.options.max_file_bytes, "a file"

    def _skip(self, record: Skipped) -> None:
        self.found.skipped.append(record)
