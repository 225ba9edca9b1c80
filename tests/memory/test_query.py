"""Reading questions: whom they are about, in whose voice, whose kin, which words to match."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.models import AskedBy
from memory.query import AnswerKind, QueryReader

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# Made-up people, not the sample persona's: the rules must not depend on who they are.
OWNER_NAMES = ("Ana Duarte", "ana.d")
SPEAKERS = ("Ana Duarte", "Bruno Reis", "Mum", "Chloe")


@pytest.fixture
def reader() -> QueryReader:
    return QueryReader(OWNER_NAMES, SPEAKERS)


@pytest.mark.parametrize(
    ("question", "asker", "dense"),
    [
        ("Where does Ana work?", AskedBy.OTHER, "Where do I work?"),
        ("How does Ana take her coffee?", AskedBy.OTHER, "How do I take my coffee?"),
        ("Where do you live?", AskedBy.OTHER, "Where do I live?"),
        ("Are you vegetarian?", AskedBy.OTHER, "Am I vegetarian?"),
        ("Where does she live?", AskedBy.OTHER, "Where do I live?"),
        ("Ana lives where?", AskedBy.OTHER, "I live where?"),
        ("What did Bruno give Ana?", AskedBy.OTHER, "What did Bruno give me?"),
        ("What did ana.d post?", AskedBy.OTHER, "What did I post?"),
        # about another speaker: their voice
        ("Where does Bruno work?", AskedBy.OWNER, "Where do I work?"),
        ("What's Bruno's girlfriend called?", AskedBy.OWNER, "What's my girlfriend called?"),
        # the owner asking about themselves is already in their voice
        ("What's my dog called?", AskedBy.OWNER, "What's my dog called?"),
    ],
)
def test_a_question_is_put_in_the_voice_of_whom_it_is_about(
    reader: QueryReader, question: str, asker: AskedBy, dense: str
) -> None:
    assert reader.read(question, asker, NOW).dense == dense


def test_who_the_question_is_about_depends_on_who_asks(reader: QueryReader) -> None:
    # from a friend, "you" is the owner; from the owner, "you" is the twin and "I" the owner
    assert reader.read("Where do you work?", AskedBy.OTHER, NOW).about_owner
    assert not reader.read("Where do you work?", AskedBy.OWNER, NOW).about_owner
    assert reader.read("Where do I work?", AskedBy.OWNER, NOW).about_owner
    # "she" is the owner only when nobody else is named
    assert reader.read("Where does she work?", AskedBy.OTHER, NOW).about_owner
    about_chloe = reader.read("Where does Chloe work and what is her job?", AskedBy.OTHER, NOW)
    assert not about_chloe.about_owner and about_chloe.speakers == ("Chloe",)
    assert about_chloe.dense == "Where do I work and what is my job?"


def test_names_are_taken_out_of_the_lexical_query(reader: QueryReader) -> None:
    plan = reader.read("What did Bruno say about Ana's climbing?", AskedBy.OTHER, NOW)
    assert "Bruno" not in plan.lexical and "Ana" not in plan.lexical
    assert "climbing" in plan.lexical
    assert plan.speakers == ("Bruno Reis",) and plan.about_owner


def test_the_owners_kin_words(reader: QueryReader) -> None:
    assert reader.read("What's Ana's dad called?", AskedBy.OTHER, NOW).owner_kin == ("dad",)
    assert reader.read("What does her sister do?", AskedBy.OTHER, NOW).owner_kin == ("sister",)
    assert reader.read("Where does my best friend live?", AskedBy.OWNER, NOW).owner_kin == (
        "best friend",
    )
    # a speaker saved under a kin word is the owner's kin too, and the word stays matched
    mum = reader.read("What did Mum say about the wedding?", AskedBy.OWNER, NOW)
    assert mum.owner_kin == ("mum",) and mum.speakers == ("Mum",) and "Mum" in mum.lexical
    # someone else's kin is not the owner's
    assert reader.read("What's Bruno's girlfriend called?", AskedBy.OWNER, NOW).owner_kin == ()
    assert reader.read("Is a sister company involved?", AskedBy.OWNER, NOW).owner_kin == ()


def test_answer_frame_words_are_not_matched(reader: QueryReader) -> None:
    plan = reader.read("What's the name of my sourdough starter?", AskedBy.OWNER, NOW)
    assert "name" not in plan.lexical.split() and "sourdough" in plan.lexical
    assert "called" not in reader.read("What's my dog called?", AskedBy.OWNER, NOW).lexical
    # "called" as the verb it also is stays
    assert "called" in reader.read("Who called me on Friday?", AskedBy.OWNER, NOW).lexical
    kept = reader.read("What's my dog called?", AskedBy.OWNER, NOW, answer_frame=False)
    assert "called" in kept.lexical


def test_times_leave_both_queries(reader: QueryReader) -> None:
    plan = reader.read("What did Ana cook in August 2026?", AskedBy.OTHER, NOW)
    assert plan.time.window is not None
    assert "August" not in plan.lexical and "2026" not in plan.dense
    assert plan.dense == "What did I cook?"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did Ana move to Lisbon?", AnswerKind.DATE),
        ("What day do I fly out?", AnswerKind.DATE),
        ("Who does Ana go climbing with?", AnswerKind.PERSON),
        ("What's Ana's sister's name?", AnswerKind.PERSON),
        ("How many cats does Bruno have?", AnswerKind.NUMBER),
        ("Where did Ana do her PhD?", AnswerKind.PLACE),
        ("Which city is Ana from?", AnswerKind.PLACE),
        ("What does Ana do for fun?", None),
    ],
)
def test_the_kind_of_answer_a_question_wants(
    reader: QueryReader, question: str, kind: AnswerKind | None
) -> None:
    assert reader.read(question, AskedBy.OTHER, NOW).answer == kind


def test_a_question_that_is_only_a_name_keeps_it(reader: QueryReader) -> None:
    # "Who is Bruno?" is answered by what others say about him, not by "Who am I?"
    plan = reader.read("Who is Bruno?", AskedBy.OWNER, NOW)
    assert "Bruno" in plan.lexical and plan.dense == "Who is Bruno?"
    assert plan.speakers == ("Bruno Reis",)
