"""Notes: Markdown (Obsidian-style), plain text and PDF files, from a folder or one file.

Each file becomes one source, chunked on its structure: headings, then paragraphs packed up to
``chunk_chars``. Every chunk starts with a breadcrumb line ("Title › Heading › Subheading") so it
stands alone in retrieval. Markdown may open with YAML front matter (title, date, tags,
visibility).

A note's source key is its path relative to the folder it was found in (``notes:journal/
2026-03-01.md``; a note given by itself: its file name), never the absolute path, so the same
folder copied elsewhere is the same notes. Text is read line by line and chunked as it is read,
so a large file is never held in memory more than once over.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef, Visibility, content_hash
from memory.sources.base import ImportFormatError, ImportOptions
from memory.sources.whatsapp import looks_like_whatsapp

if TYPE_CHECKING:
    from pypdf import DocumentInformation

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt"})
PDF_SUFFIXES = frozenset({".pdf"})
NOTE_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | PDF_SUFFIXES
BREADCRUMB_SEPARATOR = " › "
SOURCE_ID_CHARS = 16
KEY_PREFIX = "notes:"

_HEADING = re.compile(r"^(?P<marks>#{1,6})\s+(?P<text>.+?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMBED = re.compile(r"!\[\[[^\]]*\]\]")
_WIKI_LINK = re.compile(r"\[\[(?P<target>[^\]|]*)(?:\|(?P<alias>[^\]]*))?\]\]")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_FRONT_MATTER_END = frozenset({"---", "..."})

log = logging.getLogger(__name__)


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
        """One ParsedSource per note: the file, or every note `discover` finds in the folder
        (what it leaves out is logged; `twin ingest` lists it)."""
        if path.is_dir():
            from memory.sources.discover import discover  # discover builds on this module

            found = discover([path], options, (self,))
            for record in found.skipped:
                log.warning("left out %s", record)
            return [source for unit in found.units for source in unit.parse(options)]
        if path.suffix.lower() not in NOTE_SUFFIXES:
            raise ImportFormatError(path, "", "not a note (expected .md, .markdown, .txt, .pdf)")
        return [self.parse_note(path, path.parent, options)]

    def parse_note(self, file: Path, root: Path, options: ImportOptions) -> ParsedSource:
        """The note `file`, named by its path relative to `root` (the folder it was found in).

        A re-import replaces the note's earlier chunks.
        """
        key = note_key(file, root)
        kind, title, front, paragraphs = _read_note(file)
        timestamp = front.timestamp or _date_from_name(file.stem) or _mtime(file)
        drafts: list[MemoryDraft] = []
        seen: set[str] = set()
        with closing(paragraphs):
            for headings, chunk in _chunks(title, paragraphs, options):
                source_id = content_hash(chunk)[:SOURCE_ID_CHARS]
                if source_id in seen:
                    continue  # the same text twice in one note is one memory
                seen.add(source_id)
                meta = {"title": title}
                if front.tags:
                    meta["tags"] = ",".join(front.tags)
                if headings:
                    meta["heading"] = headings[-1]
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
        source = SourceRef(key=key, kind="notes", name=title, path=str(file.resolve()))
        return ParsedSource(
            source=source, drafts=drafts, replaces_missing=True, skipped=0 if drafts else 1
        )


def note_key(file: Path, root: Path) -> str:
    """'notes:' and the note's path relative to `root`, with forward slashes."""
    try:
        relative = file.relative_to(root)
    except ValueError:
        relative = Path(file.name)
    return KEY_PREFIX + relative.as_posix()


@dataclass(frozen=True)
class FrontMatter:
    """What a note's YAML front matter says about it."""

    title: str | None = None
    timestamp: datetime | None = None
    tags: tuple[str, ...] = ()
    visibility: Visibility | None = None


class Paragraph(NamedTuple):
    """One paragraph of a note, with the headings above it. `section` counts the note's
    sections, so two sections under equal headings stay apart. (A tuple: a large note has
    tens of thousands.)"""

    section: int
    headings: tuple[str, ...]
    text: str


def _read_note(file: Path) -> tuple[Kind, str, FrontMatter, Iterator[Paragraph]]:
    """What kind of memory the file gives, its title, front matter and paragraphs (read as
    they are consumed)."""
    if file.suffix.lower() in PDF_SUFFIXES:
        title, created, paragraphs = _read_pdf(file)
        return Kind.DOCUMENT, title or file.stem, FrontMatter(timestamp=created), paragraphs
    lines = _text_lines(file)
    if file.suffix.lower() not in MARKDOWN_SUFFIXES:
        return Kind.NOTE, file.stem, FrontMatter(), _paragraphs(lines, markdown=False)
    front, body = _split_front_matter(file, lines)
    title, rest = _title(_render_links(line) if "[[" in line else line for line in body)
    return Kind.NOTE, front.title or title or file.stem, front, _paragraphs(rest, markdown=True)


def _chunks(
    title: str, paragraphs: Iterator[Paragraph], options: ImportOptions
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Each section's chunks with its headings, every chunk opening with its breadcrumb line."""
    for _, section in itertools.groupby(paragraphs, key=lambda paragraph: paragraph.section):
        headings, texts = _section_texts(section)
        crumb = BREADCRUMB_SEPARATOR.join((title, *headings))
        # Keep whole chunks near chunk_chars, but never starve the body of a deep heading.
        budget = max(options.chunk_chars - len(crumb) - 1, options.chunk_chars // 2)
        for body in _pack(texts, budget, options.chunk_overlap):
            yield headings, f"{crumb}\n{body}"


def _section_texts(section: Iterator[Paragraph]) -> tuple[tuple[str, ...], Iterator[str]]:
    """The headings of one section's paragraphs, and their texts (as they are read)."""
    first = next(section)
    return first.headings, itertools.chain([first.text], (p.text for p in section))


def _text_lines(file: Path) -> Iterator[str]:
    """The file's lines without their line ends, read one at a time."""
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFormatError(file, f"line {number}", "not UTF-8 text") from exc
            yield line.rstrip("\r\n")


def _read_pdf(file: Path) -> tuple[str | None, datetime | None, Iterator[Paragraph]]:
    """The PDF's title and creation date (from its metadata) and its paragraphs, one section
    per page. The creation date is the document's own; a copy's mtime is when it was copied."""
    from pypdf import PdfReader  # imported here: only PDF imports pay for it

    try:
        reader = PdfReader(file)
        if reader.is_encrypted:
            reader.decrypt("")
        metadata = reader.metadata
        title = metadata.title if metadata else None
        created = _pdf_created(metadata)
        pages = [page.extract_text() or "" for page in reader.pages]
    # pypdf reports a damaged file through many exception types, not only PdfReadError.
    except Exception as exc:
        raise ImportFormatError(file, "", f"not a readable PDF: {exc}") from exc
    paragraphs = (
        Paragraph(number, (f"page {number}",), paragraph.text)
        for number, text in enumerate(pages, start=1)
        for paragraph in _paragraphs(iter(text.split("\n")), markdown=False)
    )
    title = title.strip() if isinstance(title, str) and title.strip() else None
    return title, created, paragraphs


def _pdf_created(metadata: DocumentInformation | None) -> datetime | None:
    """The metadata's creation date in UTC (a date without a zone is taken as UTC), or None
    when there is none or it does not parse: a bad date is not a reason to refuse a PDF."""
    try:
        created = metadata.creation_date if metadata else None
    except ValueError:
        return None
    if created is None:
        return None
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)


def _split_front_matter(file: Path, lines: Iterator[str]) -> tuple[FrontMatter, Iterator[str]]:
    """The front matter (if the note opens with a '---' block) and the rest of the note."""
    first = next(lines, None)
    if first is None:
        return FrontMatter(), iter(())
    if first.strip() != "---":
        return FrontMatter(), itertools.chain([first], lines)
    block: list[str] = []
    for line in lines:
        if line.strip() in _FRONT_MATTER_END:
            break
        block.append(line)
    else:
        raise ImportFormatError(file, "line 1", "front matter is not closed by a '---' line")
    import yaml  # here: every `twin` command loads the importers, few read front matter

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
    return _front_matter(file, data, block), lines


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


def _title(lines: Iterator[str]) -> tuple[str | None, Iterator[str]]:
    """The note's title (a leading '# Heading') and the lines after it; without such a
    heading, no title and all the lines."""
    for line in lines:
        if not line.strip():
            continue  # blank lines before the first text separate nothing
        heading = _HEADING.match(line)
        if heading and len(heading.group("marks")) == 1:
            return heading.group("text").strip(), lines
        return None, itertools.chain([line], lines)
    return None, iter(())


def _paragraphs(lines: Iterator[str], *, markdown: bool) -> Iterator[Paragraph]:
    """Blank-line separated blocks with the headings above them; a fenced code block stays
    whole, and headings inside it are text. Plain text has no headings."""
    stack: list[tuple[int, str]] = []
    headings: tuple[str, ...] = ()
    section = 0
    block: list[str] = []
    in_fence = False

    def paragraph() -> Paragraph | None:
        text = "\n".join(block).strip()
        block.clear()
        return Paragraph(section, headings, text) if text else None

    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = _HEADING.match(line) if markdown and not in_fence else None
        if heading or (not line.strip() and not in_fence):
            if block and (done := paragraph()):
                yield done
            if heading:
                section += 1
                level = len(heading.group("marks"))
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading.group("text").strip()))
                headings = tuple(text for _, text in stack)
        else:
            block.append(line.rstrip())
    if block and (done := paragraph()):
        yield done


def _pack(paragraphs: Iterable[str], budget: int, overlap: int) -> Iterator[str]:
    """Paragraphs joined into chunks of at most `budget` characters.

    Only a paragraph longer than the budget is cut, into windows that overlap by `overlap`
    characters so that a sentence across a cut is whole in one of them.
    """
    current: list[str] = []
    size = 0
    for paragraph in paragraphs:
        if len(paragraph) > budget:
            if current:
                yield "\n\n".join(current)
                current, size = [], 0
            yield from _windows(paragraph, budget, overlap)
            continue
        added = len(paragraph) + (2 if current else 0)
        if current and size + added > budget:
            yield "\n\n".join(current)
            current, size, added = [], 0, len(paragraph)
        current.append(paragraph)
        size += added
    if current:
        yield "\n\n".join(current)


def _windows(text: str, size: int, overlap: int) -> Iterator[str]:
    """`text` cut into pieces of at most `size` characters, at spaces where possible."""
    overlap = max(0, min(overlap, size // 2))
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            if space > start:
                end = space
        if piece := text[start:end].strip():
            yield piece
        if end >= len(text):
            break
        next_start = max(end - overlap, start + 1)
        # Begin the next piece at a word, inside the overlap if there is a space there.
        space = text.find(" ", next_start, end)
        start = space + 1 if space != -1 else next_start
