"""From files on disk to L0 memory: find what to import, parse it, then store it with the right
owner and visibility.

Finding and parsing every path happens before anything is stored, so one malformed file in a
batch stops the batch with nothing written. A file no importer claims inside a folder is left
out and listed (`ImportPlan.skipped`); a file that claims a format but is broken is an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from core.progress import Progress, ProgressReport
from memory.embed import SentenceTransformerEmbedder
from memory.models import Kind, OwnerIdentity, ParsedSource, SourceRef, Visibility
from memory.sources import DateOrder, ImportOptions, ImportUnit, Skipped, find_imports
from memory.sources.notes import KEY_PREFIX as NOTES_KEY_PREFIX
from memory.store import IngestReport, MemoryStore
from twin.config import OwnerSettings, Settings

log = logging.getLogger(__name__)
# How many of the most frequent authors an owner warning names.
AUTHORS_SHOWN = 5


@dataclass(frozen=True)
class ParsedPath:
    """What one import unit gave: a chat export's sources, or every note of one folder.
    `path` is the export file, or for notes the folder their names are relative to."""

    path: Path
    format: str
    sources: list[ParsedSource]

    @property
    def warnings(self) -> list[str]:
        """What the importer had to assume, with the source it is about."""
        return [f"{s.source.name}: {w}" for s in self.sources for w in s.warnings]


@dataclass(frozen=True)
class ImportPlan:
    """Everything parsed from the paths given, and what was left out of them and why."""

    parsed: list[ParsedPath]
    skipped: list[Skipped]


@dataclass(frozen=True)
class OwnerNotFound:
    """A chat in which none of the messages is recognised as the owner's."""

    source: str
    messages: int
    authors: tuple[str, ...]

    def __str__(self) -> str:
        which = (
            "its one message is not"
            if self.messages == 1
            else f"none of its {self.messages} messages is"
        )
        return f"{self.source}: {which} recognised as yours (written by {', '.join(self.authors)})"


def open_store(settings: Settings) -> MemoryStore:
    """The twin's L0 store, with the configured embedding model (loaded on first use)."""
    embedder = SentenceTransformerEmbedder(settings.memory.embedding_model)
    return MemoryStore.open(
        settings.paths.memory_dir, embedder, write_wait=settings.memory.write_wait_s
    )


def import_options(settings: Settings, date_order: DateOrder | None = None) -> ImportOptions:
    """The importers' knobs from the settings (chunking, size limits)."""
    memory = settings.memory
    return ImportOptions(
        chunk_chars=memory.chunk_chars,
        chunk_overlap=memory.chunk_overlap,
        max_file_bytes=memory.max_file_bytes,
        max_note_bytes=memory.max_note_bytes,
        date_order=date_order,
    )


def plan_import(
    paths: list[Path],
    settings: Settings,
    fmt: str = "auto",
    date_order: DateOrder | None = None,
) -> ImportPlan:
    """Find and parse everything under `paths`, files and folders alike, storing nothing.

    Raises `ImportFormatError` on the first malformed file, and its `NothingToImport` kind for
    a path that yields nothing (missing, empty, too large, unrecognised, or a folder whose files
    were all left out).
    """
    options = import_options(settings, date_order)
    found = find_imports(paths, options, fmt)
    return ImportPlan(_parse_units(found.units, options), found.skipped)


def parse_paths(paths: list[Path], settings: Settings, fmt: str = "auto") -> list[ParsedPath]:
    """`plan_import`'s parsed paths; what was left out is logged as a warning."""
    plan = plan_import(paths, settings, fmt)
    for record in plan.skipped:
        log.warning("left out %s", record)
    return plan.parsed


def _parse_units(units: list[ImportUnit], options: ImportOptions) -> list[ParsedPath]:
    """Each unit parsed; the notes of one folder together, where its first note was found."""
    parsed: list[ParsedPath] = []
    notes: dict[Path, ParsedPath] = {}
    for unit in units:
        sources = unit.parse(options)
        if unit.format != "notes":
            parsed.append(ParsedPath(unit.path, unit.format, sources))
        elif unit.root in notes:
            notes[unit.root].sources.extend(sources)
        else:
            notes[unit.root] = ParsedPath(unit.root, unit.format, sources)
            parsed.append(notes[unit.root])
    return parsed


def owner_unset(settings: Settings) -> bool:
    """True when nothing tells who the owner is: the placeholder name, no aliases, no ids."""
    owner = settings.owner
    return (
        owner.name == OwnerSettings.model_fields["name"].default
        and not owner.aliases
        and not owner.ids
    )


def unrecognised_owner(parsed: list[ParsedPath], owner: OwnerIdentity) -> list[OwnerNotFound]:
    """The chats in which no message is recognised as the owner's (by name, alias or id)."""
    found: list[OwnerNotFound] = []
    for item in parsed:
        for source in item.sources:
            # A draft that already says whose it is (a note, a bot's message) needs no owner.
            if any(d.is_owner for d in source.drafts):
                continue
            open_drafts = [d for d in source.drafts if d.kind is Kind.CHAT and d.is_owner is None]
            if not open_drafts or any(owner.matches(d.author, d.author_id) for d in open_drafts):
                continue
            authors = Counter(d.author or d.author_id or "?" for d in open_drafts)
            found.append(
                OwnerNotFound(
                    source.source.name,
                    len(open_drafts),
                    tuple(name for name, _ in authors.most_common(AUTHORS_SHOWN)),
                )
            )
    return found


def store_parsed(
    store: MemoryStore,
    parsed: ParsedPath,
    settings: Settings,
    *,
    ceiling: Visibility | None = None,
    default_visibility: Visibility | None = None,
    progress: Progress | None = None,
) -> list[IngestReport]:
    """Store one parsed path: each of its sources in its own transaction.

    Memories without a visibility of their own get `default_visibility` if given (which may be
    wider than the configured one: the caller asked for it), else the configured default for
    the format. `ceiling`, when given, is the widest any of them may be: it narrows, never
    widens, whether the visibility came from the default or from a note's front matter.

    Notes are matched to the notes already stored first (`match_note_sources`), so a copied or
    moved notes folder adds nothing twice.
    """
    default = default_visibility or settings.memory.visibility_for(parsed.format)
    owner = settings.owner.identity()
    sources = parsed.sources
    if parsed.format == "notes":
        sources = match_note_sources(store, sources)
    reports = []
    for source in sources:
        if isinstance(progress, ProgressReport):
            progress.describe(f"Embedding {source.source.name}")
        reports.append(
            store.ingest(
                source,
                owner=owner,
                visibility=default,
                cap=ceiling,
                fmt=parsed.format,
                progress=progress,
            )
        )
    return reports


def match_note_sources(store: MemoryStore, parsed: list[ParsedSource]) -> list[ParsedSource]:
    """The parsed notes, each under the key of the stored note it is, or a new unique key.

    A parsed note is a stored note when (1) it is the same file (its resolved path), or, by its
    path relative to the folder it was found in (a stored note's path must end with it):
    (2) it holds the same text (chunks forgotten since aside), e.g. the folder copied
    elsewhere; or (3) the stored note's file is gone and they share at least half their
    chunks, e.g. the folder moved and then edited. Homes whose notes are keyed by their
    absolute path (``notes:/home/…``) match the same way. Anything else is a new note, whose
    key is ``notes:<relative path>`` (with ``#2``, ``#3``… when another note has it).
    """
    stored = [ref for ref, _ in store.sources() if ref.kind == "notes"]
    by_path = {ref.path: ref for ref in stored}
    by_name: dict[str, list[SourceRef]] = {}
    for ref in stored:
        by_name.setdefault(Path(ref.path).name, []).append(ref)
    taken = {ref.key for ref in stored}
    claimed: set[str] = set()
    matched: dict[int, SourceRef] = {}
    for index, source in enumerate(parsed):
        ref = by_path.get(source.source.path)
        if ref is not None and ref.key not in claimed:
            matched[index] = ref
            claimed.add(ref.key)
    out = []
    for index, source in enumerate(parsed):
        relative = Path(source.source.key.removeprefix(NOTES_KEY_PREFIX)).parts
        candidates = by_name.get(relative[-1], [])
        ref = matched.get(index) or _same_note(store, source, relative, candidates, claimed)
        if ref is not None:
            claimed.add(ref.key)
            out.append(_rekey(source, ref.key, ref.path if _kept_path(source, ref) else None))
            continue
        key = _unique_key(source.source.key, taken | claimed)
        claimed.add(key)
        out.append(_rekey(source, key, None))
    return out


def _same_note(
    store: MemoryStore,
    source: ParsedSource,
    relative: tuple[str, ...],
    candidates: list[SourceRef],
    claimed: set[str],
) -> SourceRef | None:
    """Among stored notes with the parsed note's file name, the one whose path ends with its
    relative path and that holds its text (rules 2 and 3)."""
    parsed_ids = {d.source_id for d in source.drafts}
    moved: SourceRef | None = None
    for ref in candidates:
        if ref.key in claimed or Path(ref.path).parts[-len(relative) :] != relative:
            continue
        memories = store.get_many(store.source_memory_ids(ref.key))
        stored_ids = {m.source_id for m in memories if m.source_key == ref.key}
        new = [d for d in source.drafts if d.source_id not in stored_ids]
        if stored_ids <= parsed_ids and all(store.is_forgotten(d.text) for d in new):
            return ref
        shared = len(parsed_ids & stored_ids)
        mostly_same = shared and 2 * shared >= max(len(parsed_ids), len(stored_ids))
        if moved is None and mostly_same and not Path(ref.path).exists():
            moved = ref
    return moved


def _kept_path(source: ParsedSource, ref: SourceRef) -> bool:
    """Whether a matched note keeps the stored path: when that file is still there and is not
    this one (a copy must not take the original's place)."""
    return ref.path != source.source.path and Path(ref.path).exists()


def _unique_key(key: str, taken: set[str]) -> str:
    if key not in taken:
        return key
    number = 2
    while f"{key}#{number}" in taken:
        number += 1
    return f"{key}#{number}"


def _rekey(source: ParsedSource, key: str, path: str | None) -> ParsedSource:
    """The parsed note under `key` (and the stored `path`, if given)."""
    old = source.source.key
    if key == old and path is None:
        return source
    ref = replace(source.source, key=key, path=path or source.source.path)
    drafts = [replace(d, thread=key) if d.thread == old else d for d in source.drafts]
    return replace(source, source=ref, drafts=drafts)
