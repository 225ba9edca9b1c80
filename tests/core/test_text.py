"""The shared text helpers."""

from __future__ import annotations

from core.text import one_line


def test_one_line_collapses_whitespace_and_cuts_with_an_ellipsis() -> None:
    assert one_line("  Biscuit\n\tate   the sofa ", 40) == "Biscuit ate the sofa"
    cut = one_line("Biscuit ate the sofa again", 12)
    assert cut == "Biscuit ate…" and len(cut) == 12
