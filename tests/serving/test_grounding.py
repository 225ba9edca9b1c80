"""An answer must add what its memories hold: echoes and invented details are caught."""

from __future__ import annotations

from datetime import datetime

from serving.grounding import ECHO_RUN, content_words, echoes, gives_what_is_asked, grounding

NOW = datetime(2026, 11, 21, 12, 0)

PEOPLE = ["Iris Calder"]
MEMORIES = [
    "16 March 2026 note: Lisbon half marathon › Race day. Start across the 25 de Abril bridge.",
    "2 November 2025 Iris Calder: Lessons with Rita every Monday.",
]


def test_an_answer_with_a_fact_from_its_memories_holds() -> None:
    check = grounding(
        "You ran it on 16 March 2026.", "When did I run the half marathon?", MEMORIES, PEOPLE
    )
    assert check.holds and check.added == ("16", "march", "2026")
    # inflections match by their first letters; a plain word memory lacks is not held against it
    assert grounding("Rita teaches you, on Mondays.", "Who teaches me?", MEMORIES).holds


def test_an_echo_of_the_question_adds_nothing() -> None:
    check = grounding("You teach me Portuguese.", "Who teaches me Portuguese?", MEMORIES)
    assert not check.holds and check.added == () and check.unsupported == ()


def test_the_names_in_the_prompt_are_no_answer_but_no_invention_either() -> None:
    who = "Who made the InkSpot logo?"
    memories = ["2 May 2026 Iris Calder: Priya drew the InkSpot logo"]
    shrug = grounding("Iris has no information about who made it.", who, memories, PEOPLE)
    assert not shrug.holds and shrug.added == () and shrug.unsupported == ()
    assert grounding("Priya drew it for Iris.", who, memories, PEOPLE).holds


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


def test_an_answer_must_be_of_the_kind_the_question_asks_for() -> None:
    when = "When did the paper get accepted?"
    assert not gives_what_is_asked("The paper got accepted.", when, NOW)
    for dated in ("On 30 March 2026.", "In March.", "Last Tuesday, at 19:00.", "In 2026."):
        assert gives_what_is_asked(dated, when, NOW), dated
    assert gives_what_is_asked("On Wednesdays.", "What day do I have orchestra?", NOW)
    count = "How many testers joined the beta on day one?"
    assert not gives_what_is_asked("The beta was launched on day one.", count, NOW)
    assert gives_what_is_asked("42 testers.", count, NOW)
    assert gives_what_is_asked("He's four.", "How old is my nephew?", NOW)
    # a question whose wording asks for no particular kind takes any answer
    assert gives_what_is_asked("Rita does.", "Who teaches me Portuguese?", NOW)


SYSTEM = (
    "You are the AI twin of Iris Calder, talking with Iris Calder. Say 'you' to them. Judge the "
    "other agent's reply from Iris Calder's point of view: give a verdict (fits, partly, does "
    "not fit), say what to change, and list the facts you checked."
)


def test_an_answer_reciting_its_instructions_is_caught() -> None:
    # the reply a trained critic gave on a held-out sample
    assert echoes("You're the AI twin of Iris Calder, talking with Iris Calder. Say you.", SYSTEM)
    assert echoes("Say what to change, and list the facts you checked: none.", SYSTEM)
    # an introduction shares six words in a row; a verdict a few
    assert not echoes("I'm the AI twin of Iris Calder: I answer from her notes.", SYSTEM)
    assert not echoes("Verdict: does not fit. Iris is vegetarian; the steakhouse is not.", SYSTEM)
    words = SYSTEM.split()
    assert echoes(" ".join(words[3 : 3 + ECHO_RUN]), SYSTEM)
    assert not echoes(" ".join(words[3 : 3 + ECHO_RUN - 1]), SYSTEM)
