"""The people a question is about: speakers in memory, and the owner's kin and friends.

Kin words are English vocabulary ("dad", "her sister", "Tomás's girlfriend"). Who they are for
the owner comes from memory, never from code: an L1 fact ("my sister Maya" → a fact whose
attribute is `sibling:sister` and whose value is "Maya"), or a speaker whose display name is the
kin word itself (the owner's contact "Dad" in a family chat). Only facts and speakers the asker's
filter lets through are used, so resolving a kin word never tells an audience anything it could
not read for itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memory.profile.index import FactIndex, IndexedFact
from memory.store import MemoryFilter, MemoryStore

# kin word → the roles it names: its own and, where there is one, the wider one ("girlfriend"
# is a partner, "sister" a sibling). A fact or word matches a question's word when they share
# its most specific role, or when one of them names only the wider role.
_ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "father": ("dad", "father", "daddy", "papa", "pa", "pop"),
    "mother": ("mum", "mom", "mother", "mam", "mummy", "mommy", "mama", "ma"),
    "sister": ("sister", "sis"),
    "brother": ("brother", "bro"),
    "son": ("son",),
    "daughter": ("daughter",),
    "grandmother": ("grandma", "grandmother", "granny", "gran", "nan", "nana", "nanna"),
    "grandfather": ("grandad", "granddad", "grandpa", "grandfather", "grampa"),
    "aunt": ("aunt", "auntie", "aunty"),
    "uncle": ("uncle",),
    "cousin": ("cousin",),
    "niece": ("niece",),
    "nephew": ("nephew",),
    "wife": ("wife",),
    "husband": ("husband",),
    "girlfriend": ("girlfriend", "gf"),
    "boyfriend": ("boyfriend", "bf"),
    "fiance": ("fiancé", "fiancée", "fiance", "fiancee"),
    "partner": ("partner", "spouse", "other half"),
    "friend": ("friend", "mate", "pal", "buddy"),
    "best friend": ("best friend", "bff"),
    "flatmate": ("flatmate", "roommate", "housemate"),
    "neighbour": ("neighbour", "neighbor"),
    "colleague": ("colleague", "coworker", "co-worker"),
    "boss": ("boss", "manager", "supervisor"),
    "tutor": ("tutor", "teacher"),
    "coach": ("coach", "trainer"),
    "climbing partner": ("climbing partner",),
    "running partner": ("running partner",),
    "bandmate": ("bandmate",),
    "parent": ("parent", "parents"),
    "sibling": ("sibling", "siblings"),
    "child": ("child", "children", "kid", "kids"),
    "grandparent": ("grandparent", "grandparents"),
}
_WIDER: dict[str, str] = {
    **dict.fromkeys(["father", "mother"], "parent"),
    **dict.fromkeys(["sister", "brother"], "sibling"),
    **dict.fromkeys(["son", "daughter"], "child"),
    **dict.fromkeys(["grandmother", "grandfather"], "grandparent"),
    **dict.fromkeys(["wife", "husband", "girlfriend", "boyfriend", "fiance"], "partner"),
    **dict.fromkeys(["best friend", "climbing partner", "running partner"], "friend"),
}
_ROLE_OF: dict[str, str] = {w: role for role, words in _ROLE_WORDS.items() for w in words}


def kin_role(word: str) -> str | None:
    """The role a kin word names ("mum" → "mother"), or None for any other word."""
    return _ROLE_OF.get(" ".join(word.casefold().split()))


def roles_match(asked: str, known: str) -> bool:
    """Whether a role asked about ("sibling") covers a role memory knows ("sister")."""
    return asked == known or _WIDER.get(known) == asked or _WIDER.get(asked) == known == "partner"


def fact_role(fact: IndexedFact) -> str | None:
    """The role an L1 fact gives a person, from its attribute ("sibling:sister" → "sister",
    "partner" → "partner"), or None when it is not about a person."""
    for part in reversed(re.split(r"[:_]", fact.attribute)):
        role = kin_role(part.replace("-", " "))
        if role:
            return role
    return None


@dataclass(frozen=True)
class Relative:
    """Someone the owner's kin word stands for: their name, the author they write as (when
    they speak in memory), and the memories that say so (a fact's support)."""

    name: str
    role: str
    author: str | None = None
    memory_ids: tuple[str, ...] = ()


class People:
    """Who is who, as far as a filter lets one see."""

    def __init__(self, store: MemoryStore, facts: FactIndex) -> None:
        self.store = store
        self.facts = facts

    def speakers(self, flt: MemoryFilter) -> list[str]:
        """Every author of a memory `flt` lets through."""
        where, params = flt.sql("m")
        rows = self.store.conn.execute(
            f"SELECT DISTINCT m.author FROM memories m WHERE m.author IS NOT NULL AND {where}",
            params,
        )
        return [r[0] for r in rows]

    def owner_authors(self, flt: MemoryFilter) -> list[str]:
        """The names the owner's own messages carry, among those `flt` lets through."""
        where, params = flt.sql("m")
        rows = self.store.conn.execute(
            "SELECT DISTINCT m.author FROM memories m"
            f" WHERE m.is_owner = 1 AND m.author IS NOT NULL AND {where}",
            params,
        )
        return [r[0] for r in rows]

    def relatives(self, word: str, flt: MemoryFilter, speakers: list[str]) -> list[Relative]:
        """The owner's relatives a kin word stands for: from the facts `flt` may see (their
        support re-filtered), then speakers named by the kin word itself."""
        role = kin_role(word)
        if role is None:
            return []
        found: list[Relative] = []
        for fact in self.facts.visible(flt):
            known = fact_role(fact)
            if known is None or not roles_match(role, known):
                continue
            support = self.store.allowed(list(fact.memory_ids), flt)
            if not support:
                continue
            author = author_named(fact.value, speakers)
            ids = tuple(m for m in fact.memory_ids if m in support)
            found.append(Relative(fact.value, known, author, ids))
        for author in speakers:
            known = kin_role(author)
            if known and roles_match(role, known) and all(r.author != author for r in found):
                found.append(Relative(author, known, author))
        return found


def author_named(name: str, speakers: list[str]) -> str | None:
    """The speaker called `name` (full name, or first name alone when only one has it)."""
    folded = name.casefold().strip()
    exact = [s for s in speakers if s.casefold() == folded]
    if exact:
        return exact[0]
    first = [s for s in speakers if s.casefold().split()[:1] == folded.split()[:1]]
    return first[0] if len(first) == 1 and len(folded.split()) == 1 else None
