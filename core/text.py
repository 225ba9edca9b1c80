"""Text helpers every layer shares."""

from __future__ import annotations


def one_line(text: str, width: int) -> str:
    """`text` with its whitespace collapsed onto one line, cut to `width` characters with an
    ellipsis when longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
