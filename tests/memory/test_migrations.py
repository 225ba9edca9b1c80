"""Schema migrations: applied in order on open, atomic per step, never run twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memory.migrations import MIGRATIONS, migrate, schema_version
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
    with pytest.raises(RuntimeError, match="migration 2 failed"):
        migrate(conn, broken)
    assert schema_version(conn) == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "b" not in tables


def test_a_database_from_a_newer_twin_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this version"):
        migrate(conn)
