"""Notes: Markdown (Obsidian-style), plain text and PDF files, from a folder or one file.

Each file becomes one source, chunked on its structure: headings, then paragraphs packed up to
``chunk_chars``. Every chunk starts with a breadcrumb line ("Title › Heading › Subheading") so it
stands alone in retrieval. Markdown may open with YAML front matter (title, date, tags,
visibility).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef, Visibility, content_hash
from memory.sources.base import ImportFormatError, ImportOptions
from memory.sources.whatsapp import looks_like_whatsapp

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt"})
PDF_SUFFIXES = frozenset({".pdf"})
NOTE_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | PDF_SUFFIXES
BREADCRUMB_SEPARATOR = " › "
SOURCE_ID_CHARS = 16

_HEADING = re.compile(r"^(?P<marks>#{1,6})\s+(?P<text>.+?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMBED = re.compile(r"!\[\[[^\]]*\]\]")
_WIKI_LINK = re.compile(r"\[\[(?P<target>[^\]|]*)(?:\|(?P<alias>[^\]]*))?\]\]")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_FRONT_MATTER_END = frozenset({"---", "..."})


class NotesImporter:
    """Reads a notes folder (recursively) or a single note file."""

    name = "notes"

    def detect(self, path: Path) -> bool:
        """A folder, or a .md/.markdown/.txt/.pdf file that is not a WhatsApp chat."""
        if path.is_dir():
            return True
        if not path.is_file() or path.suffix.lower() not in NOTE_SUFFIXES:
            return False
        return not looks_like_whatsapp(path)

    def parse(self, path: Path, options: ImportOptions) -> list[ParsedSource]:
        """One ParsedSource per note file, each replacing its file's earlier chunks."""
        if path.is_file():
            if path.suffix.lower() not in NOTE_SUFFIXES:
                raise ImportFormatError(
                    path, "", "not a note (expected .md, .markdown, .txt, .pdf)"
                )
            files = [path]
        elif path.is_dir():
            files = list(_note_files(path))
        else:
            raise ImportFormatError(path, "", "no such file or folder")
        return [_parse_file(file, options) for file in files]


def _note_files(root: Path) -> Iterator[Path]:
    """Note files under `root` in a stable order, leaving out hidden files and folders."""
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and Path(name).suffix.lower() in NOTE_SUFFIXES:
                yield Path(folder) / name


@dataclass(frozen=True)
class FrontMatter:
    """What a note's YAML front matter says about it."""

    title: str | None = None
    timestamp: datetime | None = None
    tags: tuple[str, ...] = ()
    visibility: Visibility | None = None


@dataclass
class Section:
    """The text under one heading: its heading path and its paragraphs."""

    headings: tuple[str, ...]
    paragraphs: list[str] = field(default_factory=list)


def _parse_file(file: Path, options: ImportOptions) -> ParsedSource:
    kind, title, front, sections = _read_note(file)
    resolved = file.resolve()
    key = f"notes:{resolved}"
    timestamp = front.timestamp or _date_from_name(file.stem) or _mtime(file)
    drafts: list[MemoryDraft] = []
    seen: set[str] = set()
    for section, chunk in _chunks(title, sections, options):
        source_id = content_hash(chunk)[:SOURCE_ID_CHARS]
        if source_id in seen:
            continue  # the same text twice in one note is one memory
        seen.add(source_id)
        meta = {"title": title}
        if front.tags:
            meta["tags"] = ",".join(front.tags)
        if section.headings:
            meta["heading"] = section.headings[-1]
        drafts.append(
            MemoryDraft(
                text=chunk,
                kind=kind,
                source_id=source_id,
                timestamp=timestamp,
                thread=key,
                visibility=front.visibility,
                is_owner=True,
                meta=meta,
            )
        )
    source = SourceRef(key=key, kind="notes", name=title, path=str(resolved))
    return ParsedSource(
        source=source, drafts=drafts, replaces_missing=True, skipped=0 if drafts else 1
    )


def _read_note(file: Path) -> tuple[Kind, str, FrontMatter, list[Section]]:
    """What kind of memory the file gives, its title, front matter and sections."""
    if file.suffix.lower() in PDF_SUFFIXES:
        title, sections = _read_pdf(file)
        return Kind.DOCUMENT, title or file.stem, FrontMatter(), sections
    text = _read_text(file)
    if file.suffix.lower() not in MARKDOWN_SUFFIXES:
        return Kind.NOTE, file.stem, FrontMatter(), [Section((), _paragraphs(text.split("\n")))]
    front, body = _split_front_matter(file, text)
    title, sections = _markdown_sections(_render_links(body))
    return Kind.NOTE, front.title or title or file.stem, front, sections


def _chunks(
    title: str, sections: list[Section], options: ImportOptions
) -> Iterator[tuple[Section, str]]:
    """Each section's chunks, every one opening with its breadcrumb line."""
    for section in sections:
        crumb = BREADCRUMB_SEPARATOR.join((title, *section.headings))
        # Keep whole chunks near chunk_chars, but never starve the body of a deep heading.
        budget = max(options.chunk_chars - len(crumb) - 1, options.chunk_chars // 2)
        for body in _pack(section.paragraphs, budget, options.chunk_overlap):
            yield section, f"{crumb}\n{body}"


def _read_text(file: Path) -> str:
    raw = file.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFormatError(file, f"line {line}", "not UTF-8 text") from exc


def _read_pdf(file: Path) -> tuple[str | None, list[Section]]:
    """The PDF's title (from its metadata) and one section per page with text."""
    from pypdf import PdfReader  # imported here: only PDF imports pay for it

    try:
        reader = PdfReader(file)
        if reader.is_encrypted:
            reader.decrypt("")
        metadata = reader.metadata
        title = metadata.title if metadata else None
        pages = [page.extract_text() or "" for page in reader.pages]
    # pypdf reports a damaged file through many exception types, not only PdfReadError.
    except Exception as exc:
        raise ImportFormatError(file, "", f"not a readable PDF: {exc}") from exc
    sections = [
        Section((f"page {number}",), _paragraphs(text.split("\n")))
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    return (title.strip() if isinstance(title, str) and title.strip() else None), sections


def _split_front_matter(file: Path, text: str) -> tuple[FrontMatter, str]:
    """The front matter (if the note opens with a '---' block) and the rest of the note."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return FrontMatter(), text
    end = next(
        (index for index in range(1, len(lines)) if lines[index].strip() in _FRONT_MATTER_END),
        None,
    )
    if end is None:
        raise ImportFormatError(file, "line 1", "front matter is not closed by a '---' line")
    block = lines[1:end]
    try:
        data = yaml.safe_load("\n".join(block))
    except yaml.YAMLError as exc:
        # The mark counts from the block's first line, which is the file's line 2.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2}" if mark is not None else "line 1"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ImportFormatError(file, where, f"bad front matter: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ImportFormatError(file, "line 2", "front matter must be 'key: value' lines")
    return _front_matter(file, data, block), "\n".join(lines[end + 1 :])


def _key_line(block: list[str], key: str) -> str:
    """'line N' of a front matter key (the block starts on the file's line 2)."""
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    number = next((index for index, line in enumerate(block) if pattern.match(line)), -1)
    return f"line {number + 2}" if number >= 0 else "line 1"


def _front_matter(file: Path, data: dict[str, Any], block: list[str]) -> FrontMatter:
    title = data.get("title")
    if title is not None and not isinstance(title, str | int | float):
        raise ImportFormatError(file, _key_line(block, "title"), "title must be text")

    visibility = None
    if data.get("visibility") is not None:
        value = str(data["visibility"]).strip().lower()
        try:
            visibility = Visibility(value)
        except ValueError:
            allowed = ", ".join(v.value for v in Visibility)
            raise ImportFormatError(
                file,
                _key_line(block, "visibility"),
                f"visibility must be one of {allowed}, got {data['visibility']!r}",
            ) from None

    timestamp = None
    if data.get("date") is not None:
        timestamp = _front_matter_date(data["date"])
        if timestamp is None:
            raise ImportFormatError(
                file, _key_line(block, "date"), f"date is not a date: {data['date']!r}"
            )

    raw_tags = data.get("tags") or []
    if isinstance(raw_tags, str):
        raw_tags = raw_tags.split(",")
    if not isinstance(raw_tags, list):
        raise ImportFormatError(file, _key_line(block, "tags"), "tags must be a list or text")
    tags = tuple(str(tag).strip().lstrip("#") for tag in raw_tags if str(tag).strip())
    return FrontMatter(
        title=str(title).strip() if title is not None else None,
        timestamp=timestamp,
        tags=tags,
        visibility=visibility,
    )


def _front_matter_date(value: Any) -> datetime | None:
    """A YAML date, datetime or ISO string as an aware datetime (UTC when no zone is given)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date_from_name(stem: str) -> datetime | None:
    found = _DATE_IN_NAME.search(stem)
    if not found:
        return None
    try:
        return datetime(*(int(part) for part in found.groups()), tzinfo=UTC)
    except ValueError:
        return None


def _mtime(file: Path) -> datetime:
    return datetime.fromtimestamp(file.stat().st_mtime, UTC)


def _render_links(text: str) -> str:
    """Obsidian embeds dropped, wiki links replaced by what a reader sees."""

    def shown(found: re.Match[str]) -> str:
        if found.group("alias"):
            return found.group("alias").strip()
        page, _, heading = found.group("target").partition("#")
        return " > ".join(part.strip() for part in (page, heading) if part.strip())

    return _WIKI_LINK.sub(shown, _EMBED.sub("", text))


def _markdown_sections(body: str) -> tuple[str | None, list[Section]]:
    """The note's title (a leading '# Heading') and its sections, split on ATX headings.

    Headings inside fenced code blocks are text, not structure.
    """
    lines = body.split("\n")
    title = None
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is not None:
        heading = _HEADING.match(lines[first])
        if heading and len(heading.group("marks")) == 1:
            title = heading.group("text").strip()
            lines = lines[first + 1 :]

    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    current: list[str] = []
    in_fence = False

    def close() -> None:
        paragraphs = _paragraphs(current)
        if paragraphs:
            sections.append(Section(tuple(text for _, text in stack), paragraphs))
        current.clear()

    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            close()
            level = len(heading.group("marks"))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading.group("text").strip()))
        else:
            current.append(line)
    close()
    return title, sections


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated blocks; a fenced code block stays whole."""
    paragraphs: list[str] = []
    block: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if block:
                paragraphs.append("\n".join(block).strip())
                block = []
        else:
            block.append(line.rstrip())
    if block:
        paragraphs.append("\n".join(block).strip())
    return [paragraph for paragraph in paragraphs if paragraph]


def _pack(paragraphs: list[str], budget: int, overlap: int) -> list[str]:
    """Paragraphs joined into chunks of at most `budget` characters.

    Only a paragraph longer than the budget is cut, into windows that overlap by `overlap`
    characters so that a sentence across a cut is whole in one of them.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for paragraph in paragraphs:
        if len(paragraph) > budget:
            if current:
                chunks.append("\n\n".join(current))
                current, size = [], 0
            chunks.extend(_windows(paragraph, budget, overlap))
            continue
        added = len(paragraph) + (2 if current else 0)
        if current and size + added > budget:
            chunks.append("\n\n".join(current))
            current, size, added = [], 0, len(paragraph)
        current.append(paragraph)
        size += added
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _windows(text: str, size: int, overlap: int) -> list[str]:
    """`text` cut into pieces of at most `size` characters, at spaces where possible."""
    overlap = max(0, min(overlap, size // 2))
    pieces = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            if space > start:
                end = space
        pieces.append(text[start:end].strip())
        if end >= len(text):
            break
        next_start = max(end - overlap, start + 1)
        # Begin the next piece at a word, inside the overlap if there is a space there.
        space = text.find(" ", next_start, end)
        start = space + 1 if space != -1 else next_start
    return [piece for piece in pieces if piece]
