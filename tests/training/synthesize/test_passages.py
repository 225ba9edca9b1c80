"""The text helpers of the offline synthesizer: voice, passages and spans, clauses."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from memory.models import Kind, Memory
from tests.stored import stored_memory
from training.synthesize.grammar import analyse, base_form, noun_phrase, third_person_singular
from training.synthesize.passages import (
    Lexicon,
    SpanKind,
    find_spans,
    normalise,
    passages,
    span_kind,
    speak_dates,
)
from training.synthesize.voice import (
    QuestionForm,
    Voice,
    to_first_person,
    to_second_person,
    to_third_person,
)
from twin.config import Pronouns
from twin.privacy import AudienceKind


def memory(text: str, *, kind: Kind = Kind.NOTE, author: str | None = None) -> Memory:
    when = datetime(2026, 3, 16, tzinfo=UTC)
    return stored_memory(
        text, kind=kind, author=author, is_owner=author is None, timestamp=when, thread="t"
    )


LEXICON = Lexicon(people=frozenset({"Tomás", "Dad"}), proper=frozenset({"Vertigo", "Lisbon"}))
FRIEND = Voice(AudienceKind.FRIEND, "Iris", Pronouns.SHE)
OWNER_VOICE = Voice(AudienceKind.OWNER, "Iris", Pronouns.SHE)


@pytest.mark.parametrize(
    ("owner_says", "owner_hears"),
    [
        ("I ran my race and I'm tired.", "You ran your race and you're tired."),
        ("Biscuit and I are in. My legs!", "Biscuit and you are in. Your legs!"),
        ("Was I late? I was.", "Were you late? You were."),
        ("He gave me mine, myself.", "He gave you yours, yourself."),
        ("i fly to Lisbon, i.e. soon", "You fly to Lisbon, i.e. soon"),
        ('Tomás said "I\'m in" and I laughed', 'Tomás said "I\'m in" and you laughed'),
        ("We're 2nd in the league", "We're 2nd in the league"),
        ("Calder I., Nair P. (2026)", "Calder I., Nair P. (2026)"),
    ],
)
def test_the_owner_is_addressed_in_the_second_person(owner_says: str, owner_hears: str) -> None:
    assert to_second_person(owner_says) == owner_hears
    assert OWNER_VOICE.say(owner_says) == owner_hears


@pytest.mark.parametrize(
    ("owner_says", "friends_hear"),
    [
        # the name first, then the pronoun; the verb after the subject agrees
        ("I work at the lab; my bike is old.", "Iris works at the lab; her bike is old."),
        (
            "I climb at Vertigo. I climb on Tuesdays.",
            "Iris climbs at Vertigo. She climbs on Tuesdays.",
        ),
        ("I watch films and I study kelp.", "Iris watches films and she studies kelp."),
        ("I always go on Sundays", "Iris always goes on Sundays"),
        ("I need a nap", "Iris needs a nap"),
        ("I have a greyhound. I'm his favourite.", "Iris has a greyhound. She's his favourite."),
        ("I am here, I was there.", "Iris is here, she was there."),
        ("I do the dishes; I don't cook.", "Iris does the dishes; she doesn't cook."),
        ("I've been there. I've a dog.", "Iris has been there. She has a dog."),
        ("I was there and I've been back.", "Iris was there and she's been back."),
        ("I'd love to. I'd been there.", "Iris would love to. She'd been there."),
        ("I'll come. I'll bring it.", "Iris will come. She'll bring it."),
        ("I moved in 2024 and haven't looked back.", "Iris moved in 2024 and hasn't looked back."),
        ("He gave me mine, myself.", "He gave Iris hers, herself."),
        ("My legs! I can't feel them.", "Iris's legs! She can't feel them."),
        ("i fly to Lisbon", "Iris flies to Lisbon"),
        # past tenses, modals and the words between stay; so do "we", quotes and initials
        ("I ran the half in 1:52:41.", "Iris ran the half in 1:52:41."),
        ("I lit a candle and I read a book.", "Iris lit a candle and she read a book."),
        (
            "I can swim, I might come, I used to live there.",
            "Iris can swim, she might come, she used to live there.",
        ),
        ("I really like it", "Iris really likes it"),
        ("I'm off to Kyoto", "Iris is off to Kyoto"),
        ("Biscuit and I are in.", "Biscuit and Iris are in."),
        ("A friend and I came up with it", "A friend and Iris came up with it"),
        ("We're 2nd in the league, our team", "We're 2nd in the league, our team"),
        ('Tomás said "I\'m in" and I laughed', 'Tomás said "I\'m in" and Iris laughed'),
        ("Calder I., Nair P. (2026)", "Calder I., Nair P. (2026)"),
        ("Sunday was great", "Sunday was great"),
    ],
)
def test_others_hear_about_the_owner_in_the_third_person(
    owner_says: str, friends_hear: str
) -> None:
    assert to_third_person(owner_says, "Iris", Pronouns.SHE) == friends_hear
    assert FRIEND.say(owner_says) == friends_hear


@pytest.mark.parametrize(
    ("pronouns", "owner_says", "friends_hear"),
    [
        (Pronouns.HE, "I work here and my dog likes me.", "Iris works here and his dog likes him."),
        (Pronouns.HE, "I'm in, I've been told.", "Iris is in, he's been told."),
        # "they" keeps the plural verb forms
        (
            Pronouns.THEY,
            "I work here; I climb; I am tired.",
            "Iris works here; they climb; they are tired.",
        ),
        (
            Pronouns.THEY,
            "Was I late? I was. I'm sorry.",
            "Was Iris late? They were. They're sorry.",
        ),
        (
            Pronouns.THEY,
            "I hurt myself and I don't mind.",
            "Iris hurt themselves and they don't mind.",
        ),
    ],
)
def test_the_owner_s_pronouns_and_their_verb_forms(
    pronouns: Pronouns, owner_says: str, friends_hear: str
) -> None:
    assert to_third_person(owner_says, "Iris", pronouns) == friends_hear


def test_once_named_the_owner_is_a_pronoun_from_the_start() -> None:
    assert to_third_person("I work at the lab.", "Iris", Pronouns.SHE, named=True) == (
        "She works at the lab."
    )
    assert to_third_person("Where do I work?", "Iris", Pronouns.THEY, named=True) == (
        "Where do they work?"
    )


@pytest.mark.parametrize(
    ("owner_asks", "by_name", "by_pronoun", "to_them"),
    [
        (
            "When did I run the half?",
            "When did Iris run the half?",
            "When did she run the half?",
            "When did you run the half?",
        ),
        ("Where do I work?", "Where does Iris work?", "Where does she work?", "Where do you work?"),
        ("Am I late?", "Is Iris late?", "Is she late?", "Are you late?"),
        (
            "Which places have I lived in?",
            "Which places has Iris lived in?",
            "Which places has she lived in?",
            "Which places have you lived in?",
        ),
        ("What's my job?", "What's Iris's job?", "What's her job?", "What's your job?"),
        (
            "How would I describe myself?",
            "How would Iris describe herself?",
            "How would she describe herself?",
            "How would you describe yourself?",
        ),
        (
            "Remind me when I climb.",
            "Remind me when Iris climbs.",
            "Remind me when she climbs.",
            "Remind me when you climb.",
        ),
        (
            "Tell me about my dog.",
            "Tell me about Iris's dog.",
            "Tell me about her dog.",
            "Tell me about your dog.",
        ),
    ],
)
def test_friends_ask_to_the_owner_by_name_or_by_pronoun(
    owner_asks: str, by_name: str, by_pronoun: str, to_them: str
) -> None:
    assert FRIEND.ask(owner_asks, QuestionForm.NAME) == by_name
    assert FRIEND.ask(owner_asks, QuestionForm.PRONOUN) == by_pronoun
    assert FRIEND.ask(owner_asks, QuestionForm.YOU) == to_them
    for form in QuestionForm:
        assert OWNER_VOICE.ask(owner_asks, form) == owner_asks


def test_a_friend_s_questions_are_a_seeded_mix_of_forms() -> None:
    def forms(seed: int) -> list[QuestionForm]:
        rng = random.Random(seed)
        return [FRIEND.form(rng) for _ in range(400)]

    drawn = forms(3)
    shares = {form: drawn.count(form) / len(drawn) for form in QuestionForm}
    assert shares[QuestionForm.YOU] > 0.35 and shares[QuestionForm.NAME] > 0.2
    assert shares[QuestionForm.PRONOUN] > 0.05
    assert drawn == forms(3) and drawn != forms(4)
    rng = random.Random(3)
    assert {OWNER_VOICE.form(rng) for _ in range(50)} == {QuestionForm.YOU}


def test_a_memory_is_named_as_people_name_it() -> None:
    note = memory("Ran the half.")
    message = memory("see you", kind=Kind.CHAT, author="Tomás Ferreira")
    assert OWNER_VOICE.source(note) == "your note of 16 March 2026"
    assert FRIEND.source(note) == "Iris's note of 16 March 2026"
    assert FRIEND.source(message) == "Tomás's message of 16 March 2026"


def test_a_message_to_the_owner_is_asked_as_the_owner_would() -> None:
    assert to_first_person("what time do you land?") == "what time do I land?"
    assert (
        to_first_person("are you still doing the cello thing") == "am I still doing the cello thing"
    )
    assert to_first_person("did the parcel arrive for you?") == "did the parcel arrive for me?"
    assert to_first_person("is that your research?") == "is that my research?"
    assert to_first_person("can I bring my camera?") is None  # the writer's own "I"


def test_iso_dates_are_spoken() -> None:
    assert speak_dates("2025-06-30: €6,200, 2026-11-01") == "30 June 2025: €6,200, 1 November 2026"
    assert speak_dates("version 2026-13-01") == "version 2026-13-01"


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
        ("Concert is in the church", False, "is the concert in the church"),
        ("I lit a candle in the Sé", False, "did I light a candle in the Sé"),
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
    # a capitalised word after a name is more of the name, not a verb
    assert analyse("Helena Alves every Thursday", owner_speaks=False, names=names) is None


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
        ("lit", "light"),
        ("swore", "swear"),
    ],
)
def test_base_forms(past: str, base: str) -> None:
    assert base_form(past) == base


@pytest.mark.parametrize("present", ["need", "feed", "speed", "work", "Iris"])
def test_present_tenses_are_no_past(present: str) -> None:
    assert base_form(present) is None


@pytest.mark.parametrize(
    ("base", "third"),
    [
        ("work", "works"),
        ("watch", "watches"),
        ("miss", "misses"),
        ("go", "goes"),
        ("study", "studies"),
        ("play", "plays"),
        ("have", "has"),
        ("do", "does"),
    ],
)
def test_the_present_after_she_or_he(base: str, third: str) -> None:
    assert third_person_singular(base) == third


@pytest.mark.parametrize(
    ("text", "word", "phrase"),
    [
        ("Stitches out, the stitches came out clean", "stitches", "the stitches"),
        ("It's a crater lake, the crater lake is cold", "crater", "the crater lake"),
        (
            "Background matching and the disruptive patterns",
            "disruptive",
            "the disruptive patterns",
        ),
        ("say hi to your dad and maya", "dad", "your dad"),
        # a verb, an adjective, a word with no determiner: no thing to ask about
        ("are you alive", "alive", None),
        ("the tide pools are unreal", "unreal", None),
        ("it was disruptive", "disruptive", None),
        ("I ate an unreasonable number of queijadas", "unreasonable", None),
        ("when are you coming to visit", "visit", None),
    ],
)
def test_things_asked_about_are_noun_phrases(text: str, word: str, phrase: str | None) -> None:
    assert noun_phrase(text, word, frozenset({"the", "your"})) == phrase
