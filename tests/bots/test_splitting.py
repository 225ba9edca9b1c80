"""Splitting replies at the platforms' limits without breaking words or code blocks."""

from __future__ import annotations

import re

import pytest

from bots.splitting import DISCORD_LIMIT, TELEGRAM_LIMIT, split_message, utf16_length

PROSE = (
    "Biscuit had his stitches out on the 21st and is back to stealing socks. "
    "The vet says no running on the beach for another week, which he disagrees with. "
)


def words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text) if w and not w.startswith("```")]


def test_a_short_reply_is_one_message() -> None:
    assert split_message("  Hello there!  ", DISCORD_LIMIT) == ["Hello there!"]
    assert split_message("   ", DISCORD_LIMIT) == []


def test_long_prose_is_cut_between_words_within_the_limit() -> None:
    text = PROSE * 60  # one paragraph of ~9,600 characters
    parts = split_message(text, DISCORD_LIMIT)
    assert len(parts) == 5
    assert all(len(p) <= DISCORD_LIMIT for p in parts)
    assert words(" ".join(parts)) == words(text)
    assert all(not p[-1].isalpha() or text.find(p) >= 0 for p in parts)


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paragraphs = [(f"Paragraph {i}. " + PROSE * 3).strip() for i in range(12)]
    parts = split_message("\n\n".join(paragraphs), DISCORD_LIMIT)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= DISCORD_LIMIT
        # Each message holds whole paragraphs, in order.
        for chunk in part.split("\n\n"):
            assert chunk in paragraphs
    assert "\n\n".join(parts) == "\n\n".join(paragraphs)


def test_a_code_block_that_fits_moves_whole_to_the_next_message() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(100)) + "\n```"
    text = PROSE * 14 + "\n\n" + code + "\n\nThat's it."
    parts = split_message(text, DISCORD_LIMIT)
    assert len(code) < DISCORD_LIMIT
    assert any(code in p for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)


def test_a_code_block_longer_than_a_message_is_refenced_in_each_part() -> None:
    lines = [f"    total += measure(sample_{i})  # step {i}" for i in range(200)]
    text = "Here is the script:\n```python\n" + "\n".join(lines) + "\n```\nRun it twice."
    parts = split_message(text, DISCORD_LIMIT)
    code_parts = [p for p in parts if "```" in p]
    assert len(code_parts) >= 4
    for part in parts:
        assert len(part) <= DISCORD_LIMIT
        assert part.count("```") % 2 == 0, part[:80]
    for part in code_parts:
        fences = [line for line in part.split("\n") if line.startswith("```")]
        assert fences[0] == "```python" and fences[-1] == "```"
    kept = [line for p in code_parts for line in p.split("\n") if line.startswith("    ")]
    assert kept == lines  # every line whole, in order
    assert parts[0].startswith("Here is the script:\n```python") and parts[-1].endswith("twice.")


def test_an_unclosed_code_block_is_closed_in_every_part() -> None:
    text = "```\n" + "\n".join("x = 1" for _ in range(600))
    parts = split_message(text, DISCORD_LIMIT)
    assert len(parts) >= 2
    assert all(p.startswith("```") and p.endswith("```") for p in parts)


def test_a_word_longer_than_a_message_is_the_only_thing_cut() -> None:
    url = "https://example.org/" + "a" * 5000
    parts = split_message(f"See {url} for details.", DISCORD_LIMIT)
    assert all(len(p) <= DISCORD_LIMIT for p in parts)
    assert parts[0] == "See"
    assert "".join(parts[1:]).removesuffix(" for details.") == url
    assert parts[-1].endswith("a for details.")


def test_telegram_counts_utf16_units() -> None:
    assert utf16_length("🐙") == 2
    text = "🐙 " * 3000  # 6,000 characters, 9,000 UTF-16 units
    parts = split_message(text, TELEGRAM_LIMIT, utf16_length)
    assert all(utf16_length(p) <= TELEGRAM_LIMIT for p in parts)
    assert len(parts) == 3
    assert sum(p.count("🐙") for p in parts) == 3000


def test_a_tiny_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        split_message("hello", 4)
