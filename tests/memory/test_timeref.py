"""Times in questions read as windows of dates, relative to a given now."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from memory.timeref import Granularity, easter, mentions_time, read_time

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday


def span(text: str, now: datetime = NOW) -> tuple[date, date] | None:
    window = read_time(text, now).window
    return (window.start.date(), window.end.date()) if window else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What did Dad build me in September 2026?", (date(2026, 9, 1), date(2026, 10, 1))),
        ("Where was I on 15 March 2026?", (date(2026, 3, 15), date(2026, 3, 16))),
        ("What happened on March 15th, 2026?", (date(2026, 3, 15), date(2026, 3, 16))),
        ("Anything on 2026-03-15?", (date(2026, 3, 15), date(2026, 3, 16))),
        ("What did we do in 2025?", (date(2025, 1, 1), date(2026, 1, 1))),
        # a month without a year is the latest one that has begun
        ("Who visited in April?", (date(2026, 4, 1), date(2026, 5, 1))),
        ("What did I cook in December?", (date(2025, 12, 1), date(2026, 1, 1))),
        ("What did I do last Christmas?", (date(2025, 12, 24), date(2025, 12, 27))),
        ("Where did we go last summer?", (date(2026, 6, 1), date(2026, 9, 1))),
        ("What did I read last week?", (date(2026, 11, 9), date(2026, 11, 16))),
        ("What did Sam say yesterday?", (date(2026, 11, 20), date(2026, 11, 21))),
        ("What did I buy three weeks ago?", (date(2026, 10, 26), date(2026, 11, 2))),
        ("Who did I meet last Tuesday?", (date(2026, 11, 17), date(2026, 11, 18))),
        ("What did we do at Easter 2026?", (date(2026, 4, 3), date(2026, 4, 7))),
    ],
)
def test_times_named_in_questions(text: str, expected: tuple[date, date]) -> None:
    assert span(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "May I ask where you work?",  # a verb, not the month
        "Did Jan like the film?",  # a name, not January
        "How did she recover from the fall?",
        "What's my dog called?",
    ],
)
def test_words_that_are_not_times(text: str) -> None:
    assert read_time(text, NOW).window is None


def test_when_questions_and_the_text_without_its_times() -> None:
    ref = read_time("When did I run the half marathon?", NOW)
    assert ref.asks_when and ref.window is None
    dated = read_time("What did Dad build me in September 2026?", NOW)
    assert not dated.asks_when
    assert dated.without_times("What did Dad build me in September 2026?") == (
        "What did Dad build me ?"
    )


def test_a_day_is_padded_for_what_is_written_around_it() -> None:
    window = read_time("What happened on 15 March 2026?", NOW).window
    assert window is not None and window.granularity == Granularity.DAY
    padded = window.padded()
    assert padded.start.date() == date(2026, 3, 14) and padded.end.date() == date(2026, 3, 18)


def test_easter_dates() -> None:
    assert easter(2024) == date(2024, 3, 31)
    assert easter(2026) == date(2026, 4, 5)


def test_a_text_mentions_a_time_by_date_weekday_clock_or_relative_word() -> None:
    for text in ("On Wednesdays", "every Tuesday", "at 19:00", "last week", "on 3 March"):
        assert mentions_time(text, NOW), text
    assert not mentions_time("The paper got accepted.", NOW)
