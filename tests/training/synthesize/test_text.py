"""The text helpers of the offline synthesizer: voice, passages and spans, clauses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.models import Kind, Memory, Visibility
from training.synthesize.extract import (
    Lexicon,
    SpanKind,
    find_spans,
    normalise,
    passages,
    span_kind,
)
from training.synthesize.grammar import analyse, base_form
from training.synthesize.voice import asked_by, in_voice, to_first_person, to_second_person
from twin.privacy import AudienceKind


def memory(text: str, *, kind: Kind = Kind.NOTE, author: str | None = None) -> Memory:
    when = datetime(2026, 3, 16, tzinfo=UTC)
    return Memory(
        id="m1",
        text=text,
        kind=kind,
        source_key="s",
        source_name="s",
        source_id="1",
        author=author,
        author_id=None,
        is_owner=author is None,
        timestamp=when,
        thread="t",
        reply_to=None,
        visibility=Visibility.FRIENDS,
        shared_with=None,
        content_hash="h",
        created_at=when,
    )


LEXICON = Lexicon(people=frozenset({"Tomás", "Dad"}), proper=frozenset({"Vertigo", "Lisbon"}))


@pytest.mark.parametrize(
    ("owner_says", "owner_hears"),
    [
        ("I ran my race and I'm tired.", "You ran your race and you're tired."),
        ("Biscuit and I are in. My legs!", "Biscuit and you are in. Your legs!"),
        ("Was I late? I was.", "Were you late? You were."),
        ("He gave me mine, myself.", "He gave you yours, yourself."),
        ("We're 2nd in the league", "We're 2nd in the league"),
        ("Calder I., Nair P. (2026)", "Calder I., Nair P. (2026)"),
    ],
)
def test_the_owner_is_addressed_in_the_second_person(owner_says: str, owner_hears: str) -> None:
    assert to_second_person(owner_says) == owner_hears
    assert in_voice(owner_says, AudienceKind.OWNER) == owner_hears
    assert in_voice(owner_says, AudienceKind.FRIEND) == owner_says


def test_questions_are_asked_by_the_audience() -> None:
    assert asked_by("When did I move?", AudienceKind.OWNER) == "When did I move?"
    assert asked_by("When did I move?", AudienceKind.FRIEND) == "When did you move?"
    # the "me" of "tell me" is whoever asks
    assert asked_by("Tell me about my dog.", AudienceKind.FRIEND) == "Tell me about your dog."


def test_a_message_to_the_owner_is_asked_as_the_owner_would() -> None:
    assert to_first_person("what time do you land?") == "what time do I land?"
    assert (
        to_first_person("are you still doing the cello thing") == "am I still doing the cello thing"
    )
    assert to_first_person("did the parcel arrive for you?") == "did the parcel arrive for me?"
    assert to_first_person("is that your research?") == "is that my research?"
    assert to_first_person("can I bring my camera?") is None  # the writer's own "I"


def test_notes_become_passages_with_their_title_section_and_labels() -> None:
    text = (
        "Biscuit › Vet\n- **Clinic**: Graça, Dr. Sousa. Vaccines every\n  spring.\n"
        "| date | what |\n|---|---|\n| 2026-05-14 | **accepted** |\n\nHe hates the hoover."
    )
    found = passages(memory(text))
    assert [p.text for p in found] == [
        "Clinic: Graça, Dr. Sousa. Vaccines every spring.",
        "2026-05-14: accepted",
        "He hates the hoover.",
    ]
    assert all(p.topic == "Biscuit" and p.section == "Vet" for p in found)
    assert (found[0].label, found[0].value) == (
        "Clinic",
        "Graça, Dr. Sousa. Vaccines every spring.",
    )
    assert found[0].verbatim and not found[1].verbatim  # a table row is rebuilt, not quoted


def test_a_chat_message_splits_into_its_lines_without_media() -> None:
    text = "Stitches out! He did a zoomie\n[photo]\nknocked over my music stand"
    found = passages(memory(text, kind=Kind.CHAT, author="Iris"))
    assert [p.text for p in found] == [
        "Stitches out!",
        "He did a zoomie",
        "knocked over my music stand",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ran the half on Sunday 15 March 2026 in 1:52:41.",
            [("date", "Sunday 15 March 2026"), ("duration", "1:52:41")],
        ),
        (
            "Climbing at Vertigo every Tuesday at 19:00",
            [("place", "Vertigo"), ("weekday", "every Tuesday"), ("time", "19:00")],
        ),
        (
            "Tomás signed up 42 testers for €1,500",
            [("person", "Tomás"), ("quantity", "42 testers"), ("money", "€1,500")],
        ),
        ('Her talk "How to vanish" was in 2025', [("title", "How to vanish"), ("year", "2025")]),
        ("I'll miss Sunday's snorkel", []),
    ],
)
def test_answer_spans(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(s.kind.value, s.text) for s in find_spans(text, LEXICON)] == expected


def test_a_value_has_a_kind() -> None:
    assert span_kind("15 March 2026", LEXICON) == SpanKind.DATE
    assert span_kind("Lisbon", LEXICON) == SpanKind.NAME
    assert span_kind("the squeaky crab", LEXICON) is None


def test_facts_match_memory_text_whatever_the_accents_case_and_markdown() -> None:
    assert normalise("São Miguel, €18,000") == normalise("**sao  MIGUEL**, €18000")
    assert normalise("Tōdai-ji 🦌") == "todai-ji"


@pytest.mark.parametrize(
    ("clause", "owner_speaks", "inverted"),
    [
        ("Signed up in a moment of weakness", True, "did I sign up in a moment of weakness"),
        ("the paper got accepted", False, "did the paper get accepted"),
        ("I play in the orchestra", False, "do I play in the orchestra"),
        ("I've watched cuttlefish in tanks", False, "have I watched cuttlefish in tanks"),
        ("Tomás lives in Graça", False, "does Tomás live in Graça"),
        ("Concert is in the church", False, "is concert in the church"),
        ("I'll book the wee place", False, "will I book the wee place"),
    ],
)
def test_clauses_turn_into_questions(clause: str, owner_speaks: bool, inverted: str) -> None:
    read = analyse(clause, owner_speaks=owner_speaks, names=frozenset({"Tomás"}))
    assert read is not None and read.inverted() == inverted


def test_what_is_not_a_clause_is_not_asked_about() -> None:
    names = frozenset({"Tomás"})
    assert analyse("Signed up in a moment of weakness", owner_speaks=False, names=names) is None
    assert analyse("Water shoes, not flip flops", owner_speaks=True, names=names) is None
    assert analyse("It is raining", owner_speaks=True, names=names) is None


@pytest.mark.parametrize(
    ("past", "base"),
    [
        ("signed", "sign"),
        ("moved", "move"),
        ("stopped", "stop"),
        ("cried", "cry"),
        ("ran", "run"),
        ("visited", "visit"),
        ("rolled", "roll"),
    ],
)
def test_base_forms(past: str, base: str) -> None:
    assert base_form(past) == base
