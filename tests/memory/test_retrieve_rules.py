"""Retrieval's reading of questions, each rule on small data of its own: a third-person question
reaching a first-person memory, a kin word resolved through L1, a dated question, a fact
leading to its memories; and none of them widening what an audience sees or letting what it
may not see steer its results."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import FixedClock
from memory.embed import SentenceTransformerEmbedder
from memory.models import (
    AskedBy,
    Kind,
    MemoryDraft,
    OwnerIdentity,
    ParsedSource,
    SourceRef,
    Visibility,
)
from memory.profile import ProfileBuilder
from memory.query import AnswerKind
from memory.retrieve import RetrievalConfig, Retriever, holds_answer
from memory.store import MemoryFilter, MemoryStore

# A made-up owner and friends: nothing here is the sample persona.
OWNER = "Ana Duarte"
IDENTITY = OwnerIdentity(names=(OWNER, "Ana"))
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 5, 2, 18, 0, tzinfo=UTC)
CHAT = SourceRef(key="telegram:chat:31", kind="telegram", name="Telegram: Bruno")
GROUP = SourceRef(key="discord:guild:9", kind="discord", name="Discord: plants")
NOTES = SourceRef(key="notes:/notes", kind="notes", name="Notes")
FRIEND = MemoryFilter(visibilities=(Visibility.FRIENDS, Visibility.PUBLIC), see_all_shared=False)
EVERYTHING = MemoryFilter()
# The rules of the earlier hybrid only (names as speakers, context): what each rule is
# measured against.
BEFORE = RetrievalConfig.without_question_reading()


def chat(who: str, text: str, minutes: int, *, when: datetime = T0) -> MemoryDraft:
    return MemoryDraft(
        text=text,
        kind=Kind.CHAT,
        source_id=f"{who}-{minutes}-{when.date()}",
        author=who,
        timestamp=when + timedelta(minutes=minutes),
        thread=f"{CHAT.key}:{when.date()}",
        is_owner=who == OWNER,
    )


def note(text: str, key: str, visibility: Visibility, when: datetime = T0) -> MemoryDraft:
    return MemoryDraft(
        text=text,
        kind=Kind.NOTE,
        source_id=key,
        timestamp=when,
        thread=f"{NOTES.key}/{key}",
        visibility=visibility,
        is_owner=True,
    )


def fill(store: MemoryStore, chats: list[MemoryDraft], notes: list[MemoryDraft] = ()) -> None:
    owner = IDENTITY
    if chats:
        store.ingest(ParsedSource(CHAT, chats), owner=owner, visibility=Visibility.FRIENDS)
    if notes:
        store.ingest(ParsedSource(NOTES, list(notes)), owner=owner, visibility=Visibility.PRIVATE)


def build_profile(store: MemoryStore) -> None:
    ProfileBuilder(store, OWNER, clock=FixedClock(NOW)).build(full=True)


def retriever(store: MemoryStore, config: RetrievalConfig | None = None) -> Retriever:
    return Retriever(store, config, owner=IDENTITY, clock=FixedClock(NOW))


def top(hits, n: int = 1) -> list[str]:
    return [h.memory.text for h in hits[:n]]


# Chatter that mentions the owner by name and the words of the questions below, none of it an
# answer: what a third-person question matches when it is read as written.
CHATTER = [
    ("Bruno", "Ana, does your boss at work know about the trip?", 0),
    ("Chloe", "Ana works too hard, tell her to come to the market on Saturday", 1),
    ("Bruno", "Where does the time go, Ana? Work, sleep, repeat", 2),
    ("Chloe", "Ana lives on coffee and seed catalogues", 3),
    ("Bruno", "Say hi to Ana for me", 4),
]


def test_a_third_person_question_reaches_the_owners_first_person_words(
    store: MemoryStore,
) -> None:
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat(OWNER, "I work at the seed bank of the Botanic Garden now", 30),
            chat("Bruno", "Nice! Is it far from your flat?", 31),
        ],
    )
    question = "Where does Ana work?"
    new = retriever(store).search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER)
    old = retriever(store, BEFORE).search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER)
    voiced = retriever(store, replace(BEFORE, voice=True))
    assert "seed bank" in top(new)[0]
    assert "seed bank" not in top(old)[0]
    # it is the question in the owner's voice that finds it
    assert "seed bank" in top(voiced.search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER))[0]
    plan = retriever(store).plan(question, FRIEND, AskedBy.OTHER)
    assert plan.dense == "Where do I work?" and plan.about_owner


def test_a_friend_asking_about_you_means_the_owner(store: MemoryStore) -> None:
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat(OWNER, "I live in Graça now, up the hill from the tram", 30),
        ],
    )
    hits = retriever(store).search("Where do you live?", k=2, flt=FRIEND, asker=AskedBy.OTHER)
    assert "Graça" in top(hits)[0]


def test_a_kin_word_is_resolved_through_an_l1_fact(store: MemoryStore) -> None:
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat("Chloe", "Maya's new flat in Porto has a view of the whole river", 20),
            chat("Bruno", "The new flat in Lisbon is tiny but the view is great", 21),
        ],
        [note("Family. My sister Maya teaches at a primary school.", "family", Visibility.FRIENDS)],
    )
    build_profile(store)
    question = "Where does Ana's sister live?"
    plan = retriever(store).plan(question, FRIEND, AskedBy.OTHER)
    assert [r.name for r in plan.relatives] == ["Maya"]
    # the owner named, then her kin resolved
    with_kin = retriever(store, replace(BEFORE, kin=True, owner_aware=True))
    found = top(with_kin.search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER), 3)
    owner_only = retriever(store, replace(BEFORE, owner_aware=True))
    before = top(owner_only.search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER), 3)
    assert any("Porto" in t for t in found)
    assert not any("Porto" in t for t in before)
    shipped = top(retriever(store).search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER), 3)
    assert any("Porto" in t for t in shipped)


def test_a_kin_word_that_is_a_speakers_name(store: MemoryStore) -> None:
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat("Mum", "The roses are out at last, come and see them", 20),
            chat("Bruno", "My garden is all weeds this year", 21),
        ],
    )
    hits = retriever(store).search("What's in Ana's mother's garden?", k=2, flt=FRIEND)
    assert any("roses" in t for t in top(hits, 2))


def test_a_dated_question_ranks_the_memories_of_that_time(store: MemoryStore) -> None:
    dinners = [
        (datetime(2026, 3, 2, 19, tzinfo=UTC), "Cooked a lentil curry for dinner tonight"),
        (datetime(2026, 8, 10, 19, tzinfo=UTC), "Cooked a mushroom risotto for dinner tonight"),
        (datetime(2025, 8, 12, 19, tzinfo=UTC), "Cooked a pumpkin soup for dinner tonight"),
        (datetime(2026, 10, 1, 19, tzinfo=UTC), "Cooked a bean chilli for dinner tonight"),
    ]
    fill(store, [chat(OWNER, text, 0, when=when) for when, text in dinners])
    question = "What did I cook for dinner in August 2026?"
    hits = retriever(store).search(question, k=4, flt=EVERYTHING)
    assert "risotto" in top(hits)[0]
    # the same question without its time is a tie the date does not break
    plan = retriever(store).plan(question, EVERYTHING)
    assert "August" not in plan.lexical and plan.time.window is not None


def test_a_question_matching_a_fact_reaches_the_memories_behind_it(store: MemoryStore) -> None:
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat("Bruno", "Who's the new employer at the market stall?", 10),
            chat("Chloe", "My employer gave us the day off", 11),
        ],
        [note("Career. I work at the Botanic Garden, in the seed bank.", "cv", Visibility.FRIENDS)],
    )
    build_profile(store)
    question = "Who is Ana's employer?"
    plan = retriever(store).plan(question, FRIEND, AskedBy.OTHER)
    assert [m.fact.attribute for m in plan.facts][:1] == ["employer"]
    hits = retriever(store).search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER)
    assert "Botanic Garden" in top(hits)[0]
    # the hit says it came through the fact: serving keeps it in the prompt for that reason
    assert hits[0].fact_rank == 0
    assert all(hit.fact_rank is None for hit in hits[1:])
    before = retriever(store, BEFORE).search(question, k=3, flt=FRIEND, asker=AskedBy.OTHER)
    with_facts = retriever(store, replace(BEFORE, facts=True, owner_aware=True))
    assert "Botanic Garden" not in top(before)[0]
    assert "Botanic Garden" in top(with_facts.search(question, k=3, flt=FRIEND))[0]


def test_memories_that_only_repeat_the_question_come_last(store: MemoryStore) -> None:
    fill(
        store,
        [
            chat("Bruno", "Seedvault?", 0),
            chat(OWNER, "Seedvault!", 1),
            chat(OWNER, "Seedvault is the app I'm building to swap seeds with neighbours", 40),
        ],
    )
    hits = retriever(store).search("What is Seedvault?", k=3, flt=EVERYTHING)
    assert "swap seeds" in top(hits)[0]


# -- privacy ------------------------------------------------------------------------------------


def _kin_store(
    folder: Path, embedder: SentenceTransformerEmbedder, private_note: str
) -> MemoryStore:
    store = MemoryStore.open(folder, embedder)
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat("Chloe", "Maya's new flat in Porto has a view of the whole river", 20),
            chat("Bruno", "The new flat in Lisbon is tiny but the view is great", 21),
        ],
        [note(private_note, "family", Visibility.PRIVATE)],
    )
    build_profile(store)
    return store


def test_a_private_fact_neither_reaches_nor_steers_a_friends_search(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    # The same words in the private note, in an order the fact extractor reads ("my sister
    # Maya") and in one it does not: the stores differ only in the private fact.
    with (
        _kin_store(tmp_path / "a", embedder, "Family. My sister Maya, teaches at a school.") as a,
        _kin_store(tmp_path / "b", embedder, "Family. Maya, my sister teaches at a school.") as b,
    ):
        assert any(f.value == "Maya" for f in retriever(a).facts.visible(EVERYTHING))
        assert not any(f.value == "Maya" for f in retriever(b).facts.visible(EVERYTHING))
        question = "Where does Ana's sister live?"
        for q in (question, "Who is Ana's sister?", "What does her sister teach?"):
            seen_a = retriever(a).search(q, k=10, flt=FRIEND, asker=AskedBy.OTHER)
            seen_b = retriever(b).search(q, k=10, flt=FRIEND, asker=AskedBy.OTHER)
            assert [(h.memory.id, h.score) for h in seen_a] == [
                (h.memory.id, h.score) for h in seen_b
            ]
            assert all(h.memory.visibility != Visibility.PRIVATE for h in seen_a)
        assert retriever(a).plan(question, FRIEND, AskedBy.OTHER).relatives == ()
        # the owner may use it
        assert [r.name for r in retriever(a).plan(question, EVERYTHING).relatives] == ["Maya"]


def test_a_fact_is_used_only_when_the_audience_may_see_all_its_memories(
    store: MemoryStore,
) -> None:
    fill(
        store,
        [chat(who, text, m) for who, text, m in CHATTER],
        [note("Career. I work at the Botanic Garden.", "cv", Visibility.PRIVATE)],
    )
    build_profile(store)
    r = retriever(store)
    assert r.facts.visible(EVERYTHING) and not r.facts.visible(FRIEND)
    assert r.plan("Who is Ana's employer?", FRIEND, AskedBy.OTHER).facts == ()
    for question in ("Who is Ana's employer?", "Where does Ana work?", "Botanic Garden"):
        hits = r.search(question, k=10, flt=FRIEND, asker=AskedBy.OTHER)
        assert all(h.memory.visibility != Visibility.PRIVATE for h in hits)
    # a memory forgotten takes its fact out of the index at once
    (fact,) = [f for f in r.facts.visible(EVERYTHING) if f.attribute == "employer"]
    store.forget(list(fact.memory_ids))
    assert not any(f.attribute == "employer" for f in r.facts.visible(EVERYTHING))


def test_a_named_time_only_narrows_what_the_filter_allows(store: MemoryStore) -> None:
    dinners = [
        (datetime(2026, 8, 10, 19, tzinfo=UTC), "Cooked a mushroom risotto for dinner tonight"),
        (datetime(2026, 8, 11, 19, tzinfo=UTC), "Cooked a lentil curry for dinner tonight"),
    ]
    fill(store, [chat(OWNER, text, 0, when=when) for when, text in dinners])
    store.add(
        "Cooked a secret dinner for the therapist, August 2026",
        source=NOTES,
        visibility=Visibility.PRIVATE,
        timestamp=datetime(2026, 8, 10, 20, tzinfo=UTC),
    )
    question = "What did Ana cook in August 2026?"
    hits = retriever(store).search(question, k=10, flt=FRIEND, asker=AskedBy.OTHER)
    assert hits and all(h.memory.visibility != Visibility.PRIVATE for h in hits)
    # a filter that already ends before the time named finds nothing of that time
    early = MemoryFilter(until=datetime(2026, 8, 11, tzinfo=UTC))
    dated = retriever(store).search(question, k=10, flt=early)
    assert dated and all(h.memory.timestamp < datetime(2026, 8, 11, tzinfo=UTC) for h in dated)


@pytest.mark.parametrize("asker", list(AskedBy))
def test_no_rule_returns_what_the_filter_hides(store: MemoryStore, asker: AskedBy) -> None:
    fill(
        store,
        [
            *(chat(who, text, m) for who, text, m in CHATTER),
            chat(OWNER, "I work at the Botanic Garden", 30),
        ],
        [
            note(
                "My sister Maya lives in Porto. I work at the clinic.",
                "private",
                Visibility.PRIVATE,
            ),
        ],
    )
    build_profile(store)
    shared = store.add(
        "Chloe told the twin her sister is moving to Porto",
        source=SourceRef(key="bot:telegram:5", kind="bot", name="Bot"),
        author="Chloe",
        is_owner=False,
        shared_with="telegram:5",
    )
    assert shared is not None
    other_friend = MemoryFilter(
        visibilities=(Visibility.FRIENDS, Visibility.PUBLIC),
        see_all_shared=False,
        principal="telegram:6",
    )
    r = retriever(store)
    for question in (
        "Where does Ana's sister live?",
        "Where does Ana work?",
        "Who is my sister?",
        "What happened in Porto in May 2026?",
    ):
        for flt in (FRIEND, other_friend):
            hits = r.search(question, k=20, flt=flt, asker=asker)
            assert all(h.memory.visibility != Visibility.PRIVATE for h in hits)
            assert all(h.memory.shared_with is None for h in hits)


def test_a_when_question_ranks_the_memory_that_dates_the_event(store: MemoryStore) -> None:
    fill(
        store,
        [
            chat(OWNER, "Seedvault launch plans are coming together", 0),
            chat("Bruno", "Is the Seedvault launch still happening?", 1),
            chat(OWNER, "Seedvault launch is today, wish me luck", 0, when=T0 + timedelta(days=30)),
            chat("Chloe", "Seedvault launch merch when?", 0, when=T0 + timedelta(days=40)),
        ],
    )
    hits = retriever(store).search("When did Seedvault launch?", k=4, flt=EVERYTHING)
    assert "today" in top(hits)[0]
    assert holds_answer(AnswerKind.DATE, "it is on the 8th", set(), NOW)
    assert holds_answer(AnswerKind.PERSON, "went with Bruno and Chloe", {"went"}, NOW)
    assert not holds_answer(AnswerKind.PERSON, "Bruno went home", {"bruno"}, NOW)
    assert holds_answer(AnswerKind.NUMBER, "three of them", set(), NOW)
    # the number the question already says ("on day one") is not an answer to it
    assert not holds_answer(AnswerKind.NUMBER, "launched on day one", {"day", "one"}, NOW)
    assert holds_answer(AnswerKind.NUMBER, "42 testers on day one", {"day", "one"}, NOW)
