"""A process killed (SIGKILL, as `kill -9` or a crash) at any phase of a write leaves a store that,
once opened again, agrees with itself: SQLite holds the write entirely or not at all, and the
vector index holds exactly what SQLite holds, each memory once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from memory.embed import SentenceTransformerEmbedder
from memory.store import MemoryFilter, MemoryStore, WritePhase, memory_id
from tests.memory.store_process import CHAT, OWNER, StoreProcess, chat, document
from tests.memory.test_store_processes import assert_agrees

TRIP = "notes:trip.md"
COMMITTED = (WritePhase.COMMITTED, WritePhase.INDEXED)


def kill_during(home: Path, flags: Path, command: dict, phase: WritePhase) -> None:
    """Run `command` in a child process that kills itself on reaching `phase`."""
    crashing = StoreProcess(home, flags)
    try:
        crashing.send({**command, "kill_at": str(phase)})
        assert crashing.killed() == -signal.SIGKILL, crashing.stderr()
    finally:
        crashing.close()


def nearest(store: MemoryStore, mid: str) -> str | None:
    """The index's nearest entry to a memory's stored vector: the memory itself when the index
    really holds it (not only counts it)."""
    hits = store.index.query(store.vectors([mid])[0], 1)
    return hits[0].id if hits else None


@pytest.mark.parametrize("phase", list(WritePhase))
def test_a_kill_at_any_phase_of_an_import(
    phase: WritePhase, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    home = tmp_path / "memory"
    with MemoryStore.open(home, embedder) as store:
        store.ingest(chat(0, 6), owner=OWNER)
        store.ingest(document(["t1", "t2"]))
    # a new version of the note: t2 is dropped, t3 is added
    kill_during(home, tmp_path / "flags", {"op": "ingest", "document": ["t1", "t3"]}, phase)

    with MemoryStore.open(home, embedder) as store:
        assert_agrees(store)
        chunks = {m.source_id for m in store.iter_memories(MemoryFilter(sources=(TRIP,)))}
        committed = phase in COMMITTED
        assert chunks == ({"t1", "t3"} if committed else {"t1", "t2"})
        assert store.count() == 8
        for sid in chunks:
            assert nearest(store, memory_id(TRIP, sid)) == memory_id(TRIP, sid)

        again = store.ingest(document(["t1", "t3"]))
        assert (again.added, again.removed) == ((0, 0) if committed else (1, 1))
        assert_agrees(store)


@pytest.mark.parametrize("phase", [WritePhase.WRITTEN, *COMMITTED])
def test_a_kill_at_any_phase_of_a_forget(
    phase: WritePhase, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    home = tmp_path / "memory"
    with MemoryStore.open(home, embedder) as store:
        store.ingest(chat(0, 6), owner=OWNER)
    targets = [memory_id(CHAT.key, "1"), memory_id(CHAT.key, "2")]
    kill_during(home, tmp_path / "flags", {"op": "forget", "ids": targets}, phase)

    with MemoryStore.open(home, embedder) as store:
        assert_agrees(store)
        forgotten = phase in COMMITTED
        assert store.count() == (4 if forgotten else 6)
        assert all((store.get(t) is None) == forgotten for t in targets)
        report = store.ingest(chat(0, 6), owner=OWNER)
        assert (report.added, report.blocked) == (0, 2 if forgotten else 0)


@pytest.mark.parametrize("phase", [WritePhase.EMBEDDED, WritePhase.WRITTEN, *COMMITTED])
def test_a_kill_at_any_phase_of_a_reindex(
    phase: WritePhase, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    home = tmp_path / "memory"
    with MemoryStore.open(home, embedder) as store:
        store.ingest(chat(0, 6), owner=OWNER)
    kill_during(home, tmp_path / "flags", {"op": "reindex"}, phase)

    with MemoryStore.open(home, embedder) as store:
        assert_agrees(store)
        assert store.count() == 6
        assert nearest(store, memory_id(CHAT.key, "4")) == memory_id(CHAT.key, "4")
