"""Splitting a reply into messages a platform accepts (Telegram: 4096, Discord: 2000 characters).

A reply is cut between paragraphs where it can, then between lines, then between words; a word is
cut only when it alone is longer than a message. A fenced code block stays in one message when it
fits in one; when it does not, each part is fenced again so every message renders as code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Measure = Callable[[str], int]

TELEGRAM_LIMIT = 4096
DISCORD_LIMIT = 2000

_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD_GAPS = re.compile(r"(\s+)")


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class _Block:
    """A paragraph or a fenced code block, with the whitespace that separated it from the last."""

    text: str
    gap: str
    fence: str = ""  # the opening fence line of a code block, "" for prose


def split_message(text: str, limit: int, measure: Measure = len) -> list[str]:
    """`text` as a list of messages of at most `limit` (as `measure` counts) each."""
    if limit < 16:
        raise ValueError("a message limit below 16 characters leaves no room to split sensibly")
    text = text.strip()
    if not text:
        return []
    if measure(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for block in _blocks(text):
        for piece in _fit(block, limit, measure):
            joined = f"{current}{block.gap}{piece}" if current else piece
            if measure(joined) <= limit:
                current = joined
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def _blocks(text: str) -> list[_Block]:
    """Paragraphs and fenced code blocks, in order. An unclosed fence runs to the end."""
    blocks: list[_Block] = []
    lines = text.split("\n")
    gap: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            gap.append(line)
            i += 1
            continue
        separator = "\n" * (len(gap) + 1) if blocks else ""
        gap = []
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(marker):
                end += 1
            body = lines[i : end + 1]
            blocks.append(_Block("\n".join(body), separator, fence=line))
            i = end + 1
        else:
            end = i
            while end < len(lines) and lines[end].strip() and not _FENCE.match(lines[end]):
                end += 1
            blocks.append(_Block("\n".join(lines[i:end]), separator))
            i = end
    return blocks


def _fit(block: _Block, limit: int, measure: Measure) -> list[str]:
    """The block as pieces of at most `limit`: whole if it fits."""
    if measure(block.text) <= limit:
        return [block.text]
    if block.fence:
        return _fit_code(block, limit, measure)
    return _pack(block.text.split("\n"), "\n", limit, measure, _fit_line)


def _fit_code(block: _Block, limit: int, measure: Measure) -> list[str]:
    """A code block too long for one message, re-fenced in parts split between lines."""
    lines = block.text.split("\n")
    marker = block.fence.strip()[:3]
    closed = len(lines) > 1 and lines[-1].strip().startswith(marker)
    body = lines[1:-1] if closed else lines[1:]
    opening, closing = block.fence.strip(), marker
    room = limit - measure(opening) - measure(closing) - 2
    if room < 8:
        return _pack(block.text.split("\n"), "\n", limit, measure, _hard_cut)
    parts = _pack(body, "\n", room, measure, _hard_cut)
    return [f"{opening}\n{part}\n{closing}" for part in parts]


def _fit_line(line: str, limit: int, measure: Measure) -> list[str]:
    """A line too long for one message, split between words."""
    words = [w for w in _WORD_GAPS.split(line) if w and not w.isspace()]
    return _pack(words, " ", limit, measure, _hard_cut)


def _hard_cut(text: str, limit: int, measure: Measure) -> list[str]:
    """A word (or code line) longer than a message: cut where the limit falls."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if current and measure(current + char) > limit:
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def _pack(
    units: list[str],
    joiner: str,
    limit: int,
    measure: Measure,
    too_long: Callable[[str, int, Measure], list[str]],
) -> list[str]:
    """Join `units` greedily into pieces of at most `limit`; a unit longer than that is first
    broken by `too_long`."""
    pieces: list[str] = []
    current: str | None = None
    for unit in units:
        parts = [unit] if measure(unit) <= limit else too_long(unit, limit, measure)
        for part in parts:
            joined = part if current is None else f"{current}{joiner}{part}"
            if measure(joined) <= limit:
                current = joined
            else:
                if current is not None:
                    pieces.append(current)
                current = part
    if current is not None:
        pieces.append(current)
    return [p for p in pieces if p.strip()]
