"""Times that questions name, read as windows of dates ("in August 2026", "last Christmas").

Retrieval uses a window to rank up the memories written in it (a boost, not a filter: a memory
about August may have been written in September), and `asks_when` to know that the answer is a
date, which a memory carries as its own timestamp.

What it reads (English): dates ("15 March 2026", "March 15th", "2026-03-15"), months with or
without a year ("in August", "last May", "August 2026"), years ("in 2025"), seasons (northern
hemisphere: "last summer"), holidays with fixed or computed dates (Christmas, New Year, Easter,
Halloween, Valentine's Day), and times relative to now ("yesterday", "last week", "this month",
"three weeks ago", "last Tuesday"). A month or holiday without a year is the latest one that
is not after now. What it cannot: ranges in words ("between … and …" gives the span of both
ends), fiscal or school years, times relative to other events ("the week after the race").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
WEEKDAYS = {
    name: number
    for number, name in enumerate(
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    )
}
# First month of each season, and its length in months (meteorological, northern hemisphere).
SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "a couple of": 2,
    "couple of": 2,
    "three": 3,
    "a few": 3,
    "few": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "several": 4,
}

# A memory about a day is often written a day before or a couple of days after it.
DAY_BEFORE = timedelta(days=1)
DAY_AFTER = timedelta(days=2)
# Longer spans get a few days after them (the report of a trip comes when it ends).
SPAN_AFTER = timedelta(days=3)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    SEASON = "season"
    YEAR = "year"


@dataclass(frozen=True)
class TimeWindow:
    """A span of time, [start, end), both aware UTC datetimes."""

    start: datetime
    end: datetime
    granularity: Granularity

    def padded(self) -> TimeWindow:
        """The window widened by how far from an event people write about it."""
        if self.granularity == Granularity.DAY:
            return TimeWindow(self.start - DAY_BEFORE, self.end + DAY_AFTER, self.granularity)
        return TimeWindow(self.start, self.end + SPAN_AFTER, self.granularity)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def union(self, other: TimeWindow) -> TimeWindow:
        coarser = max(self.granularity, other.granularity, key=_ORDER.index)
        return TimeWindow(min(self.start, other.start), max(self.end, other.end), coarser)


_ORDER = list(Granularity)


@dataclass(frozen=True)
class TimeReference:
    """What a question says about time: the window it names (or None), whether it asks for a
    date, and where in the text the time expressions are (start, end)."""

    window: TimeWindow | None
    asks_when: bool
    spans: tuple[tuple[int, int], ...] = ()

    def without_times(self, text: str) -> str:
        """`text` with its time expressions taken out."""
        out, last = [], 0
        for start, end in self.spans:
            out.append(text[last:start])
            last = end
        out.append(text[last:])
        return " ".join("".join(out).split())


_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY = "|".join(WEEKDAYS)
_SEASON = "|".join(SEASONS)
_NUMBER = "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_HOLIDAY = (
    r"christmas(?: eve| day)?|xmas|new year(?:['’]s)?(?: eve| day)?|easter|halloween|"
    r"valentine['’]?s(?: day)?"
)
# Words before a month name that make "May" or "March" a month and not a verb.
_MONTH_LEAD = (
    r"(?:in|on|of|since|until|till|by|during|before|after|from|to|last|this|next|early|late|"
    r"mid|through)"
)

_ASKS_WHEN = re.compile(
    r"^\W*when\b|\bwhat (?:day|date|year|month|time of year)\b|\bwhich (?:day|date|year|month)\b"
    r"|\bhow long ago\b|\bsince when\b|\bon what (?:day|date)\b|\bin what (?:year|month)\b",
    re.IGNORECASE,
)

# Month names that alone are more often something else ("May I…", "Jan said").
_BARE_NOT_MONTH = frozenset(name for name in MONTHS if name == "may" or len(name) <= 4)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b")),
    (
        "day_month",
        re.compile(
            rf"\b(?P<d>\d{{1,2}}){_ORD}(?: of)? (?P<month>{_MONTH})\b\.?(?:,? (?P<y>{_YEAR})\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "month_day",
        re.compile(
            rf"\b(?P<month>{_MONTH})\.? (?P<d>\d{{1,2}}){_ORD}\b(?!:)(?:,? (?P<y>{_YEAR})\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "month",
        re.compile(
            rf"(?:\b(?P<lead>{_MONTH_LEAD}) (?:the )?(?:(?:start|end|middle|beginning) of )?)?"
            rf"\b(?P<month>{_MONTH})\b\.?(?:,? (?:of )?(?P<y>{_YEAR})\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "season",
        re.compile(
            rf"\b(?:(?P<rel>last|this|next) |(?:in|during) (?:the )?)?(?P<season>{_SEASON})\b"
            rf"(?: (?:of )?(?P<y>{_YEAR})\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "holiday",
        re.compile(
            rf"\b(?:(?P<rel>last|this|next) )?(?P<holiday>{_HOLIDAY})\b(?: (?P<y>{_YEAR})\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "ago",
        re.compile(rf"\b(?P<n>\d+|{_NUMBER}) (?P<unit>day|week|month|year)s? ago\b", re.IGNORECASE),
    ),
    (
        "relative",
        re.compile(
            r"\b(?:the day before yesterday|yesterday|today|tonight|this morning|"
            r"this afternoon|this evening|last night|"
            r"(?:last|this|past) (?:week(?:end)?|month|year))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "weekday",
        re.compile(rf"\b(?:(?P<rel>last|this|on) )(?P<weekday>{_WEEKDAY})\b", re.IGNORECASE),
    ),
    ("year", re.compile(rf"\b(?:(?:in|of|since|during|from) )?(?P<y>{_YEAR})\b", re.IGNORECASE)),
]


def read_time(text: str, now: datetime) -> TimeReference:
    """The time window `text` names (relative times counted back from `now`)."""
    now = now.astimezone(UTC)
    taken: list[tuple[int, int]] = []
    window: TimeWindow | None = None
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            found = _window(kind, match, now)
            if found is None:
                continue
            taken.append(span)
            window = found if window is None else window.union(found)
    return TimeReference(window, bool(_ASKS_WHEN.search(text)), tuple(sorted(taken)))


def _window(kind: str, m: re.Match[str], now: datetime) -> TimeWindow | None:
    today = now.date()
    groups = m.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    if kind == "iso":
        return _day(_date(int(m["y"]), int(m["m"]), int(m["d"])))
    if kind in ("day_month", "month_day"):
        month = MONTHS[m["month"].casefold()]
        if year is None:
            year = _latest_year(today, month, int(m["d"]))
        return _day(_date(year, month, int(m["d"])))
    if kind == "month":
        return _month(m, today, year)
    if kind == "season":
        return _season(m, today, year)
    if kind == "holiday":
        return _holiday(m, today, year)
    if kind == "ago":
        return _ago(m, today)
    if kind == "relative":
        return _relative(m[0].casefold(), today)
    if kind == "weekday":
        back = (today.weekday() - WEEKDAYS[m["weekday"].casefold()]) % 7
        if m["rel"].casefold() == "last" and back == 0:
            back = 7
        return _day(today - timedelta(days=back))
    if kind == "year" and year is not None:
        return TimeWindow(_at(date(year, 1, 1)), _at(date(year + 1, 1, 1)), Granularity.YEAR)
    return None


def _month(m: re.Match[str], today: date, year: int | None) -> TimeWindow | None:
    word = m["month"]
    lead = (m["lead"] or "").casefold()
    # "may" and "march" are words too, and "Jan" a name: a month only when capitalised, and
    # "May" or an abbreviation only with a word before it or a year after it.
    folded = word.casefold()
    if not word[0].isupper() or (folded in _BARE_NOT_MONTH and not lead and year is None):
        return None
    month = MONTHS[folded]
    if year is None:
        year = today.year if month <= today.month else today.year - 1
        if lead == "last" and month >= today.month:
            year = today.year - 1
        elif lead == "next" and month <= today.month:
            year = today.year + 1
        elif lead == "this":
            year = today.year
    start = date(year, month, 1)
    return TimeWindow(_at(start), _at(_add_months(start, 1)), Granularity.MONTH)


def _season(m: re.Match[str], today: date, year: int | None) -> TimeWindow | None:
    first = SEASONS[m["season"].casefold()]
    if m["season"].casefold() == "fall" and not m["rel"] and year is None:
        return None  # "a fall" is not autumn
    rel = (m["rel"] or "").casefold()
    if year is None:
        # the latest season of that name that has begun
        year = today.year
        if date(year, first, 1) > today:
            year -= 1
        if rel == "last" and date(year, first, 1) <= today < _add_months(date(year, first, 1), 3):
            year -= 1
        elif rel == "next":
            year += 1
    start = date(year, first, 1)
    return TimeWindow(_at(start), _at(_add_months(start, 3)), Granularity.SEASON)


def _holiday(m: re.Match[str], today: date, year: int | None) -> TimeWindow | None:
    name = m["holiday"].casefold().replace("’", "'")
    rel = (m["rel"] or "").casefold()

    def span(y: int) -> tuple[date, date]:
        if name.startswith(("christmas", "xmas")):
            return date(y, 12, 24), date(y, 12, 27)
        if name.startswith("new year"):
            return date(y - 1, 12, 31), date(y, 1, 2)
        if name == "easter":
            sunday = easter(y)
            return sunday - timedelta(days=2), sunday + timedelta(days=2)
        if name == "halloween":
            return date(y, 10, 31), date(y, 11, 1)
        return date(y, 2, 14), date(y, 2, 15)  # Valentine's Day

    if year is None:
        year = today.year
        if span(year)[0] > today:
            year -= 1
        if rel == "last" and span(year)[0] <= today < span(year)[1] + timedelta(days=7):
            year -= 1  # "last Christmas", said just after it, is still the one before
        elif rel == "next":
            year += 1
    start, end = span(year)
    return TimeWindow(_at(start), _at(end), Granularity.DAY)


def _ago(m: re.Match[str], today: date) -> TimeWindow:
    raw = m["n"].casefold()
    n = int(raw) if raw.isdigit() else NUMBER_WORDS[raw]
    unit = m["unit"].casefold()
    if unit == "day":
        return _day(today - timedelta(days=n))
    if unit == "week":
        start = today - timedelta(weeks=n, days=today.weekday())
        return TimeWindow(_at(start), _at(start + timedelta(weeks=1)), Granularity.WEEK)
    if unit == "month":
        start = _add_months(today.replace(day=1), -n)
        return TimeWindow(_at(start), _at(_add_months(start, 1)), Granularity.MONTH)
    start = date(today.year - n, 1, 1)
    return TimeWindow(_at(start), _at(date(today.year - n + 1, 1, 1)), Granularity.YEAR)


def _relative(phrase: str, today: date) -> TimeWindow:
    phrase = " ".join(phrase.split())
    if phrase == "the day before yesterday":
        return _day(today - timedelta(days=2))
    if phrase in ("yesterday", "last night"):
        return _day(today - timedelta(days=1))
    if phrase.startswith(("today", "tonight", "this morning", "this afternoon", "this evening")):
        return _day(today)
    rel, unit = phrase.split()
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        if rel in ("last", "past") and saturday + timedelta(days=2) > today:
            saturday -= timedelta(weeks=1)
        return TimeWindow(_at(saturday), _at(saturday + timedelta(days=2)), Granularity.DAY)
    if unit == "week":
        monday = today - timedelta(days=today.weekday())
        if rel == "last":
            monday -= timedelta(weeks=1)
        if rel == "past":
            return TimeWindow(
                _at(today - timedelta(days=7)), _at(today + timedelta(days=1)), Granularity.WEEK
            )
        return TimeWindow(_at(monday), _at(monday + timedelta(weeks=1)), Granularity.WEEK)
    if unit == "month":
        first = today.replace(day=1)
        if rel == "last":
            first = _add_months(first, -1)
        if rel == "past":
            return TimeWindow(
                _at(today - timedelta(days=30)), _at(today + timedelta(days=1)), Granularity.MONTH
            )
        return TimeWindow(_at(first), _at(_add_months(first, 1)), Granularity.MONTH)
    year = today.year - 1 if rel == "last" else today.year
    if rel == "past":
        return TimeWindow(
            _at(today - timedelta(days=365)), _at(today + timedelta(days=1)), Granularity.YEAR
        )
    return TimeWindow(_at(date(year, 1, 1)), _at(date(year + 1, 1, 1)), Granularity.YEAR)


def easter(year: int) -> date:
    """Western Easter Sunday of `year` (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * ell) // 433
    month = (h + ell - 7 * m + 90) // 25
    day = (h + ell - 7 * m + 33 * month + 19) % 32
    return date(year, month, day)


def _latest_year(today: date, month: int, day: int) -> int:
    try:
        return today.year if date(today.year, month, day) <= today else today.year - 1
    except ValueError:
        return today.year - 1


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day(day: date | None) -> TimeWindow | None:
    if day is None:
        return None
    return TimeWindow(_at(day), _at(day + timedelta(days=1)), Granularity.DAY)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


_TIME_WORDS = re.compile(
    rf"\b(?:today|tonight|tomorrow|yesterday|this (?:morning|afternoon|evening|weekend)|"
    rf"(?:next|last) (?:week|month|year|weekend)|on the \d{{1,2}}{_ORD}|(?:{_WEEKDAY})s?|"
    rf"\d{{1,2}}[:h]\d{{2}})\b",
    re.IGNORECASE,
)


def mentions_time(text: str, now: datetime) -> bool:
    """Whether `text` says when something happens: a date, or a time relative to when it was
    written ("today", "on the 8th", "Thursday")."""
    return bool(_TIME_WORDS.search(text)) or read_time(text, now).window is not None
