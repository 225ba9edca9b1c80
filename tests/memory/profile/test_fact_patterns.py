"""The offline fact extractor: what each first-person pattern yields, and what it refuses."""

from __future__ import annotations

import pytest

from memory.models import Memory
from memory.profile import FactDraft, PatternFactExtractor
from tests.stored import stored_memory

OWNER = "Ada Moreira"


def memory(text: str, *, is_owner: bool = True, mid: str = "m_1") -> Memory:
    return stored_memory(
        text, id=mid, author=OWNER if is_owner else "Someone Else", is_owner=is_owner
    )


def extract(text: str) -> list[FactDraft]:
    return PatternFactExtractor().extract([memory(text)], OWNER)


@pytest.mark.parametrize(
    ("text", "attribute", "value", "statement", "first_person"),
    [
        (
            "I'm a nurse at the Hospital de Santa Maria, mostly nights.",
            "employer",
            "Hospital de Santa Maria",
            "Ada Moreira works at the Hospital de Santa Maria",
            "I work at the Hospital de Santa Maria",
        ),
        (
            "I work as an architect for a small studio.",
            "job",
            "architect",
            "Ada Moreira works as an architect",
            "I work as an architect",
        ),
        ("I live in Porto now.", "home_city", "Porto", "Ada Moreira lives in Porto", None),
        (
            "Last year I moved from Braga to Lyon for the job",
            "home_city",
            "Lyon",
            "Ada Moreira lives in Lyon",
            "I live in Lyon",
        ),
        (
            "Dinner with my sister Maya on Friday",
            "sibling:sister",
            "Maya",
            "Ada Moreira's sister is Maya",
            "My sister is Maya",
        ),
        (
            "Rui is my husband, in case anyone wondered",
            "partner",
            "Rui",
            "Ada Moreira's husband is Rui",
            "My husband is Rui",
        ),
        (
            "Walked my dog Biscuit along the river",
            "pet",
            "Biscuit",
            "Ada Moreira has a dog called Biscuit",
            "I have a dog called Biscuit",
        ),
        (
            "I'm allergic to peanuts.",
            "allergy",
            "peanuts",
            "Ada Moreira is allergic to peanuts",
            "I am allergic to peanuts",
        ),
        (
            "I'm still veggie after ten years",
            "diet",
            "vegetarian",
            "Ada Moreira is vegetarian",
            None,
        ),
        (
            "I can't stand coriander, tastes like soap",
            "dislikes",
            "coriander",
            "Ada Moreira can't stand coriander",
            "I can't stand coriander",
        ),
        (
            "I've been learning Portuguese with Rita",
            "activity",
            "learning Portuguese",
            "Ada Moreira has been learning Portuguese",
            "I have been learning Portuguese",
        ),
        (
            "My favourite dish is mushroom risotto",
            "favourite:dish",
            "mushroom risotto",
            "Ada Moreira's favourite dish is mushroom risotto",
            "My favourite dish is mushroom risotto",
        ),
    ],
)
def test_each_pattern(
    text: str, attribute: str, value: str, statement: str, first_person: str | None
) -> None:
    drafts = {(d.attribute, d.value): d for d in extract(text)}
    draft = drafts[(attribute, value)]
    assert draft.statement == statement
    if first_person:
        assert draft.first_person == first_person
    assert draft.support == ("m_1",)


def test_a_role_at_an_organisation_gives_job_and_employer() -> None:
    drafts = extract("I'm a marine biologist at the **Oceanário de Lisboa**, where I study squid.")
    assert {(d.attribute, d.value, d.exclusive) for d in drafts} == {
        ("job", "marine biologist", True),
        ("employer", "Oceanário de Lisboa", True),
        ("studies", "squid", False),
    }


def test_lists_become_one_fact_per_item() -> None:
    drafts = extract("I love hiking, rock climbing and strong coffee.")
    assert [(d.attribute, d.value) for d in drafts] == [
        ("likes", "hiking"),
        ("likes", "rock climbing"),
        ("likes", "strong coffee"),
    ]
    assert drafts[0].statement == "Ada Moreira loves hiking"


@pytest.mark.parametrize(
    "text",
    [
        "I don't live in Paris any more.",  # negation
        "Do I live in Porto or in Braga?",  # a question
        "If I moved to Lyon I would miss the sea.",  # a hedge before the match
        'She said "I live in Berlin" as a joke.',  # quoted
        "I love it.",  # a pronoun: no coreference
        "I'm a wreck today.",  # a mood, not a role
        "I'm a wee gremlin with short legs",  # not a role word
        "I have a friend who has a dog",  # not the owner's pet
        "my dad's over from Edinburgh next week",  # a relation without a name
    ],
)
def test_what_it_does_not_claim(text: str) -> None:
    assert extract(text) == []


def test_only_the_owners_own_words_count() -> None:
    others = PatternFactExtractor().extract([memory("I live in Rome", is_owner=False)], OWNER)
    assert others == []
