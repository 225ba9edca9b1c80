"""Dates as people write them, in one place: the month names and "15 March 2026"."""

from __future__ import annotations

from datetime import datetime

# English, whatever the locale: the twin's prompts and replies are in English.
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def spoken_date(when: datetime) -> str:
    """A date as people write it: "15 March 2026" (not "2026-03-15"), so that a memory's date
    reads like the answer to "when did…" that it is."""
    return f"{when.day} {MONTH_NAMES[when.month - 1]} {when.year}"
