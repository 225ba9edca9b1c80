"""From memory text to passages and answer spans, for the offline synthesizer.

A `Passage` is one sentence or list item of a memory, cleaned of Markdown, with the note's
title and section it sits under ("Biscuit › Vet"). A `Span` is a piece of a passage a question
can be about: a date, a time, a quantity, a person, a place, a title, a name. Everything here is
plain pattern matching: it has to run with no model at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from core.calendar import MONTH_NAMES, spoken_date
from memory.models import Kind, Memory
from memory.retrieve import STOPWORDS

BREADCRUMB = " › "
TABLE_ROW = "\x00row\x00"

MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec"
)
WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_NUMBER_WORDS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_WEEKDAY_SHORT = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"


def word_set(text: str) -> frozenset[str]:
    """The words of `text`: long word lists stay readable as one string."""
    return frozenset(text.split())


class SpanKind(StrEnum):
    DATE = "date"
    WEEKDAY = "weekday"
    YEAR = "year"
    TIME = "time"
    DURATION = "duration"
    MONEY = "money"
    QUANTITY = "quantity"
    TITLE = "title"
    PERSON = "person"
    PLACE = "place"
    NAME = "name"

    @property
    def temporal(self) -> bool:
        return self in (SpanKind.DATE, SpanKind.WEEKDAY, SpanKind.YEAR, SpanKind.TIME)


# Patterns in priority order: an earlier kind wins where two overlap. A pattern with a group
# marks the span with it (a year without its "in", a title without its quotes).
_PATTERNS: tuple[tuple[SpanKind, re.Pattern[str]], ...] = (
    (SpanKind.DATE, re.compile(r"\b\d{4}-\d{2}-\d{2}\b")),
    (
        SpanKind.DATE,
        re.compile(
            rf"\b{_DAY} (?:{MONTHS})\.? (?:to|until|till|[–-]) {_DAY} (?:{MONTHS})\b\.?"
            r"(?: \d{4}\b)?"
        ),
    ),
    (SpanKind.DATE, re.compile(rf"\b(?:{_WEEKDAY_SHORT}) \d{{1,2}}\b")),
    (
        SpanKind.DATE,
        re.compile(rf"\b{_DAY}\s*[–-]\s*{_DAY} (?:{MONTHS})\.?(?: \d{{4}})?\b"),
    ),
    (
        SpanKind.DATE,
        re.compile(rf"\b(?:(?:{WEEKDAYS}),? )?{_DAY} (?:of )?(?:{MONTHS})\b\.?(?:,? \d{{4}}\b)?"),
    ),
    (SpanKind.DATE, re.compile(rf"\b(?:{MONTHS}) {_DAY}(?:,? \d{{4}})?\b")),
    (SpanKind.DATE, re.compile(rf"\b(?:{MONTHS}) \d{{4}}\b")),
    (SpanKind.DATE, re.compile(r"\bthe \d{1,2}(?:st|nd|rd|th)\b")),
    (SpanKind.DURATION, re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b")),
    (
        SpanKind.TIME,
        re.compile(
            r"\b\d{1,2}:\d{2}(?:\s*[–-]\s*\d{1,2}:\d{2})?(?:\s?[ap]m)?\b|\b\d{1,2}\s?[ap]m\b"
        ),
    ),
    (
        SpanKind.WEEKDAY,
        re.compile(rf"\b(?:every )?(?:{WEEKDAYS})s?(?: (?:morning|afternoon|evening|night)s?)?\b"),
    ),
    (SpanKind.YEAR, re.compile(r"\b(?:in|since|from|until) ((?:19|20)\d{2})\b")),
    (SpanKind.MONEY, re.compile(r"[€£$]\s?\d[\d,.]*\d|[€£$]\s?\d")),
    (
        SpanKind.QUANTITY,
        re.compile(
            rf"\b(?:\d+(?:[.,]\d+)?|{_NUMBER_WORDS})\s?(?:km|kg|kilos|cm|mm|m|g|°C|%|degrees"
            r"|minutes|min|hours|days|weeks|months|years|[a-z]{3,}s)\b",
            re.IGNORECASE,
        ),
    ),
    (SpanKind.TITLE, re.compile(r"[\"“]([^\"“”]{3,60})[\"”]")),
)
_PLACE = re.compile(
    r"\b(?:in|at|to|from|near|around|across|on) (?:the )?"
    r"([A-Z][\w'’-]+(?: (?:(?:de|da|do|dos|das|of|the)(?= [A-Z])|[A-Z][\w'’-]+))*)"
)
_CAPITALISED = re.compile(
    r"\b[A-Z][\w'’-]*(?: (?:(?:de|da|do|dos|das|of)(?: the)? )?[A-Z][\w'’-]*)*"
)
_POSSESSIVE = re.compile(r"['’]s\b")
_CONNECTORS = frozenset(("de", "da", "do", "dos", "das", "of", "the"))
_NAMED = frozenset((SpanKind.TITLE, SpanKind.PERSON, SpanKind.PLACE, SpanKind.NAME))
_NOT_NAMES = frozenset(
    w.casefold()
    for w in (
        *MONTHS.split("|"),
        *WEEKDAYS.split("|"),
        *(f"{d}s" for d in WEEKDAYS.split("|")),
        *[
            "Mon",
            "Tue",
            "Wed",
            "Thu",
            "Fri",
            "Sat",
            "Sun",
            "I",
            "I'm",
            "I'd",
            "I'll",
            "I've",
            "OK",
            "TV",
        ],
    )
)

# Markdown that carries no meaning for a question
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])|(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)")
_WIKI = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]+))?\]\]")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_URL = re.compile(r"https?://\S+")
_BRACKETED = re.compile(
    r"^\[(?:photo|media|sticker|attachment|embed|voice|file|video)[^\]]*\]$", re.I
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")
# Where a new sentence-like part starts: a capital after these is no sign of a name.
_CLAUSE = re.compile(r"(?<=[.!?:;(—])\s+|\(")
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_LABEL = re.compile(r"^([^:.!?]{2,40}?):\s+(\S.*)$")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}")


@dataclass(frozen=True)
class Passage:
    """One sentence or list item of a memory, cleaned, with where it sits.

    `label` and `value` are set for "Label: value" items ("Favourite toy: the squeaky crab")
    and table rows (first cell, the others)."""

    memory: Memory
    text: str
    topic: str = ""
    section: str = ""
    label: str = ""
    value: str = ""
    # False for a table row, whose "first cell: other cells" is not how the memory writes it
    verbatim: bool = True

    @property
    def by_owner(self) -> bool:
        return self.memory.is_owner

    @property
    def when(self) -> str:
        """The memory's date as the prompt shows it and people write it ("15 March 2026"),
        or ""."""
        stamp = self.memory.timestamp
        return spoken_date(stamp) if stamp else ""


@dataclass(frozen=True)
class Span:
    kind: SpanKind
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Lexicon:
    """Names known from memory: people who write in it, and words that are proper nouns
    (written capitalised in the middle of sentences more often than in lower case: chats
    often write names in lower case, "see you in kyoto")."""

    people: frozenset[str]
    proper: frozenset[str]
    # the words memory writes in lower case somewhere ("food", not "Monterey")
    common: frozenset[str] = frozenset()

    @classmethod
    def build(cls, memories: Iterable[Memory], extra_people: Iterable[str] = ()) -> Lexicon:
        capital: Counter[str] = Counter()
        lower: Counter[str] = Counter()
        people: set[str] = {p for p in extra_people if p}
        for memory in memories:
            if memory.author and not memory.is_owner and memory.meta.get("bot") != "true":
                people.add(memory.author.split()[0])
            for passage in passages(memory):
                for clause in _CLAUSE.split(passage.value or passage.text):
                    words = re.findall(r"[\w'’-]+", clause)
                    for i, word in enumerate(words):
                        if word.islower():
                            lower[word] += 1
                        elif i > 0 and word[:1].isupper() and not word.isupper():
                            capital[_possessive(word)] += 1
        proper = {
            w
            for w, n in capital.items()
            if n > lower[w.casefold()] and w.casefold() not in _NOT_NAMES
        }
        return cls(frozenset(people), frozenset(proper | people), frozenset(lower))


def _possessive(word: str) -> str:
    return re.sub(r"['’]s$", "", word)


def clean_markdown(text: str) -> str:
    """`text` without emphasis marks, wiki links or Markdown links (their words kept)."""
    text = _WIKI.sub(lambda m: m.group(2) or m.group(1), text)
    text = _LINK.sub(r"\1", text)
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    return _ITALIC.sub(lambda m: m.group(1) or m.group(2), text)


def italic_phrases(text: str) -> list[str]:
    """Phrases set in italics (titles of papers, species), which count as titles."""
    return [m.group(1) or m.group(2) for m in _ITALIC.finditer(_BOLD.sub(r"\1", text))]


_PICTOGRAPHS = frozenset(("So", "Sk", "Cs", "Co", "Cn"))
# Letters that keep their stroke through Unicode decomposition.
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ð": "d"}
)


def strip_symbols(text: str) -> str:
    """`text` without emoji and other pictographs (and the joiners between them)."""
    out = "".join(
        c for c in text if unicodedata.category(c) not in _PICTOGRAPHS and c not in "\u200d\ufe0f"
    )
    return re.sub(r"[ \t]{2,}", " ", out)


ISO_DATE = re.compile(r"\b((?:19|20)\d{2})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b")


def speak_dates(text: str) -> str:
    """`text` with its ISO dates as people write them: "2026-03-15" → "15 March 2026"."""
    return ISO_DATE.sub(
        lambda m: f"{int(m.group(3))} {MONTH_NAMES[int(m.group(2)) - 1]} {m.group(1)}", text
    )


def normalise(text: str) -> str:
    """For comparing facts with memory text: no accents, no case, no Markdown, single spaces,
    digit groups joined (18,000 and 18000 match)."""
    text = clean_markdown(" ".join(text.split()))
    text = unicodedata.normalize("NFKD", text)
    # accents and symbols (emoji) go; letters, digits and punctuation stay
    text = "".join(
        c
        for c in text
        if (not unicodedata.combining(c) and unicodedata.category(c)[0] != "S") or c in "€£$%°+"
    )
    text = text.translate(_UNDECOMPOSED)
    text = re.sub(r"(?<=\d)[,.](?=\d{3}\b)", "", text)
    text = text.replace("’", "'").replace("–", "-").replace("“", '"').replace("”", '"')
    return " ".join(text.casefold().split())


def passages(memory: Memory) -> list[Passage]:
    """The sentences and list items of `memory`, each with the note title and section."""
    text = memory.text
    topic = section = ""
    first, _, body = text.partition("\n")
    # an imported note's chunk opens with its breadcrumb ("Title › Section"); a remembered
    # note (`remember`) is text alone
    title = memory.meta.get("title", "")
    crumb = BREADCRUMB in first or (bool(title) and first.startswith(title))
    if memory.kind in (Kind.NOTE, Kind.DOCUMENT) and crumb:
        crumbs = first.split(BREADCRUMB)
        topic = crumbs[0].strip()
        section = crumbs[-1].strip() if len(crumbs) > 1 else ""
        text = body
    out = []
    # a chat message's lines are separate thoughts; a note's wrapped lines are one
    items = text.splitlines() if memory.kind == Kind.CHAT else _items(text)
    for item in items:
        verbatim = not item.startswith(TABLE_ROW)
        cleaned = clean_markdown(item.removeprefix(TABLE_ROW)).strip()
        if not _usable(cleaned):
            continue
        label_value = _label_value(cleaned) if topic else None
        if label_value is not None:
            label, value = label_value
            out.append(Passage(memory, cleaned, topic, section, label, value, verbatim))
            continue
        for sentence in _SENTENCE.split(cleaned):
            sentence = sentence.strip()
            if _usable(sentence):
                out.append(Passage(memory, sentence, topic, section))
    return out


def _items(text: str) -> list[str]:
    """List items, table rows and paragraphs, with wrapped lines joined."""
    items: list[str] = []
    current: list[str] = []
    in_item = False

    def flush() -> None:
        if current:
            items.append(" ".join(current))
            current.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line or _BRACKETED.match(line) or _TABLE_SEPARATOR.match(line):
            flush()
            in_item = False
            continue
        if line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) >= 2 and cells[0] and not cells[0].islower():
                items.append(f"{TABLE_ROW}{cells[0]}: {'; '.join(c for c in cells[1:] if c)}")
            in_item = False
            continue
        if line.startswith("#"):
            flush()
            in_item = False
            continue
        bullet = _ITEM.match(line)
        if bullet:
            flush()
            current.append(line[bullet.end() :])
            in_item = True
        elif in_item and raw.startswith((" ", "\t")):
            current.append(line)
        else:
            if in_item:
                flush()
                in_item = False
            current.append(line)
    flush()
    return items


def _usable(text: str) -> bool:
    words = re.findall(r"\w+", _URL.sub("", text))
    return len(words) >= 2 and not _BRACKETED.match(text)


def _label_value(text: str) -> tuple[str, str] | None:
    match = _LABEL.match(text)
    if not match:
        return None
    label, value = match.group(1).strip(), match.group(2).strip()
    if len(label.split()) > 5 or not re.search(r"\w", value) or label.startswith("http"):
        return None
    return label, value


def find_spans(text: str, lexicon: Lexicon, titles: Iterable[str] = ()) -> list[Span]:
    """The answer spans in `text`, without overlaps (dates before times before quantities…,
    then titles, people, places and other names)."""
    taken: list[Span] = []

    def add(kind: SpanKind, start: int, end: int) -> None:
        value = text[start:end].strip(" ,.;:")
        if not value or any(start < s.end and s.start < end for s in taken):
            return
        if kind not in _NAMED and _POSSESSIVE.match(text, end):
            return  # "Sunday's snorkel": the day is not what the clause is about
        start = text.index(value, start)
        taken.append(Span(kind, value, start, start + len(value)))

    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if match.lastindex else 0
            add(kind, match.start(group), match.end(group))
    for title in titles:
        at = text.find(title)
        if at >= 0:
            add(SpanKind.TITLE, at, at + len(title))
    for match in _CAPITALISED.finditer(text):
        words = match.group(0).split()
        if words[0] in lexicon.people and len(words) <= 2:
            add(SpanKind.PERSON, match.start(), match.start() + len(" ".join(words[:1])))
    for match in _PLACE.finditer(text):
        name = match.group(1)
        if _is_name(name, lexicon, match.start(1)) and name.split()[0] not in lexicon.people:
            add(SpanKind.PLACE, match.start(1), match.end(1))
    for match in _CAPITALISED.finditer(text):
        start, words = match.start(), match.group(0).split()
        for i, word in enumerate(words):
            if word.casefold() in _NOT_NAMES:
                words = words[:i]  # "Inês I'm": the name stops before "I'm"
                break
        while words and start == 0 and words[0] not in lexicon.proper and len(words) > 1:
            start += len(words[0]) + 1  # "Meet Clementine": the name is Clementine
            words = words[1:]
        while words and words[-1] in _CONNECTORS:
            words = words[:-1]  # "Sepia of": the connector belongs to what follows
        phrase = " ".join(words)
        number = re.search(r"\b\d+ (?:de|da|do) $", text[:start])
        if number:  # "25 de Abril" is one name
            start, phrase = number.start(), text[number.start() : start] + phrase
        if words and _is_name(phrase, lexicon, start):
            add(SpanKind.NAME, start, start + len(phrase))
    return sorted(taken, key=lambda s: s.start)


def _is_name(phrase: str, lexicon: Lexicon, at: int) -> bool:
    """A proper name: a word the lexicon knows as one (anywhere in a phrase), or a phrase of
    several capitalised words that does not open the sentence."""
    words = phrase.split()
    if words[0].casefold() in _NOT_NAMES or words[0].casefold() in STOPWORDS:
        return False
    if any(w in lexicon.proper for w in words):
        return True
    return at > 0 and len([w for w in words if w[:1].isupper()]) >= 2


def span_kind(value: str, lexicon: Lexicon) -> SpanKind | None:
    """The kind of a value on its own ("15 March 2026" is a date), or None."""
    spans = find_spans(value, lexicon)
    if len(spans) == 1 and spans[0].text == value.strip(" ,.;:"):
        return spans[0].kind
    return None
