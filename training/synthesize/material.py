"""What synthesis for one audience works from: the memories and facts that audience may see.

Everything the offline synthesizer writes is derived from a `Material`, and a `Material` is read
through the audience's memory filter, so the shared model's data cannot contain a private
memory: it never sees one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memory.models import Memory
from memory.retrieve import STOPWORDS
from memory.store import MemoryStore
from training.synthesize.passages import Lexicon, Passage, normalise, passages, word_set
from training.synthesize.voice import Voice
from twin.config import Pronouns
from twin.privacy import Audience

_CONTENT_WORD = re.compile(r"[^\W\d_][\w'’-]{3,}", re.UNICODE)
# Words that say nothing about a topic, beyond retrieval's stopwords.
_FUNCTION_WORDS = word_set(
    "across after again against along also among another anything anyway around away back"
    " because been before behind being below between both came come coming could does"
    " doing done down during each even ever every everything from going gone good great"
    " have having here into just know like little made make many more most much must need"
    " never next nothing only other over really right same should since some something"
    " still such sure take than thank thanks that their them then there these they thing"
    " things think this those though through time today told tomorrow tonight very want"
    " well went were what when where which while will with without would yeah year years"
    " your yours"
)


@dataclass(frozen=True)
class Fact:
    """An L1 fact as synthesis uses it: what it is about, its value, how the owner says it,
    and the memories it comes from."""

    attribute: str
    value: str
    statement: str
    first_person: str
    support: tuple[str, ...]

    @classmethod
    def from_view(cls, view: Any) -> Fact:
        """From a `memory.profile.FactView` (its `sources` are the supporting memories)."""
        return cls(
            attribute=view.attribute,
            value=view.value,
            statement=view.statement,
            first_person=view.first_person,
            support=tuple(m.id for m in view.sources),
        )


@dataclass
class Material:
    """The memories, passages and facts one audience may see, read once, and how the owner
    is spoken of (`pronouns`, for a third party)."""

    audience: Audience
    owner: str
    memories: list[Memory]
    passages: list[Passage]
    lexicon: Lexicon
    facts: list[Fact]
    # in how many memories each content word occurs (casefolded), to find distinctive words
    frequency: Counter[str]
    pronouns: Pronouns = Pronouns.THEY

    @classmethod
    def read(
        cls,
        store: MemoryStore,
        audience: Audience,
        owner: str,
        facts: Sequence[Fact] = (),
        *,
        pronouns: Pronouns = Pronouns.THEY,
    ) -> Material:
        """Read what `audience` may see of `store`. A fact counts only when the audience may
        see every memory it rests on, and when one of them states its value (an extractor that
        rewords, "veggie" → "vegetarian", gives a fact an answer could not be checked against).
        `pronouns` are the owner's (`OwnerSettings.pronouns`), for what others are told."""
        flt = audience.memory_filter()
        memories = list(store.iter_memories(flt))
        by_id = {m.id: m for m in memories}
        usable = [
            f
            for f in facts
            if f.support
            and all(s in by_id for s in f.support)
            and any(normalise(f.value) in normalise(by_id[s].text) for s in f.support)
        ]
        people = [f.value for f in usable if f.attribute.startswith("relation:")]
        frequency: Counter[str] = Counter()
        for memory in memories:
            frequency.update({w.casefold() for w in _CONTENT_WORD.findall(memory.text)})
        return cls(
            audience=audience,
            owner=owner,
            memories=memories,
            passages=[p for m in memories for p in passages(m)],
            lexicon=Lexicon.build(memories, people),
            facts=usable,
            frequency=frequency,
            pronouns=pronouns,
        )

    @property
    def first_name(self) -> str:
        return self.owner.split()[0] if self.owner.strip() else self.owner

    @property
    def voice(self) -> Voice:
        """How replies and questions speak of the owner for this audience."""
        return Voice(self.audience.kind, self.first_name, self.pronouns)

    def distinctive_word(self, text: str, avoid: str = "") -> str | None:
        """The content word of `text` that fewest memories share (ties: the first), leaving out
        the words of `avoid`; None when there is none."""
        words = self.distinctive_words(text, avoid)
        return words[0] if words else None

    def distinctive_words(self, text: str, avoid: str = "") -> list[str]:
        """The content words of `text`, those fewest memories share first (ties: in order),
        leaving out the words of `avoid`."""
        avoided = {w.casefold() for w in _CONTENT_WORD.findall(avoid)}
        found: dict[str, int] = {}
        for word in _CONTENT_WORD.findall(text):
            folded = word.casefold()
            if (
                folded in STOPWORDS
                or folded in _FUNCTION_WORDS
                or folded in avoided
                or not word.isalpha()
                or not word.islower()
                or len(word) < 4
                or folded.endswith(("ly", "ed", "ing"))
            ):
                continue
            count = self.frequency.get(folded, 0)
            if count and word not in found:
                found[word] = count
        return sorted(found, key=lambda w: found[w])
