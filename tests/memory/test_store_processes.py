"""Several real processes on one store: writers take turns without failing or duplicating, a
long import holds no lock while it embeds, and every process sees the others' writes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.embed import SentenceTransformerEmbedder
from memory.models import SourceRef
from memory.store import MemoryStore, memory_id
from memory.write_lock import StoreBusyError
from tests.memory.store_process import CHAT, OWNER, StoreProcess, chat, note

MANUAL = SourceRef("manual", "manual", "Remembered")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def processes(tmp_path: Path, home: Path) -> Iterator[list[StoreProcess]]:
    """Start child processes with `processes.append(StoreProcess(...))`; all are closed after."""
    started: list[StoreProcess] = []
    yield started
    for child in started:
        child.close()


def child(processes: list[StoreProcess], home: Path, flags: Path, **kw: Any) -> StoreProcess:
    started = StoreProcess(home, flags, **kw)
    processes.append(started)
    return started


def assert_agrees(store: MemoryStore) -> None:
    """The index holds exactly the memories SQLite holds, each once, and nothing waits."""
    health = store.index_health()
    assert health.in_step, health.describe()
    ids = [r[0] for r in store.conn.execute("SELECT id FROM memories")]
    assert len(ids) == len(set(ids))
    assert store.index.all_ids() == set(ids)


def test_remember_and_forget_during_a_long_import_do_not_wait(
    tmp_path: Path, home: Path, embedder: SentenceTransformerEmbedder, processes
) -> None:
    with MemoryStore.open(home, embedder) as store:
        store.ingest(chat(0, 10), owner=OWNER)
    importer = child(processes, home, tmp_path / "a")
    importer.send({"op": "ingest", "chat": [0, 120], "pause_at": "embedding"})
    importer.wait_until("embedding")

    # The import is embedding (for as long as it likes): other writers go ahead at once.
    with MemoryStore.open(home, embedder, write_wait=5.0) as store:
        remembered = store.add("the spare key is under the blue plant pot", source=MANUAL)
        assert remembered is not None
        first = memory_id(CHAT.key, "1")
        assert store.forget([first]) == [first]

    importer.release()
    assert importer.reply() == {"added": 110, "unchanged": 9, "blocked": 1}
    with MemoryStore.open(home, embedder) as store:
        assert store.count() == 120  # 119 messages (one forgotten) and the remembered note
        assert store.get(first) is None, "a memory forgotten during the import stays forgotten"
        assert_agrees(store)


def test_a_writer_waits_its_turn_and_says_so(
    tmp_path: Path,
    home: Path,
    embedder: SentenceTransformerEmbedder,
    processes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    importer = child(processes, home, tmp_path / "a")
    importer.send({"op": "ingest", "chat": [0, 30], "pause_at": "written"})
    importer.wait_until("written")  # inside its write transaction, holding the lock

    with MemoryStore.open(home, embedder, write_wait=120.0) as store:
        added: list[object] = []
        writer = threading.Thread(
            target=lambda: added.append(store.add("call the plumber on Monday", source=MANUAL))
        )
        with caplog.at_level(logging.WARNING, logger="memory"):
            writer.start()
            writer.join(3.0)
            assert writer.is_alive(), "the second writer waits while the first holds the lock"
            importer.release()
            writer.join(120.0)
        assert added and added[0] is not None
        waiting = [r for r in caplog.records if "waiting for another writer" in r.getMessage()]
        assert len(waiting) == 1, "the wait is announced once"
        assert importer.reply()["added"] == 30
        assert store.count() == 31
        assert_agrees(store)


def test_a_writer_that_waits_too_long_gives_up_with_a_clear_error(
    tmp_path: Path, home: Path, embedder: SentenceTransformerEmbedder, processes
) -> None:
    with MemoryStore.open(home, embedder) as store:
        store.ingest(chat(0, 4), owner=OWNER)
    importer = child(processes, home, tmp_path / "a")
    importer.send({"op": "ingest", "chat": [0, 30], "pause_at": "written"})
    importer.wait_until("written")

    with MemoryStore.open(home, embedder, write_wait=1.0) as store:
        target = memory_id(CHAT.key, "2")
        with pytest.raises(StoreBusyError, match="is busy") as raised:
            store.forget([target])
        assert str(home / "memory.sqlite") in str(raised.value)
        importer.release()
        assert importer.reply()["added"] == 26
        assert store.get(target) is not None, "the forget that gave up changed nothing"
        assert store.forget([target]) == [target], "and works once the other writer is done"


def test_overlapping_imports_add_each_memory_once_and_never_bring_back_a_forgotten_one(
    tmp_path: Path, home: Path, embedder: SentenceTransformerEmbedder, processes
) -> None:
    secret = "the door code of the studio is 4071, change it in May"
    with MemoryStore.open(home, embedder) as store:
        store.ingest(note("studio.md", [secret]))
    big = child(processes, home, tmp_path / "a")
    # A large export of the chat, plus a copy of the secret in another notes file.
    big.send({"op": "ingest", "chat": [0, 80], "pause_at": "embedding"})
    big.wait_until("embedding")
    small = child(processes, home, tmp_path / "b")
    assert small.ask({"op": "ingest", "chat": [0, 30]})["added"] == 30
    big.release()
    assert big.reply() == {"added": 50, "unchanged": 30, "blocked": 0}

    big.send({"op": "ingest", "note": "copy.md", "texts": [secret], "pause_at": "embedding"})
    big.wait_until("embedding")
    with MemoryStore.open(home, embedder) as store:
        (original,) = store.find_text("door code")
        store.forget([original.id])
    big.release()
    assert big.reply() == {"added": 0, "unchanged": 0, "blocked": 1}

    with MemoryStore.open(home, embedder) as store:
        assert store.count() == 80
        assert store.find_text("door code") == []
        assert_agrees(store)


def test_a_long_running_process_sees_and_keeps_what_another_process_indexed(
    tmp_path: Path, home: Path, embedder: SentenceTransformerEmbedder, processes
) -> None:
    with MemoryStore.open(home, embedder) as store:
        store.ingest(chat(0, 5), owner=OWNER)
    # A server, say, whose index is loaded in memory, while another process adds memories.
    server = child(processes, home, tmp_path / "server")
    early = memory_id(CHAT.key, "1")
    assert server.ask({"op": "nearest", "id": early}) == {"nearest": early}
    other = child(processes, home, tmp_path / "a")
    assert other.ask({"op": "ingest", "note": "n.md", "texts": ["Maya's birthday is 3 May"]})

    # Chroma writes its graph to disk every 1000 additions: a writer holding a stale graph in
    # memory would then drop from disk what the other process added.
    assert server.ask({"op": "ingest", "chat": [5, 1100]})["added"] == 1100
    maya = memory_id("notes:n.md", "n1")
    with MemoryStore.open(home, embedder) as store:
        assert store.index.query(store.vectors([maya])[0], 1)[0].id == maya
        assert_agrees(store)

    # And a reader sees what was added since it last looked.
    assert other.ask({"op": "ingest", "note": "m.md", "texts": ["Ana plays the viola"]})
    ana = memory_id("notes:m.md", "n1")
    assert server.ask({"op": "nearest", "id": ana}) == {"nearest": ana}


def test_processes_opening_a_new_home_at_once_all_succeed(
    tmp_path: Path, home: Path, embedder: SentenceTransformerEmbedder, processes
) -> None:
    # They create the database and Chroma's folder at the same moment, on the system's monotonic
    # clock: every process shares it, and a test that shifts the wall clock (time-machine
    # patches time.time and time.monotonic) does not move it.
    moment = time.clock_gettime(time.CLOCK_MONOTONIC) + 8.0
    children = [
        child(processes, home, tmp_path / f"p{i}", open_at=moment, wait_ready=False)
        for i in range(2)
    ]
    for i, started in enumerate(children):
        started.ready()
        started.send({"op": "ingest", "note": f"n{i}.md", "texts": [f"note number {i} of two"]})
    assert [c.reply()["added"] for c in children] == [1, 1]
    with MemoryStore.open(home, embedder) as store:
        assert store.count() == 2
        assert_agrees(store)
