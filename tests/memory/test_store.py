"""The L0 store: provenance, idempotent and transactional ingestion, forgetting, reindexing."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

from core.clock import FixedClock
from memory.embed import SentenceTransformerEmbedder
from memory.index import IndexEntry
from memory.models import (
    Kind,
    MemoryDraft,
    OwnerIdentity,
    ParsedSource,
    SourceRef,
    Visibility,
)
from memory.store import MemoryFilter, MemoryStore, memory_id

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CHAT = SourceRef(key="telegram:chat:42", kind="telegram", name="Telegram: Tomás")
OWNER = OwnerIdentity(names=("Iris Calder", "Iris"), ids=("telegram:user1",))


def chat(n: int, start: int = 0) -> ParsedSource:
    """A chat export of `n` messages (ids start+1…), alternating between Iris and Tomás."""
    drafts = []
    for i in range(start, start + n):
        mine = i % 2 == 0
        drafts.append(
            MemoryDraft(
                text=f"message {i}: {'climbing at Vertigo' if mine else 'see you at seven'}",
                kind=Kind.CHAT,
                source_id=str(i + 1),
                author="Iris" if mine else "Tomás",
                author_id="telegram:user1" if mine else "telegram:user2",
                timestamp=T0 + timedelta(minutes=i),
                thread=CHAT.key,
                reply_to=str(i) if i else None,
                meta={"edited": "yes"} if i == 3 else {},
            )
        )
    return ParsedSource(source=CHAT, drafts=drafts)


def fts_count(store: MemoryStore, word: str) -> int:
    sql = "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?"
    return store.conn.execute(sql, (f'"{word}"',)).fetchone()[0]


class FailingEmbedder:
    """The real embedder, made to fail after `ok_calls` calls: to check rollbacks."""

    def __init__(self, inner: SentenceTransformerEmbedder, ok_calls: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self.ok_calls = ok_calls
        self.calls = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts, progress=None):
        self.calls += 1
        if self.calls > self.ok_calls:
            raise RuntimeError("embedder crashed")
        return self.inner.embed(texts, progress)


def test_ingest_keeps_provenance(store: MemoryStore) -> None:
    report = store.ingest(chat(4), owner=OWNER, visibility=Visibility.FRIENDS, fmt="telegram")
    assert (report.added, report.unchanged) == (4, 0)

    first = store.get(memory_id(CHAT.key, "1"))
    assert first is not None
    assert first.text == "message 0: climbing at Vertigo"
    assert first.kind == Kind.CHAT
    assert first.author == "Iris" and first.author_id == "telegram:user1"
    assert first.is_owner
    assert first.timestamp == T0
    assert first.thread == CHAT.key
    assert first.visibility == Visibility.FRIENDS
    assert first.source_name == "Telegram: Tomás"

    second = store.get(memory_id(CHAT.key, "2"))
    assert second is not None and not second.is_owner
    assert second.reply_to == "1"
    assert store.get(memory_id(CHAT.key, "4")).meta == {"edited": "yes"}


def test_own_visibility_beats_the_default_and_a_cap_only_narrows(store: MemoryStore) -> None:
    drafts = [
        MemoryDraft(text="door code", kind=Kind.NOTE, source_id="a", visibility=Visibility.PRIVATE),
        MemoryDraft(text="my talk", kind=Kind.NOTE, source_id="b", visibility=Visibility.PUBLIC),
        MemoryDraft(text="plain", kind=Kind.NOTE, source_id="c"),
    ]
    src = SourceRef(key="notes:/n.md", kind="notes", name="n")
    store.ingest(ParsedSource(src, drafts), visibility=Visibility.PRIVATE)
    vis = {m.source_id: m.visibility for m in store.iter_memories()}
    assert vis == {"a": Visibility.PRIVATE, "b": Visibility.PUBLIC, "c": Visibility.PRIVATE}

    capped = SourceRef(key="notes:/m.md", kind="notes", name="m")
    store.ingest(
        ParsedSource(capped, drafts), visibility=Visibility.FRIENDS, cap=Visibility.FRIENDS
    )
    vis = {
        m.source_id: m.visibility for m in store.iter_memories(MemoryFilter(sources=(capped.key,)))
    }
    assert vis == {"a": Visibility.PRIVATE, "b": Visibility.FRIENDS, "c": Visibility.FRIENDS}


def test_reingesting_adds_nothing_and_a_grown_export_adds_only_new(store: MemoryStore) -> None:
    store.ingest(chat(5), owner=OWNER)
    again = store.ingest(chat(5), owner=OWNER)
    assert (again.added, again.unchanged) == (0, 5)

    grown = store.ingest(chat(8), owner=OWNER)
    assert (grown.added, grown.unchanged) == (3, 5)
    assert store.count() == 8
    assert store.index.count() == 8
    assert fts_count(store, "vertigo") == 4


def test_replacing_source_drops_chunks_that_disappeared(store: MemoryStore) -> None:
    src = SourceRef(key="notes:/trip.md", kind="notes", name="Kyoto")
    v1 = [
        MemoryDraft(text="Kyoto › Temples: Kinkaku-ji", kind=Kind.NOTE, source_id="t1"),
        MemoryDraft(text="Kyoto › Food: tofu in Arashiyama", kind=Kind.NOTE, source_id="t2"),
    ]
    store.ingest(ParsedSource(src, v1, replaces_missing=True))
    v2 = [
        v1[0],
        MemoryDraft(text="Kyoto › Food: ramen near the station", kind=Kind.NOTE, source_id="t3"),
    ]
    report = store.ingest(ParsedSource(src, v2, replaces_missing=True))
    assert (report.added, report.unchanged, report.removed) == (1, 1, 1)
    assert {m.source_id for m in store.iter_memories()} == {"t1", "t3"}
    assert fts_count(store, "arashiyama") == 0
    assert memory_id(src.key, "t2") not in store.index.all_ids()


def test_failed_import_leaves_nothing(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    failing = FailingEmbedder(embedder)
    with MemoryStore.open(tmp_path / "m", failing) as store:
        with pytest.raises(RuntimeError, match="embedder crashed"):
            store.ingest(chat(6), owner=OWNER, fmt="telegram")
        assert store.count() == 0
        assert fts_count(store, "vertigo") == 0
        assert store.index.count() == 0
        assert store.sources() == []
        status, error = store.conn.execute("SELECT status, error FROM ingestion_runs").fetchone()
        assert status == "failed" and "embedder crashed" in error


def test_a_bad_row_rolls_back_the_whole_source(store: MemoryStore) -> None:
    store.ingest(chat(2), owner=OWNER)
    bad = [*chat(4).drafts, MemoryDraft(text="x", kind="voicemail", source_id="99")]  # type: ignore[arg-type]
    with pytest.raises(Exception, match="CHECK constraint"):
        store.ingest(ParsedSource(CHAT, bad), owner=OWNER)
    assert store.count() == 2
    assert store.index.count() == 2


def test_forget_removes_everywhere_and_blocks_reimport(store: MemoryStore) -> None:
    store.ingest(chat(4), owner=OWNER)
    target = memory_id(CHAT.key, "1")

    assert store.forget([target, "m_does_not_exist"], reason="test") == [target]
    assert store.get(target) is None
    assert fts_count(store, "vertigo") == 1
    assert target not in store.index.all_ids()

    report = store.ingest(chat(4), owner=OWNER)
    assert (report.added, report.unchanged, report.blocked) == (0, 3, 1)
    # The same words arriving from another source are blocked too: forgetting is about content.
    other = SourceRef(key="whatsapp:Tomás", kind="whatsapp", name="WhatsApp: Tomás")
    copy = MemoryDraft(text="message 0: climbing at Vertigo", kind=Kind.CHAT, source_id="w1")
    assert store.ingest(ParsedSource(other, [copy])).blocked == 1
    assert store.is_forgotten("message 0: climbing at Vertigo")


def test_reindex_rebuilds_from_stored_vectors(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    counting = FailingEmbedder(embedder, ok_calls=10**6)
    with MemoryStore.open(tmp_path / "m", counting) as store:
        store.ingest(chat(6), owner=OWNER)
        before = counting.calls
        store.index.reset()
        assert store.index.count() == 0

        assert store.reindex() == 6
        assert store.index.count() == 6
        assert counting.calls == before, "stored vectors are reused, not recomputed"

        assert store.reindex(re_embed=True) == 6
        assert counting.calls == before + 1
        vec = store.vectors([memory_id(CHAT.key, "1")])[0]
        assert np.isclose(np.linalg.norm(vec), 1.0, atol=1e-4)


def test_reopening_keeps_everything(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        store.ingest(chat(3), owner=OWNER)
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        assert store.count() == 3
        assert store.index.count() == 3
        assert store.ingest(chat(3), owner=OWNER).added == 0


def test_export_jsonl_has_every_field(store: MemoryStore) -> None:
    store.ingest(chat(3), owner=OWNER, visibility=Visibility.FRIENDS)
    out = StringIO()
    assert store.export_jsonl(out) == 3
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 3
    assert set(rows[0]) == {
        "id", "text", "kind", "source", "source_name", "source_id", "author", "author_id",
        "is_owner", "timestamp", "thread", "reply_to", "visibility", "shared_with",
        "content_hash", "created_at", "meta",
    }  # fmt: skip
    assert rows[0]["timestamp"] == T0.isoformat()
    assert rows[1]["reply_to"] == "1"
    assert rows[0]["visibility"] == "friends"


def test_filter_by_visibility_principal_time_source_and_speaker(store: MemoryStore) -> None:
    store.ingest(chat(6), owner=OWNER, visibility=Visibility.FRIENDS)
    bot = SourceRef(key="bot:telegram:555", kind="bot", name="Bot: Ana")
    store.add("Ana asked about Kyoto", source=bot, author="Ana", shared_with="telegram:555")
    store.add("my door code is 4071", source=SourceRef("manual", "manual", "Remembered"))

    assert store.count() == 8
    friend = MemoryFilter(
        visibilities=(Visibility.FRIENDS, Visibility.PUBLIC), see_all_shared=False
    )
    assert store.count(friend) == 6
    ana = MemoryFilter(
        visibilities=(Visibility.FRIENDS, Visibility.PUBLIC),
        see_all_shared=False,
        principal="telegram:555",
    )
    assert store.count(ana) == 7
    window = MemoryFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    assert [m.source_id for m in store.iter_memories(window)] == ["3", "4"]
    assert store.count(MemoryFilter(sources=("telegram",))) == 6
    assert store.count(MemoryFilter(sources=("telegram:chat:4",))) == 0
    assert store.count(MemoryFilter(speakers=("tomás",))) == 3
    assert store.count(MemoryFilter(speakers=("telegram:user1",))) == 3


def test_add_and_thread_neighbours(store: MemoryStore) -> None:
    store.ingest(chat(5), owner=OWNER)
    ids = [memory_id(CHAT.key, str(i)) for i in range(1, 6)]
    (mid, before, after), *_ = store.thread_neighbours([ids[2]], window=2)
    assert (mid, before, after) == (ids[2], ids[:2], ids[3:])
    added = store.add("remember: Maya's birthday is 3 May", source=SourceRef("manual", "m", "M"))
    assert added is not None and added.is_owner and added.visibility == Visibility.PRIVATE
    with pytest.raises(ValueError, match="needs some text"):
        store.add("   ", source=SourceRef("manual", "m", "M"))


def test_concurrent_writers_do_not_collide(store: MemoryStore) -> None:
    src = SourceRef("manual", "manual", "Remembered")
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(5):
                store.add(f"worker {worker} note {i}", source=src, source_id=f"{worker}-{i}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 20
    assert store.index.count() == 20


def test_forgetting_a_short_message_blocks_only_that_message(store: MemoryStore) -> None:
    src = SourceRef(key="telegram:chat:9", kind="telegram", name="T")
    drafts = [MemoryDraft(text="ok", kind=Kind.CHAT, source_id=str(i)) for i in (1, 2)]
    store.ingest(ParsedSource(src, drafts[:1]))
    store.forget([memory_id(src.key, "1")])
    report = store.ingest(ParsedSource(src, drafts))
    assert (report.added, report.blocked) == (1, 1)


def test_saying_a_forgotten_thing_again_is_new(store: MemoryStore) -> None:
    manual = SourceRef("manual", "manual", "Remembered")
    first = store.add("my door code is 4071", source=manual)
    assert first is not None
    store.forget([first.id])
    again = store.add("my door code is 4071", source=manual)
    assert again is not None and again.id != first.id


class RenamedEmbedder(FailingEmbedder):
    """The real embedder under another model name, as if the configured model had changed."""

    def __init__(self, inner: SentenceTransformerEmbedder, name: str) -> None:
        super().__init__(inner, ok_calls=10**6)
        self.name = name


def warnings_of(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_the_store_tells_time_by_its_clock(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, clock: FixedClock
) -> None:
    clock.advance(timedelta(days=365))  # nothing may depend on the day the tests run
    with MemoryStore.open(tmp_path / "m", embedder, clock=clock) as store:
        store.ingest(chat(2), owner=OWNER)
        added = store.add("buy strings for the cello", source=SourceRef("manual", "m", "M"))
        assert added is not None
        assert added.timestamp == clock.now() and added.created_at == clock.now()
        assert {m.created_at for m in store.iter_memories()} == {clock.now()}
        runs = store.conn.execute("SELECT started_at, finished_at FROM ingestion_runs")
        assert {tuple(r) for r in runs} == {(clock.now().timestamp(),) * 2}

        clock.advance(timedelta(hours=1))
        store.forget([added.id])
        (forgotten_at,) = store.conn.execute("SELECT forgotten_at FROM tombstones").fetchone()
        assert forgotten_at == clock.now().timestamp()


def test_changes_since_and_the_stamp_follow_additions_and_forgetting(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, clock: FixedClock
) -> None:
    with MemoryStore.open(tmp_path / "m", embedder, clock=clock) as store:
        store.ingest(chat(3), owner=OWNER)
        trained = clock.now()
        empty = store.stamp()
        assert store.changes_since(trained) == (0, 0)

        clock.advance(timedelta(minutes=5))
        talk = SourceRef("bot:telegram:7", "bot", "Telegram bot")
        store.add("what time is climbing?", source=talk, shared_with="telegram:user2")
        # a talk with the twin changes the stamp, but not the one that leaves talks out
        assert store.stamp() != empty
        assert store.stamp(conversations=False) == (3, empty[1])
        first = next(store.iter_memories(order="rowid"))
        store.forget([first.id])
        assert store.changes_since(trained) == (1, 1)
        assert store.stamp(conversations=False)[0] == 2


def test_embedding_holds_no_write_lock(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """Another writer can write while an import embeds (embedding is the slow part)."""
    db = tmp_path / "m" / "memory.sqlite"
    others_wrote: list[bool] = []

    class ProbingEmbedder(FailingEmbedder):
        def embed(self, texts, progress=None):
            other = sqlite3.connect(db, timeout=0, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the lock is held
            other.execute("ROLLBACK")
            other.close()
            others_wrote.append(True)
            return super().embed(texts, progress)

    with MemoryStore.open(tmp_path / "m", ProbingEmbedder(embedder, ok_calls=10**6)) as store:
        assert store.ingest(chat(5), owner=OWNER).added == 5
        assert store.reindex(re_embed=True) == 5
    assert others_wrote == [True, True]


def test_an_index_that_fails_after_the_commit_catches_up_on_the_next_open(
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(entries: list[IndexEntry], batch_size: int = 0) -> None:
        raise RuntimeError("chroma is down")

    with MemoryStore.open(tmp_path / "m", embedder) as store:
        monkeypatch.setattr(store.index, "upsert", broken)
        with caplog.at_level(logging.WARNING, logger="memory"):
            report = store.ingest(chat(4), owner=OWNER, fmt="telegram")
        assert report.added == 4 and store.count() == 4, "SQLite, the record, has them"
        assert "could not be updated (RuntimeError: chroma is down)" in warnings_of(caplog)
        health = store.index_health()
        assert (health.to_index, health.in_index, health.in_step) == (4, 0, False)
        monkeypatch.undo()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="memory"):
        reopened = MemoryStore.open(tmp_path / "m", FailingEmbedder(embedder, ok_calls=0))
    with reopened as store:
        assert store.index_health().in_step
        assert store.index.all_ids() == {m.id for m in store.iter_memories()}
        assert "4 waiting to be indexed" in warnings_of(caplog)
        assert "repaired from the stored vectors" in warnings_of(caplog)


def test_index_entries_without_a_memory_are_removed_on_open(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    """What an older twin left after a crash between Chroma's write and SQLite's commit."""
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        store.ingest(chat(3), owner=OWNER)
        vector = store.vectors([memory_id(CHAT.key, "1")])[0]
        orphans = [
            IndexEntry(f"m_orphan{i}", vector, "private", CHAT.key, "Iris", None, "", "")
            for i in range(2)
        ]
        store.index.upsert(orphans)
        assert store.index.count() == 5

    with caplog.at_level(logging.WARNING, logger="memory"):
        reopened = MemoryStore.open(tmp_path / "m", FailingEmbedder(embedder, ok_calls=0))
    with reopened as store:
        assert store.index.count() == 3 and store.index_health().in_step
        assert "the index holds 5 entries where 3 belong" in warnings_of(caplog)


def test_index_entries_lost_are_restored_from_the_stored_vectors_on_open(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    lost = memory_id(CHAT.key, "2")
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        store.ingest(chat(4), owner=OWNER)
        store.index.delete([lost])
    # Nothing is embedded again: the vector SQLite keeps is put back.
    with MemoryStore.open(tmp_path / "m", FailingEmbedder(embedder, ok_calls=0)) as store:
        assert store.index_health().in_step
        assert store.index.query(store.vectors([lost])[0], 1)[0].id == lost


def test_memories_without_a_vector_of_the_model_ask_for_a_reindex(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        store.ingest(chat(3), owner=OWNER)
    other = RenamedEmbedder(embedder, "another-model")
    with caplog.at_level(logging.WARNING, logger="memory"):
        reopened = MemoryStore.open(tmp_path / "m", other)
    with reopened as store:
        assert "3 memories" in warnings_of(caplog) and "twin memory reindex" in warnings_of(caplog)
        assert store.index_health().without_vector == 3
        assert store.reindex() == 3
        assert store.index_health().in_step
