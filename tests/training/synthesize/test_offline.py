"""The offline synthesizer's questions and replies, on a few hand-written memories.

Each memory holds one kind of thing a generator used to get wrong: headings that name nothing,
a clause that is really two, a comparison, a place that only describes a noun, a friend's
message with no thing in it, a machine date. The owner (Ada Moss, "he") is invented.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from memory.embed import SentenceTransformerEmbedder
from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef, Visibility
from memory.store import MemoryStore
from training.synthesize.chats import ChatMiner
from training.synthesize.drafts import Draft
from training.synthesize.material import Material
from training.synthesize.offline import OfflineSynthesizer
from twin.config import Pronouns
from twin.privacy import Audience

OWNER = "Ada Moss"
START = datetime(2025, 9, 20, 9, 0, tzinfo=UTC)
NOTES = [
    "Pets › Rex\n- Favourite toy: the rubber duck\n- Optionally: a walk after dinner\n"
    "- Best with: cheese\n- Km 10: slow\n- 2025-06-30: first vet visit, all fine",
    "Journal\nI lit a candle in St Giles this morning.\n"
    "Everything here is wet and I'm carrying two cameras.\n"
    "Glasgow is so much further from Leeds than York is.\n"
    "I play in the Leeds community orchestra.\n"
    "I moved from York to Leeds in May 2021 and haven't looked back.",
]
CHAT = [
    ("Sam", "are you alive"),
    (OWNER, "Finished the painting for Sam's birthday"),
    ("Sam", "the stitches came out clean, you were right about the vet"),
    (OWNER, "I climb at the Depot every Tuesday at 19:00"),
    ("Sam", "say hi to your sister from all of us here"),
]
_FIRST_PERSON = re.compile(r"\b(?:I|I['’](?:m|ve|ll|d)|me|my|mine|myself)\b")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")


@pytest.fixture(scope="module")
def ada_store(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[MemoryStore]:
    with MemoryStore.open(tmp_path_factory.mktemp("ada") / "memory", embedder) as store:
        for i, text in enumerate(NOTES):
            ref = SourceRef(key=f"notes:{i}", kind="notes", name=f"note {i}")
            draft = MemoryDraft(
                text=text,
                kind=Kind.NOTE,
                source_id=str(i),
                timestamp=START + timedelta(days=i),
                thread=f"notes:{i}",
                is_owner=True,
                visibility=Visibility.FRIENDS,
                # as the notes importer records it: the chunk's first line is its breadcrumb
                meta={"title": text.split("\n")[0].split(" › ")[0]},
            )
            store.ingest(ParsedSource(ref, [draft]), visibility=Visibility.FRIENDS)
        messages = [
            MemoryDraft(
                text=text,
                kind=Kind.CHAT,
                source_id=f"m{i}",
                author=who,
                timestamp=START + timedelta(days=10, minutes=5 * i),
                thread="chat:sam",
                is_owner=who == OWNER,
                visibility=Visibility.FRIENDS,
            )
            for i, (who, text) in enumerate(CHAT)
        ]
        ref = SourceRef(key="chat:sam", kind="telegram", name="Sam")
        store.ingest(ParsedSource(ref, messages), visibility=Visibility.FRIENDS)
        yield store


def drafts(store: MemoryStore, audience: Audience) -> list[Draft]:
    material = Material.read(store, audience, OWNER, pronouns=Pronouns.HE)
    rng = random.Random(1)
    offline = OfflineSynthesizer(material, rng, test_share=1.0, phrasings_per_fact=3)
    return offline.memory_qa() + ChatMiner(material, rng).exchanges()


@pytest.fixture(scope="module")
def owner_drafts(ada_store: MemoryStore) -> list[Draft]:
    return drafts(ada_store, Audience.owner())


@pytest.fixture(scope="module")
def friend_drafts(ada_store: MemoryStore) -> list[Draft]:
    return drafts(ada_store, Audience.friend())


def questions(found: list[Draft], *words: str) -> list[str]:
    return [d.text for d in found if all(w.casefold() in d.text.casefold() for w in words)]


def test_headings_are_asked_about_as_people_refer_to_their_notes(
    owner_drafts: list[Draft],
) -> None:
    toy = [d for d in owner_drafts if "the favourite toy" in d.text]
    assert toy and all("my Pets notes" in d.text for d in toy)  # the title as written
    assert {d.answer for d in toy} == {"The rubber duck."}
    # a heading that names nothing is not asked about
    for heading in ("optionally", "best with", "km 10"):
        assert not questions(owner_drafts, heading)
    # a date heading is asked with the date as people write it
    vet = [d for d in owner_drafts if "30 June 2025" in d.text]
    assert vet and not questions(owner_drafts, "2025-06-30")
    assert {d.answer for d in vet} == {"First vet visit, all fine."}
    assert {d.key_facts for d in vet} == {("First vet visit",)}


def test_clauses_become_questions_that_read_as_questions(owner_drafts: list[Draft]) -> None:
    candle = questions(owner_drafts, "candle")
    assert candle and all(
        q.startswith(("Where", "Any idea where", "Remind me where")) for q in candle
    )
    assert "Where did I light a candle?" in candle
    # "…wet and I'm carrying two cameras": the question is about the second clause only
    cameras = questions(owner_drafts, "cameras")
    assert "How many cameras am I carrying?" in cameras
    assert not [q for q in cameras if "wet" in q]
    # "…and haven't looked back" is a second predicate, left out of the question
    moved = questions(owner_drafts, "moved from York")
    assert moved and not [q for q in moved if "looked back" in q]
    assert not questions(owner_drafts, "York is")  # a comparison is not asked about
    # "the Leeds community orchestra": Leeds only describes the orchestra
    assert not questions(owner_drafts, "where", "orchestra")


def test_what_others_wrote_is_asked_about_by_the_things_in_it(owner_drafts: list[Draft]) -> None:
    said = [d for d in owner_drafts if d.template.startswith("said.")]
    assert "What did Sam say about my sister?" in {d.text for d in said}  # Sam's "your sister"
    assert not questions(owner_drafts, "alive")  # "are you alive" has no thing to ask about
    # what someone else wrote is quoted, dated as people write dates
    stitches = questions(owner_drafts, "the stitches")
    assert stitches and all(re.search(r"stitches c(o|a)me out clean", q) for q in stitches)
    told = next(d for d in owner_drafts if "the stitches" in d.text)
    assert told.answer == (
        'On 30 September 2025, Sam wrote: "the stitches came out clean, you were right about '
        'the vet"'
    )
    assert told.steps[0] == "Sam's message of 30 September 2025 says the stitches came out clean."


def test_the_owner_is_told_in_the_second_person_with_dates_people_write(
    owner_drafts: list[Draft],
) -> None:
    paintings = [d for d in owner_drafts if "painting" in d.text]
    assert paintings and all(re.search(r"\bI finish(ed)? the painting", d.text) for d in paintings)
    painting = paintings[0]
    assert painting.answer == "On 30 September 2025, you finished the painting for Sam's birthday."
    assert painting.key_facts == ("30 September 2025",)
    assert painting.steps == (
        "Your message of 30 September 2025 says you finished the painting for Sam's birthday.",
        "It happened on the day of the message: 30 September 2025.",
    )
    candle = next(d for d in owner_drafts if "candle" in d.text)
    assert candle.answer == "You lit a candle in St Giles that morning."
    climb = next(d for d in owner_drafts if d.key_facts == ("every Tuesday",))
    assert climb.answer == (
        "You climb at the Depot every Tuesday at 19:00 (you wrote this on 30 September 2025)."
    )
    assert climb.steps[-1] == "It was written in September 2025."


def test_friends_hear_about_the_owner_by_name_and_pronoun(friend_drafts: list[Draft]) -> None:
    candle = next(d for d in friend_drafts if "candle" in d.text)
    assert candle.answer == "Ada lit a candle in St Giles that morning."
    assert candle.steps[0] == "Ada's note of 21 September 2025 says he lit a candle."
    climb = next(d for d in friend_drafts if d.key_facts == ("every Tuesday",))
    assert climb.answer == (
        "Ada climbs at the Depot every Tuesday at 19:00 (he wrote this on 30 September 2025)."
    )
    for draft in friend_drafts:
        told = _QUOTED.sub("", draft.answer)
        assert not _FIRST_PERSON.search(told), draft.answer
        assert not any(_FIRST_PERSON.search(_QUOTED.sub("", s)) for s in draft.steps), draft
    # friends ask to Ada, about Ada and about "him"
    texts = [d.text for d in friend_drafts]
    assert any(re.search(r"\byou(r)?\b", q) for q in texts)
    assert any("Ada" in q for q in texts)
    assert any(re.search(r"\b(?:he|his|him)\b", q) for q in texts)
    assert not any(_FIRST_PERSON.search(q) for q in texts if not q.startswith("Remind me"))


def test_no_reply_or_step_shows_a_machine_date_or_the_prompt_s_layout(
    owner_drafts: list[Draft], friend_drafts: list[Draft]
) -> None:
    for draft in [*owner_drafts, *friend_drafts]:
        for text in (draft.text, draft.answer, *draft.steps):
            assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", text), text
            assert not re.search(r"\[(?:memory|bio|message)\]|Memory \d|\(noted", text), text
        assert draft.text[:1].isupper() and draft.text.endswith(("?", ".")), draft.text


def test_a_remembered_note_is_asked_about_like_an_imported_one(store: MemoryStore) -> None:
    """`remember` stores a note with no "Title › Section" line: its first sentence is text."""
    source = SourceRef(key="manual:remembered", kind="manual", name="Remembered")
    store.add(
        "I adopted a rescue greyhound called Biscuit in May 2024.",
        source=source,
        author="Ada Byrne",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
    )
    found = drafts(store, Audience.owner())
    assert any("greyhound" in d.text and "May 2024" in d.answer for d in found)
