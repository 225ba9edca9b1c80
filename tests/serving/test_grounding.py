"""An answer must add what its memories hold: echoes and invented details are caught."""

from __future__ import annotations

from serving.grounding import content_words, grounding

MEMORIES = [
    "Iris Calder",
    "16 March 2026 note: Lisbon half marathon › Race day. Start across the 25 de Abril bridge.",
    "2 November 2025 Iris Calder: Lessons with Rita every Monday.",
]


def test_an_answer_with_a_fact_from_its_memories_holds() -> None:
    check = grounding("You ran it on 16 March 2026.", "When did I run the half marathon?", MEMORIES)
    assert check.holds and check.added == ("16", "march", "2026")
    # inflections match by their first letters; a plain word memory lacks is not held against it
    assert grounding("Rita teaches you, on Mondays.", "Who teaches me?", MEMORIES).holds


def test_an_echo_of_the_question_adds_nothing() -> None:
    check = grounding("You teach me Portuguese.", "Who teaches me Portuguese?", MEMORIES)
    assert not check.holds and check.added == () and check.unsupported == ()


def test_an_invented_number_or_name_is_unsupported() -> None:
    bridge = grounding("It starts on the 25th bridge.", "Which bridge does it start on?", MEMORIES)
    assert not bridge.holds and bridge.unsupported == ("25th",)
    name = grounding("Lessons with Rita and Sofia.", "Who teaches me?", MEMORIES)
    assert not name.holds and name.unsupported == ("sofia",)
    # a capital that opens a sentence is not taken for a name
    assert grounding("Lessons. Every Monday with Rita.", "Who teaches me?", MEMORIES).holds


def test_content_words_drop_function_words_and_apostrophes() -> None:
    assert content_words("What's Iris's dog called? It's 1:52:41!") == [
        "iriss",
        "dog",
        "called",
        "1:52:41",
    ]
