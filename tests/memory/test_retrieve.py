"""Hybrid retrieval: lexical and dense recall, context scoring, speakers, filters, safety."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef, Visibility
from memory.retrieve import RELEVANCE_FLOOR, RetrievalConfig, Retriever, SearchHit, fts_query
from memory.store import MemoryFilter, MemoryStore
from tests.stored import stored_memory

T0 = datetime(2026, 5, 2, 18, 0, tzinfo=UTC)
CHAT = SourceRef(key="telegram:chat:7", kind="telegram", name="Telegram: Tomás")
NOTES = SourceRef(key="notes:/notes/health.md", kind="notes", name="Health")

TURNS = [
    ("Tomás", "How was the weekend?"),
    ("Iris", "Spent Saturday at the Oceanário counting cuttlefish eggs"),
    ("Tomás", "Did you end up running the half marathon in March?"),
    ("Iris", "Yes! Finished in 1:52, legs were jelly after"),
    ("Tomás", "Thanks Iris, you're the best"),
    ("Tomás", "I'm adopting a cat from the shelter in Graça next week"),
    ("Iris", "Thanks Tomás!"),
    ("Iris", "Biscuit would hate a cat, honestly"),
]


@pytest.fixture
def memory(store: MemoryStore) -> MemoryStore:
    drafts = [
        MemoryDraft(
            text=text,
            kind=Kind.CHAT,
            source_id=str(i),
            author=author,
            timestamp=T0 + timedelta(minutes=i),
            thread=CHAT.key,
        )
        for i, (author, text) in enumerate(TURNS)
    ]
    store.ingest(ParsedSource(CHAT, drafts), visibility=Visibility.FRIENDS)
    note = MemoryDraft(
        text="Health › Therapy: Thursday mornings with Dr. Helena Alves, for anxiety",
        kind=Kind.NOTE,
        source_id="h1",
        timestamp=T0 - timedelta(days=30),
        thread=NOTES.key,
        visibility=Visibility.PRIVATE,
    )
    store.ingest(ParsedSource(NOTES, [note]), visibility=Visibility.PRIVATE)
    return store


def texts(hits) -> list[str]:
    return [h.memory.text for h in hits]


def test_lexical_finds_rare_words_and_dense_finds_paraphrases(memory: MemoryStore) -> None:
    retriever = Retriever(memory)
    assert "cuttlefish" in texts(retriever.search("cuttlefish", k=1, mode="lexical"))[0]
    # No shared word with the memory: only the embedding can connect them.
    top = texts(retriever.search("therapist appointment", k=1, mode="dense"))[0]
    assert "Helena Alves" in top
    hybrid = texts(retriever.search("who is my therapist", k=3))
    assert any("Helena Alves" in t for t in hybrid)


def test_short_answers_are_found_through_their_context(memory: MemoryStore) -> None:
    question = "What was my half marathon time?"
    plain = Retriever(memory, RetrievalConfig(context_weight=0.0, speaker_aware=False))
    with_context = Retriever(memory)
    answer = "Yes! Finished in 1:52, legs were jelly after"
    rank_plain = texts(plain.search(question, k=9)).index(answer)
    rank_context = texts(with_context.search(question, k=9)).index(answer)
    assert rank_context <= 1
    assert rank_context <= rank_plain


def test_a_named_speaker_ranks_their_own_messages_up(store: MemoryStore) -> None:
    lines = [
        ("Iris", "Thanks Tomás, see you at the climbing gym, Tomás!"),
        ("Tomás", "I've been climbing at Vertigo for five years now"),
        ("Iris", "Tomás, the climbing shoes you lent me are great"),
        ("Priya", "The cuttlefish tank needs cleaning"),
    ]
    drafts = [
        # Separate threads, so that context scoring plays no part here.
        MemoryDraft(
            text=text, kind=Kind.CHAT, source_id=str(i), author=who, timestamp=T0, thread=str(i)
        )
        for i, (who, text) in enumerate(lines)
    ]
    store.ingest(ParsedSource(CHAT, drafts))
    question = "How long has Tomás been climbing?"
    aware = Retriever(store).search(question, k=4)
    blind = Retriever(store, RetrievalConfig(speaker_aware=False)).search(
        question, k=4, mode="lexical"
    )
    assert aware[0].memory.author == "Tomás"
    # Read as a word, the name favours messages that merely mention him.
    assert blind[0].memory.author == "Iris"


def test_audience_filters_hide_private_memories(memory: MemoryStore) -> None:
    friend = MemoryFilter(
        visibilities=(Visibility.FRIENDS, Visibility.PUBLIC), see_all_shared=False
    )
    retriever = Retriever(memory)
    for mode in ("hybrid", "lexical", "dense"):
        hits = retriever.search("therapist Helena Alves anxiety", k=20, flt=friend, mode=mode)
        assert all(h.memory.visibility != Visibility.PRIVATE for h in hits)
    owner_hits = retriever.search("Helena Alves", k=20)
    assert any(h.memory.visibility == Visibility.PRIVATE for h in owner_hits)


def test_shared_conversations_reach_only_their_friend(memory: MemoryStore) -> None:
    bot = SourceRef(key="bot:telegram:555", kind="bot", name="Bot")
    memory.add(
        "Ana told the twin her surfing lesson is on Sunday",
        source=bot,
        author="Ana",
        is_owner=False,
        shared_with="telegram:555",
    )
    retriever = Retriever(memory)
    friends = (Visibility.FRIENDS, Visibility.PUBLIC)
    ana = MemoryFilter(visibilities=friends, see_all_shared=False, principal="telegram:555")
    bea = MemoryFilter(visibilities=friends, see_all_shared=False, principal="telegram:777")
    assert any("surfing" in t for t in texts(retriever.search("surfing lesson", flt=ana)))
    assert not any("surfing" in t for t in texts(retriever.search("surfing lesson", flt=bea)))


def test_time_source_and_speaker_filters(memory: MemoryStore) -> None:
    retriever = Retriever(memory)
    later = MemoryFilter(since=T0 + timedelta(minutes=5))
    assert all(
        h.memory.timestamp >= T0 + timedelta(minutes=5) for h in retriever.search("cat", flt=later)
    )
    notes_only = retriever.search("Saturday", flt=MemoryFilter(sources=("notes",)))
    assert all(h.memory.source_key.startswith("notes:") for h in notes_only)
    by_iris = retriever.search("cat", flt=MemoryFilter(speakers=("iris",)))
    assert by_iris and all(h.memory.author == "Iris" for h in by_iris)


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NEAR(a b)", "cat AND OR NOT", "*", "col:umn", "ümlaut 🐙 ∑"]
)
def test_queries_are_never_parsed_as_fts_syntax(memory: MemoryStore, query: str) -> None:
    Retriever(memory).search(query, k=3)  # must not raise
    assert all(part.startswith('"') for part in fts_query(query).split(" OR ") if part)


def test_empty_query_and_empty_store(store: MemoryStore, memory: MemoryStore) -> None:
    assert Retriever(memory).search("   ") == []
    assert fts_query("the and of") == ""
    assert Retriever(memory).search("the and of", k=3) != []  # dense still answers


def test_a_memory_is_relevant_by_a_word_a_fact_or_its_meaning() -> None:
    memory = stored_memory("About me: I grew up in Edinburgh", source_key="notes:about-me.md")
    unrelated = SearchHit(memory=memory, score=0.1, dense_rank=4, similarity=0.05)
    assert not unrelated.relevant
    assert replace(unrelated, lexical_rank=0).relevant
    assert replace(unrelated, similarity=RELEVANCE_FLOOR).relevant
    # "Which places have I lived in?" shares no word with the note, but matches the L1 fact
    # "used to live in Edinburgh" that rests on it
    assert replace(unrelated, fact_rank=0).relevant
