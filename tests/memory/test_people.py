"""Kin words and the roles they name (English vocabulary, no one's names)."""

from __future__ import annotations

from memory.models import Visibility
from memory.people import author_named, fact_role, kin_role, roles_match
from memory.profile.index import IndexedFact


def fact(attribute: str, value: str) -> IndexedFact:
    return IndexedFact(
        1, f"X's {attribute} is {value}", "", attribute, value, ("m1",), Visibility.FRIENDS
    )


def test_kin_words_name_roles() -> None:
    assert kin_role("Mum") == kin_role("mother") == kin_role("mom") == "mother"
    assert kin_role("best  friend") == "best friend"
    assert kin_role("teapot") is None


def test_a_wider_role_covers_the_narrower_ones() -> None:
    assert roles_match("sibling", "sister") and roles_match("parent", "father")
    assert roles_match("girlfriend", "partner") and roles_match("partner", "husband")
    assert not roles_match("sister", "brother") and not roles_match("son", "daughter")


def test_the_role_an_l1_fact_gives() -> None:
    assert fact_role(fact("sibling:sister", "Maya")) == "sister"
    assert fact_role(fact("parent:dad", "Tom")) == "father"
    assert fact_role(fact("partner", "Inês")) == "partner"
    assert fact_role(fact("relation:climbing partner", "Tomás")) == "climbing partner"
    assert fact_role(fact("employer", "the Botanic Garden")) is None


def test_a_name_is_matched_to_the_speaker_it_belongs_to() -> None:
    speakers = ["Bruno Reis", "Chloe", "Bruna Lima"]
    assert author_named("Chloe", speakers) == "Chloe"
    assert author_named("Bruno", speakers) == "Bruno Reis"
    assert author_named("Maya", speakers) is None
