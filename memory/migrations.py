"""Versioned schema of the memory database, applied in order when a store opens it.

Each migration is a SQL script run in one write transaction; `PRAGMA user_version` records how
far a database has come. Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

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
    # 2: L1 memory (memory/profile): builds, topics per audience scope, facts with the memories
    # that support them, bios. Integrity lives here, not in Python: forgetting a memory cascades
    # to what was derived from it even when no profile code is running.
    """
    CREATE TABLE profile_builds (
        id          INTEGER PRIMARY KEY,
        scopes      TEXT NOT NULL,
        mode        TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
        status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        started_at  REAL NOT NULL,
        finished_at REAL,
        owner_name  TEXT NOT NULL,
        writers     TEXT NOT NULL DEFAULT '{}',
        stats       TEXT NOT NULL DEFAULT '{}',
        error       TEXT
    );

    CREATE TABLE profile_topics (
        id               INTEGER PRIMARY KEY,
        scope            TEXT NOT NULL CHECK (scope IN ('owner', 'friends', 'public')),
        build_id         INTEGER NOT NULL REFERENCES profile_builds(id),
        label            TEXT NOT NULL,
        description      TEXT NOT NULL DEFAULT '',
        keywords         TEXT NOT NULL DEFAULT '[]',
        namer            TEXT NOT NULL,
        centroid         BLOB NOT NULL,
        assign_threshold REAL NOT NULL,
        labelled_size    INTEGER NOT NULL,
        stale            INTEGER NOT NULL DEFAULT 0,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL
    );
    CREATE INDEX profile_topics_scope ON profile_topics(scope);

    CREATE TABLE profile_topic_members (
        topic_id     INTEGER NOT NULL REFERENCES profile_topics(id) ON DELETE CASCADE,
        memory_rowid INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
        PRIMARY KEY (topic_id, memory_rowid)
    ) WITHOUT ROWID;
    CREATE INDEX profile_topic_members_memory ON profile_topic_members(memory_rowid);

    CREATE TABLE profile_facts (
        id            INTEGER PRIMARY KEY,
        attribute     TEXT NOT NULL,
        value         TEXT NOT NULL,
        value_key     TEXT NOT NULL,
        statement     TEXT NOT NULL,
        first_person  TEXT NOT NULL,
        exclusive     INTEGER NOT NULL DEFAULT 0,
        status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'superseded')),
        superseded_by INTEGER REFERENCES profile_facts(id) ON DELETE SET NULL,
        extractor     TEXT NOT NULL,
        build_id      INTEGER NOT NULL REFERENCES profile_builds(id),
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL
    );
    CREATE INDEX profile_facts_attribute ON profile_facts(attribute, value_key);
    CREATE INDEX profile_facts_superseded_by ON profile_facts(superseded_by);

    CREATE TABLE profile_fact_support (
        fact_id      INTEGER NOT NULL REFERENCES profile_facts(id) ON DELETE CASCADE,
        memory_rowid INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
        PRIMARY KEY (fact_id, memory_rowid)
    ) WITHOUT ROWID;
    CREATE INDEX profile_fact_support_memory ON profile_fact_support(memory_rowid);

    -- Which memories each step (a fact extractor, the topics of one scope) has seen, so that
    -- an incremental build only looks at what is new.
    CREATE TABLE profile_processed (
        step         TEXT NOT NULL,
        memory_rowid INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
        build_id     INTEGER NOT NULL REFERENCES profile_builds(id),
        PRIMARY KEY (step, memory_rowid)
    ) WITHOUT ROWID;
    CREATE INDEX profile_processed_memory ON profile_processed(memory_rowid);

    CREATE TABLE profile_bios (
        id          INTEGER PRIMARY KEY,
        scope       TEXT NOT NULL CHECK (scope IN ('owner', 'friends', 'public')),
        kind        TEXT NOT NULL CHECK (kind IN ('global', 'status')),
        person      TEXT NOT NULL CHECK (person IN ('first', 'third')),
        text        TEXT NOT NULL,
        writer      TEXT NOT NULL,
        build_id    INTEGER NOT NULL REFERENCES profile_builds(id),
        inputs_hash TEXT NOT NULL,
        stale       INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL,
        UNIQUE (scope, kind, person)
    );

    CREATE TABLE profile_bio_facts (
        bio_id  INTEGER NOT NULL REFERENCES profile_bios(id) ON DELETE CASCADE,
        fact_id INTEGER NOT NULL REFERENCES profile_facts(id) ON DELETE CASCADE,
        cited   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (bio_id, fact_id)
    ) WITHOUT ROWID;
    CREATE INDEX profile_bio_facts_fact ON profile_bio_facts(fact_id);

    CREATE TABLE profile_bio_topics (
        bio_id   INTEGER NOT NULL REFERENCES profile_bios(id) ON DELETE CASCADE,
        topic_id INTEGER NOT NULL REFERENCES profile_topics(id) ON DELETE CASCADE,
        PRIMARY KEY (bio_id, topic_id)
    ) WITHOUT ROWID;
    CREATE INDEX profile_bio_topics_topic ON profile_bio_topics(topic_id);

    -- A fact is as visible as the narrowest memory that supports it; a memory shared with one
    -- friend (their own conversation with the twin) counts as private. Computed, never stored,
    -- so it cannot go stale when supports come and go.
    CREATE VIEW profile_fact_visibility AS
    SELECT s.fact_id AS fact_id,
           CASE min(CASE WHEN m.shared_with IS NOT NULL OR m.visibility = 'private' THEN 0
                         WHEN m.visibility = 'friends' THEN 1 ELSE 2 END)
                WHEN 0 THEN 'private' WHEN 1 THEN 'friends' ELSE 'public' END AS visibility,
           count(*) AS support_count,
           max(coalesce(m.ts, m.created_at)) AS newest_ts
    FROM profile_fact_support s JOIN memories m ON m.rowid = s.memory_rowid
    GROUP BY s.fact_id;

    CREATE VIEW profile_topic_stats AS
    SELECT tm.topic_id AS topic_id,
           count(*) AS size,
           min(coalesce(m.ts, m.created_at)) AS first_ts,
           max(coalesce(m.ts, m.created_at)) AS last_ts
    FROM profile_topic_members tm JOIN memories m ON m.rowid = tm.memory_rowid
    GROUP BY tm.topic_id;

    -- A fact that has lost its last supporting memory is gone.
    CREATE TRIGGER profile_fact_support_gone AFTER DELETE ON profile_fact_support
    WHEN NOT EXISTS (SELECT 1 FROM profile_fact_support WHERE fact_id = old.fact_id)
    BEGIN
        DELETE FROM profile_facts WHERE id = old.fact_id;
    END;

    -- Before a fact goes: the bios that used it lose their text (it may state the fact) and are
    -- stale until the next build. Of the facts it had superseded, the one with the newest
    -- support becomes active again and the others are superseded by that one.
    CREATE TRIGGER profile_fact_gone BEFORE DELETE ON profile_facts
    BEGIN
        UPDATE profile_bios SET stale = 1, text = ''
        WHERE id IN (SELECT bio_id FROM profile_bio_facts WHERE fact_id = old.id);
        UPDATE profile_facts
        SET superseded_by = (SELECT f.id FROM profile_facts f
                             JOIN profile_fact_visibility v ON v.fact_id = f.id
                             WHERE f.superseded_by = old.id
                             ORDER BY v.newest_ts DESC, f.id DESC LIMIT 1)
        WHERE superseded_by = old.id
          AND id != (SELECT f.id FROM profile_facts f
                     JOIN profile_fact_visibility v ON v.fact_id = f.id
                     WHERE f.superseded_by = old.id
                     ORDER BY v.newest_ts DESC, f.id DESC LIMIT 1);
        UPDATE profile_facts SET status = 'active', superseded_by = NULL
        WHERE superseded_by = old.id;
    END;

    -- A topic that loses a member is stale: its label and description may describe the
    -- forgotten memory, so they are cleared until the next build relabels it. A topic with no
    -- members left is gone.
    CREATE TRIGGER profile_topic_member_gone AFTER DELETE ON profile_topic_members
    BEGIN
        DELETE FROM profile_topics WHERE id = old.topic_id
            AND NOT EXISTS (SELECT 1 FROM profile_topic_members WHERE topic_id = old.topic_id);
        UPDATE profile_topics SET stale = 1, label = '', description = ''
        WHERE id = old.topic_id;
    END;

    CREATE TRIGGER profile_topic_stale AFTER UPDATE OF stale ON profile_topics
    WHEN new.stale = 1 AND old.stale = 0
    BEGIN
        UPDATE profile_bios SET stale = 1, text = ''
        WHERE id IN (SELECT bio_id FROM profile_bio_topics WHERE topic_id = new.id);
    END;

    CREATE TRIGGER profile_topic_gone BEFORE DELETE ON profile_topics
    BEGIN
        UPDATE profile_bios SET stale = 1, text = ''
        WHERE id IN (SELECT bio_id FROM profile_bio_topics WHERE topic_id = old.id);
    END;
    """,
    # 3: keeping the vector index in step with SQLite across processes and crashes. Writers commit
    # rows with `embeddings.indexed = 0` and removed ids in `index_removals`, then bring Chroma in
    # step and clear both; whatever a crash leaves there is replayed on the next open.
    # `index_state.generation` counts writes to the index, so that a process notices another one
    # wrote to it (Chroma keeps its graph in memory per process) and reloads before using it.
    """
    CREATE TABLE index_state (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO index_state (id, generation) VALUES (1, 0);

    CREATE TABLE index_removals (
        memory_id TEXT PRIMARY KEY
    ) WITHOUT ROWID;

    -- counting vectors per model and state without reading their blobs
    CREATE INDEX embeddings_model ON embeddings(model, indexed);
    """,
]


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(
    conn: sqlite3.Connection,
    migrations: list[str] | None = None,
    begin: Callable[[], object] | None = None,
    *,
    what: str = "the memory database",
) -> int:
    """Bring the database up to the latest schema; returns the version it ends at.

    Each step runs in its own write transaction together with the version bump, so a failed step
    leaves the database at the previous version rather than half-migrated. `begin` opens that
    transaction (default: `BEGIN IMMEDIATE`; the store passes one that waits its turn). The
    version is read again under the lock: another process opening the same new home at the same
    moment may have applied the step already. `migrations` defaults to the memory store's;
    other databases of a home (the bots' state) pass their own, and `what` names them in errors.
    """
    steps = MIGRATIONS if migrations is None else migrations
    current = schema_version(conn)
    if current > len(steps):
        raise RuntimeError(
            f"{what} is at schema version {current}, newer than this version of "
            f"twin knows ({len(steps)}); upgrade twin"
        )
    start = begin or (lambda: conn.execute("BEGIN IMMEDIATE"))
    for version in range(current + 1, len(steps) + 1):
        start()
        try:
            if schema_version(conn) < version:
                for statement in _statements(steps[version - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise RuntimeError(f"schema migration {version} of {what} failed: {exc}") from exc
    return len(steps)


def _statements(script: str) -> Iterator[str]:
    """The statements of a SQL script, one at a time.

    `executescript()` would commit the transaction the step runs in, so the script is split here
    instead; `sqlite3.complete_statement` knows about triggers, quotes and comments.
    """
    pending = ""
    *pieces, tail = script.split(";")
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending
            pending = ""
    pending += tail
    if pending.strip():
        yield pending
