"""WhatsApp "Export chat" text files, as Android and iOS write them.

Android: ``31/12/2023, 21:15 - Sam: hi`` (or ``12/31/23, 9:15 PM - Sam: hi``, with or without
seconds, often with a narrow no-break space before AM/PM). iOS: ``[31/12/2023, 21:15:03] Sam:
hi``, where lines and attachments carry U+200E marks. A line that does not start with a date
continues the message above it.

The export has no ids and no time zone: times are the phone's local time and are read as UTC;
each message gets an id made from its time, author and text (plus a counter for repeats). Nor
does it say whether dates are day or month first: the whole file decides (a field above 12
settles it), and a chat whose dates cannot tell is read day first with a warning, unless
`ImportOptions.date_order` says otherwise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.calendar import spoken_date
from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef
from memory.sources.base import DateOrder, ImportFormatError, ImportOptions

PEEK_BYTES = 64 * 1024

# Direction marks and isolates WhatsApp wraps around lines, attachments and phone numbers.
_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_DATE = r"(?P<f1>\d{1,4})[./-](?P<f2>\d{1,2})[./-](?P<f3>\d{1,4})"
_TIME = (
    r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?:[:.](?P<second>\d{2}))?"
    r"(?:\s?(?P<ampm>[AaPp])\.?\s?[Mm]\.?)?"
)
_ANDROID_LINE = re.compile(rf"^{_DATE},?\s{_TIME}\s[-–]\s(?P<rest>.*)$")
_IOS_LINE = re.compile(rf"^\[{_DATE},?\s{_TIME}\]\s(?P<rest>.*)$")

_EDITED = re.compile(r"\s*\u200e?<This message was edited>$")
_DELETED = frozenset(
    {
        "This message was deleted",
        "This message was deleted.",
        "You deleted this message",
        "You deleted this message.",
    }
)
_OMITTED = {
    "<Media omitted>": ("media", "[media]"),
    "image omitted": ("photo", "[photo]"),
    "video omitted": ("video", "[video]"),
    "audio omitted": ("audio", "[audio]"),
    "sticker omitted": ("sticker", "[sticker]"),
    "GIF omitted": ("gif", "[GIF]"),
    "Contact card omitted": ("contact", "[contact]"),
    "document omitted": ("document", "[document]"),
}
_ATTACHED = re.compile(r"^<attached: (?P<name>[^>]+)>$")
_FILE_ATTACHED = re.compile(r"^(?P<name>.+?) \(file attached\)$")
_DOCUMENT_OMITTED = re.compile(r"^(?P<name>.+?)(?: • .*)? document omitted$")
_LOCATION = re.compile(r"^[Ll]ocation: (?P<url>https?://\S+)$")
_ATTACHED_KINDS = {
    "PHOTO": "photo",
    "VIDEO": "video",
    "AUDIO": "audio",
    "STICKER": "sticker",
    "GIF": "GIF",
}
# Android writes group events without "author:", but a quoted group name may hold a colon:
# 'Sam created group "Trip: Lisbon"' must not become author 'Sam created group "Trip'.
_QUOTED_EVENT = re.compile(
    r" (?:created group|changed the subject|changed the group name|changed this group)"
    r".*[\"“]"
)
_CHAT_FILE_NAME = re.compile(r"^WhatsApp Chat (?:with|-) (?P<name>.+)$")
# What a browser or a file manager appends to a second copy: "WhatsApp Chat with Sam (1)".
_COPY_SUFFIX = re.compile(r"\s\(\d+\)$")


@dataclass
class _RawMessage:
    """A message line (its number and match) with the continuation lines below it."""

    line: int
    match: re.Match[str]
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Message:
    timestamp: datetime
    author: str
    text: str
    meta: dict[str, str]


def match_message_line(line: str) -> re.Match[str] | None:
    """The line's date, time and rest if it starts a WhatsApp message, else None."""
    bare = line.lstrip(_BIDI)
    return _ANDROID_LINE.match(bare) or _IOS_LINE.match(bare)


def looks_like_whatsapp(path: Path) -> bool:
    """True for a .txt file whose first non-empty line is a WhatsApp message line."""
    if not path.is_file() or path.suffix.lower() != ".txt":
        return False
    with path.open("rb") as handle:
        head = handle.read(PEEK_BYTES).decode("utf-8", errors="ignore")
    for line in head.splitlines():
        if line.strip(_BIDI + " \t"):
            return match_message_line(line) is not None
    return False


class WhatsAppImporter:
    """Reads a WhatsApp chat exported "without media" or "with media" (the .txt inside)."""

    name = "whatsapp"

    def detect(self, path: Path) -> bool:
        return looks_like_whatsapp(path)

    def parse(self, path: Path, options: ImportOptions) -> list[ParsedSource]:
        """The chat in the file as one ParsedSource.

        Whether dates are day-first or month-first is decided from the whole file: a first
        field above 12 means day-first, a second field above 12 month-first. If nothing
        decides, `options.date_order`, else day-first (what most locales use) with a warning
        that says so.
        """
        raw_messages = _group_lines(path, _read_lines(path))
        order, warning = _date_order(path, raw_messages, options.date_order)
        chat = chat_name(path)
        key = f"whatsapp:{chat}"

        drafts: list[MemoryDraft] = []
        occurrences: dict[str, int] = {}
        skipped = 0
        for raw in raw_messages:
            message = _read_message(path, raw, order)
            if message is None:
                skipped += 1
                continue
            # Identical messages (same minute, author and text) stay distinct, and an id does
            # not change when a later export of the same chat has more messages after it.
            digest = hashlib.sha256(
                f"{message.timestamp.isoformat()}\0{message.author}\0{message.text}".encode()
            ).hexdigest()[:16]
            occurrence = occurrences.get(digest, 0)
            occurrences[digest] = occurrence + 1
            drafts.append(
                MemoryDraft(
                    text=message.text,
                    kind=Kind.CHAT,
                    source_id=f"{digest}-{occurrence}",
                    author=message.author or None,
                    author_id=None,
                    timestamp=message.timestamp,
                    thread=key,
                    meta=message.meta,
                )
            )
        source = SourceRef(key=key, kind="whatsapp", name=f"WhatsApp: {chat}", path=str(path))
        warnings = (warning,) if warning else ()
        return [ParsedSource(source=source, drafts=drafts, skipped=skipped, warnings=warnings)]


def chat_name(path: Path) -> str:
    """'WhatsApp Chat with Sam.txt' → 'Sam'; iOS's '_chat.txt' takes its folder's name. A
    second download of the same chat ('… with Sam (1).txt') is the same chat."""
    stem = path.stem
    if stem == "_chat":
        stem = path.resolve().parent.name
    stem = _COPY_SUFFIX.sub("", stem)
    found = _CHAT_FILE_NAME.match(stem)
    return found.group("name").strip() if found else stem


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines and their numbers, read one at a time (a lone CR ends a line too)."""
    number = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                text = raw.decode("utf-8-sig" if number == 0 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFormatError(path, f"line {number + 1}", "not UTF-8 text") from exc
            for line in text.removesuffix("\n").removesuffix("\r").split("\r"):
                number += 1
                yield number, line


def _group_lines(path: Path, lines: Iterator[tuple[int, str]]) -> list[_RawMessage]:
    """Message lines with their continuation lines. The first non-empty line must be a message."""
    messages: list[_RawMessage] = []
    for number, line in lines:
        found = match_message_line(line)
        if found:
            messages.append(_RawMessage(line=number, match=found, lines=[found.group("rest")]))
        elif messages:
            messages[-1].lines.append(line)
        elif line.strip(_BIDI + " \t"):
            raise ImportFormatError(
                path,
                f"line {number}",
                f"expected a WhatsApp message line like '31/12/2023, 21:15 - Sam: hi', "
                f"got {line[:60]!r}",
            )
    if not messages:
        raise ImportFormatError(path, "line 1", "no WhatsApp messages in this file")
    return messages


def _date_text(raw: _RawMessage) -> str:
    """The date as the line writes it, e.g. '03/04/2025'."""
    return raw.match.string[raw.match.start("f1") : raw.match.end("f3")]


def _date_order(
    path: Path, messages: list[_RawMessage], assumed: DateOrder | None
) -> tuple[DateOrder, str | None]:
    """How the file writes its dates, and a warning when that had to be assumed.

    Every date of one export is written the same way, so a line that breaks the pattern set by
    the lines before it is the one reported.
    """
    first = messages[0]
    year_first = len(first.match.group("f1")) == 4
    for raw in messages:
        if (len(raw.match.group("f1")) == 4) != year_first:
            style = "with the year first" if year_first else "with the year last"
            raise ImportFormatError(
                path,
                f"line {raw.line}",
                f"date {_date_text(raw)!r} is not written like the dates before it "
                f"(line {first.line}: {_date_text(first)!r}, {style}); one export writes "
                "every date the same way",
            )
    if year_first:
        return DateOrder.YEAR_FIRST, None

    proof: dict[DateOrder, _RawMessage] = {}
    for raw in messages:
        f1, f2 = int(raw.match.group("f1")), int(raw.match.group("f2"))
        if f1 > 12 and f2 > 12:
            raise ImportFormatError(
                path,
                f"line {raw.line}",
                f"{_date_text(raw)!r} is neither a day-first nor a month-first date",
            )
        if f1 > 12:
            proof.setdefault(DateOrder.DAY_FIRST, raw)
        if f2 > 12:
            proof.setdefault(DateOrder.MONTH_FIRST, raw)
        if len(proof) == 2:
            other = next(order for order, at in proof.items() if at is not raw)
            earlier = proof[other]
            raise ImportFormatError(
                path,
                f"line {raw.line}",
                f"{_date_text(raw)!r} can only be {_other(other).value}, but line "
                f"{earlier.line} ({_date_text(earlier)!r}) can only be {other.value}; one "
                "export writes every date the same way",
            )
    if proof:
        return next(iter(proof)), None
    if assumed in (DateOrder.DAY_FIRST, DateOrder.MONTH_FIRST):
        return assumed, None
    example = _timestamp(path, first, DateOrder.DAY_FIRST)
    return DateOrder.DAY_FIRST, (
        f"no date in this chat tells day from month (none is above 12): read day first, so "
        f"{_date_text(first)!r} is {spoken_date(example)}"
    )


def _other(order: DateOrder) -> DateOrder:
    return DateOrder.MONTH_FIRST if order is DateOrder.DAY_FIRST else DateOrder.DAY_FIRST


def _timestamp(path: Path, raw: _RawMessage, order: DateOrder) -> datetime:
    """The message time, naive local time in the export, read as UTC."""
    found = raw.match
    f1, f2, f3 = (int(found.group(name)) for name in ("f1", "f2", "f3"))
    year, month, day = {
        DateOrder.DAY_FIRST: (f3, f2, f1),
        DateOrder.MONTH_FIRST: (f3, f1, f2),
        DateOrder.YEAR_FIRST: (f1, f2, f3),
    }[order]
    if year < 100:
        year += 2000
    hour = int(found.group("hour"))
    ampm = found.group("ampm")
    if ampm:
        if not 1 <= hour <= 12:
            raise ImportFormatError(path, f"line {raw.line}", f"bad 12-hour time {hour}")
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    try:
        return datetime(
            year,
            month,
            day,
            hour,
            int(found.group("minute")),
            int(found.group("second") or 0),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise ImportFormatError(
            path, f"line {raw.line}", f"bad date or time ({order.value}): {exc}"
        ) from exc


def _split_author(rest: str) -> tuple[str, str] | None:
    """('Sam', 'hi') from 'Sam: hi'; None for a system line such as 'Sam added Alex'."""
    author, separator, text = rest.partition(": ")
    if not separator:
        if rest.endswith(":"):
            return rest[:-1].strip(_BIDI + " "), ""
        return None
    if _QUOTED_EVENT.search(author):
        return None
    return author.strip(_BIDI + " "), text


def _media(first_line: str) -> tuple[str, str] | None:
    """(kind, placeholder) when the first line of a message stands for an attachment."""
    bare = first_line.replace("\u200e", "").strip()
    if bare in _OMITTED:
        return _OMITTED[bare]
    if found := _ATTACHED.match(bare):
        name = found.group("name")
        kind = next(
            (label for marker, label in _ATTACHED_KINDS.items() if f"-{marker}-" in name), "file"
        )
        return kind.lower(), f"[{kind}: {name}]"
    if found := _FILE_ATTACHED.match(bare):
        return "file", f"[file: {found.group('name')}]"
    if found := _DOCUMENT_OMITTED.match(bare):
        return "document", f"[document: {found.group('name')}]"
    if found := _LOCATION.match(bare):
        return "location", f"[location: {found.group('url')}]"
    return None


def _read_message(path: Path, raw: _RawMessage, order: DateOrder) -> _Message | None:
    """The message's time, author, text and extras, or None for what is left out."""
    timestamp = _timestamp(path, raw, order)
    split = _split_author(raw.lines[0])
    if split is None:
        return None  # encryption notice, "X added Y", "X left", security code changes...
    author, first = split
    text = "\n".join([first, *raw.lines[1:]]).rstrip()
    meta: dict[str, str] = {}
    if _EDITED.search(text):
        text = _EDITED.sub("", text)
        meta["edited"] = "true"

    lines = text.split("\n")
    media = _media(lines[0])
    if media:
        meta["media"] = media[0]
        lines[0] = media[1]
    elif lines[0].startswith("\u200e"):
        return None  # iOS marks system text in a chat ("Messages and calls are end-to-end...")
    text = "\n".join(lines).strip().strip(_BIDI)
    if not text or text in _DELETED:
        return None
    return _Message(timestamp=timestamp, author=author, text=text, meta=meta)
