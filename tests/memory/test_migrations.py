"""Schema migrations: applied in order on open, atomic per step, never run twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memory.embed import SentenceTransformerEmbedder
from memory.migrations import MIGRATIONS, migrate, schema_version
from memory.models import Kind, MemoryDraft, ParsedSource, SourceRef
from memory.store import MemoryStore


def test_new_database_is_at_the_latest_version(store: MemoryStore) -> None:
    assert schema_version(store.conn) == len(MIGRATIONS)
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"memories", "sources", "ingestion_runs", "tombstones", "memories_fts"} <= tables


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    steps = ["CREATE TABLE a (x INTEGER);", "INSERT INTO a VALUES (1);"]
    assert migrate(conn, steps) == 2
    assert migrate(conn, steps) == 2
    assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 1

    steps.append("ALTER TABLE a ADD COLUMN y TEXT; UPDATE a SET y = 'added';")
    assert migrate(conn, steps) == 3
    assert conn.execute("SELECT y FROM a").fetchone()[0] == "added"


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    migrate(conn, ["CREATE TABLE a (x INTEGER);"])
    broken = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER); SELECT nonsense FROM;"]
    with pytest.raises(RuntimeError, match="migration 2 of the memory database failed"):
        migrate(conn, broken)
    assert schema_version(conn) == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "b" not in tables


def test_a_database_from_a_newer_twin_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this version"):
        migrate(conn)


def test_a_step_another_process_applied_meanwhile_is_not_applied_again(tmp_path: Path) -> None:
    """Two processes opening a new home at once both find it at version 0."""
    mine = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    theirs = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    steps = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"]

    def begin_after_the_other_process() -> None:
        migrate(theirs, steps)  # it took the write lock first
        mine.execute("BEGIN IMMEDIATE")

    assert migrate(mine, steps, begin=begin_after_the_other_process) == 2
    assert schema_version(mine) == 2
    tables = {r[0] for r in mine.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"a", "b"}


def test_a_step_with_triggers_and_comments_runs_in_one_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    step = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT);
    CREATE TABLE log (x TEXT);
    CREATE TRIGGER a_logged AFTER INSERT ON a BEGIN
        INSERT INTO log VALUES ('added; ' || new.x);
    END;
    INSERT INTO a VALUES ('one')
    """
    assert migrate(conn, [step]) == 1
    assert conn.execute("SELECT x FROM log").fetchall() == [("added; one",)]


def test_a_home_from_before_the_index_bookkeeping_opens_in_step(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    source = SourceRef(key="notes:a.md", kind="notes", name="a")
    drafts = [MemoryDraft(text=f"note {i}", kind=Kind.NOTE, source_id=str(i)) for i in range(3)]
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        store.ingest(ParsedSource(source, drafts))
        store.conn.executescript(
            "DROP TABLE index_state; DROP TABLE index_removals; DROP INDEX embeddings_model;"
            " PRAGMA user_version = 2;"
        )
    with MemoryStore.open(tmp_path / "m", embedder) as store:
        assert schema_version(store.conn) == len(MIGRATIONS)
        health = store.index_health()
        assert health.in_step and health.in_index == 3
