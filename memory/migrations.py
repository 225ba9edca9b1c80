"""Versioned schema of the memory database, applied in order when a store opens it.

Each migration is a SQL script run in one transaction; `PRAGMA user_version` records how far a
database has come. Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: L0 memories with provenance, their sources, ingestion runs, tombstones, full-text search
    """
    CREATE TABLE sources (
        key         TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        path        TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );

    CREATE TABLE ingestion_runs (
        id          INTEGER PRIMARY KEY,
        source_key  TEXT,
        path        TEXT NOT NULL,
        format      TEXT NOT NULL,
        started_at  REAL NOT NULL,
        finished_at REAL,
        status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        added       INTEGER NOT NULL DEFAULT 0,
        unchanged   INTEGER NOT NULL DEFAULT 0,
        removed     INTEGER NOT NULL DEFAULT 0,
        blocked     INTEGER NOT NULL DEFAULT 0,
        error       TEXT
    );

    CREATE TABLE memories (
        rowid        INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        source_key   TEXT NOT NULL REFERENCES sources(key),
        source_id    TEXT NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('note', 'chat', 'document')),
        text         TEXT NOT NULL,
        author       TEXT,
        author_id    TEXT,
        is_owner     INTEGER NOT NULL DEFAULT 0,
        ts           REAL,
        thread       TEXT,
        reply_to     TEXT,
        visibility   TEXT NOT NULL CHECK (visibility IN ('private', 'friends', 'public')),
        shared_with  TEXT,
        content_hash TEXT NOT NULL,
        meta         TEXT NOT NULL DEFAULT '{}',
        created_at   REAL NOT NULL,
        run_id       INTEGER REFERENCES ingestion_runs(id),
        UNIQUE (source_key, source_id)
    );
    CREATE INDEX memories_ts ON memories(ts);
    CREATE INDEX memories_thread ON memories(thread, ts);
    CREATE INDEX memories_hash ON memories(content_hash);

    CREATE TABLE embeddings (
        memory_rowid INTEGER PRIMARY KEY REFERENCES memories(rowid) ON DELETE CASCADE,
        model        TEXT NOT NULL,
        vector       BLOB NOT NULL,
        indexed      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX embeddings_unindexed ON embeddings(indexed) WHERE indexed = 0;

    CREATE TABLE tombstones (
        id           INTEGER PRIMARY KEY,
        memory_id    TEXT NOT NULL,
        source_key   TEXT NOT NULL,
        source_id    TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        forgotten_at REAL NOT NULL,
        reason       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX tombstones_key ON tombstones(source_key, source_id);
    CREATE INDEX tombstones_hash ON tombstones(content_hash);

    CREATE VIRTUAL TABLE memories_fts USING fts5(
        text, author, content='memories', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, text, author) VALUES (new.rowid, new.text, new.author);
    END;
    CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text, author)
        VALUES ('delete', old.rowid, old.text, old.author);
    END;
    CREATE TRIGGER memories_fts_update AFTER UPDATE OF text, author ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text, author)
        VALUES ('delete', old.rowid, old.text, old.author);
        INSERT INTO memories_fts(rowid, text, author) VALUES (new.rowid, new.text, new.author);
    END;
    """,
]


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: list[str] | None = None) -> int:
    """Bring the database up to the latest schema; returns the version it ends at.

    Each step runs in its own transaction together with the version bump, so a failed step leaves
    the database at the previous version rather than half-migrated.
    """
    steps = MIGRATIONS if migrations is None else migrations
    current = schema_version(conn)
    if current > len(steps):
        raise RuntimeError(
            f"the memory database is at schema version {current}, newer than this version of "
            f"twin knows ({len(steps)}); upgrade twin"
        )
    for version in range(current + 1, len(steps) + 1):
        script = steps[version - 1]
        # executescript() commits first; wrap the step and the version bump in one transaction.
        try:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise RuntimeError(f"schema migration {version} failed: {exc}") from exc
    return len(steps)
