"""SQL for L1: reading the state a build starts from, and writing a build's plan.

The tables, views and triggers are in migration 2 (`memory.migrations`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memory.models import Visibility
from memory.profile.factbook import FactRecord, Support
from memory.profile.plan import BuildPlan, ScopePlan, TopicRecord
from memory.profile.records import Scope, effective_visibility

CHUNK = 900


class ProfileBuildConflict(RuntimeError):
    """Memories a build used were forgotten while it ran; nothing was written."""


class ProfileIntegrityError(RuntimeError):
    """A build would have written something an audience may not see; nothing was written."""


@dataclass(frozen=True)
class ScopeMemory:
    rowid: int
    id: str
    ts: float
    text: str


@dataclass(frozen=True)
class StoredBio:
    id: int
    kind: str
    person: str
    text: str
    writer: str
    inputs_hash: str
    stale: bool
    build_id: int


def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" for _ in range(n))


# -- reading --------------------------------------------------------------------------------


def scope_memories(conn: sqlite3.Connection, scope: Scope) -> list[ScopeMemory]:
    """Every memory `scope` may see, in insertion order."""
    where, params = scope.memory_filter.sql("m")
    rows = conn.execute(
        f"SELECT m.rowid, m.id, coalesce(m.ts, m.created_at), m.text FROM memories m"
        f" WHERE {where} ORDER BY m.rowid",
        params,
    )
    return [ScopeMemory(r[0], r[1], r[2], r[3]) for r in rows]


def owner_memories(conn: sqlite3.Connection) -> list[tuple[int, str, Visibility]]:
    """(rowid, id, effective visibility) of every memory the owner wrote, in insertion order."""
    rows = conn.execute(
        "SELECT rowid, id, visibility, shared_with FROM memories WHERE is_owner = 1 ORDER BY rowid"
    )
    return [(r[0], r[1], effective_visibility(Visibility(r[2]), r[3])) for r in rows]


def supports(conn: sqlite3.Connection, memory_ids: Iterable[str]) -> dict[str, Support]:
    """What a fact needs to know about each of `memory_ids` that exists."""
    out: dict[str, Support] = {}
    for chunk in chunks(sorted(set(memory_ids))):
        rows = conn.execute(
            "SELECT rowid, id, coalesce(ts, created_at), visibility, shared_with FROM memories"
            f" WHERE id IN ({_marks(len(chunk))})",
            chunk,
        )
        for r in rows:
            out[r[1]] = Support(r[0], r[1], r[2], effective_visibility(Visibility(r[3]), r[4]))
    return out


def vectors(conn: sqlite3.Connection, rowids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The stored embeddings of `rowids` in order, and a mask of those that have one.

    Read straight from SQLite: L1 never embeds anything, nor loads the embedding model.
    """
    found: dict[int, np.ndarray] = {}
    for chunk in chunks(rowids):
        rows = conn.execute(
            "SELECT memory_rowid, vector FROM embeddings"
            f" WHERE memory_rowid IN ({_marks(len(chunk))})",
            chunk,
        )
        for rowid, blob in rows:
            found[rowid] = np.frombuffer(blob, dtype=np.float32)
    dim = len(next(iter(found.values()))) if found else 0
    out = np.zeros((len(rowids), dim), dtype=np.float32)
    mask = np.zeros(len(rowids), dtype=bool)
    for i, rowid in enumerate(rowids):
        if rowid in found:
            out[i] = found[rowid]
            mask[i] = True
    return out, mask


def processed(conn: sqlite3.Connection, step: str) -> set[int]:
    rows = conn.execute("SELECT memory_rowid FROM profile_processed WHERE step = ?", (step,))
    return {r[0] for r in rows}


def load_facts(conn: sqlite3.Connection, *, with_support: bool = True) -> list[FactRecord]:
    """Every stored fact. Without support (a full build), each must be found again to stay."""
    records: dict[int, FactRecord] = {}
    superseded_by: dict[int, int] = {}
    for r in conn.execute("SELECT * FROM profile_facts ORDER BY id"):
        records[r["id"]] = FactRecord(
            id=r["id"],
            attribute=r["attribute"],
            value=r["value"],
            statement=r["statement"],
            first_person=r["first_person"],
            exclusive=bool(r["exclusive"]),
            extractor=r["extractor"],
            status=r["status"],
            stored_status=(r["status"], r["superseded_by"]),
            stored_text=(r["statement"], r["first_person"], r["value"]),
            created_at=r["created_at"],
        )
        if r["superseded_by"] is not None:
            superseded_by[r["id"]] = r["superseded_by"]
    for fact_id, winner in superseded_by.items():
        records[fact_id].superseded_by = records.get(winner)
    rows = conn.execute(
        "SELECT s.fact_id, m.rowid, m.id, coalesce(m.ts, m.created_at), m.visibility,"
        " m.shared_with FROM profile_fact_support s JOIN memories m ON m.rowid = s.memory_rowid"
    )
    stored: dict[int, set[int]] = {}
    for fact_id, rowid, mid, ts, vis, shared in rows:
        stored.setdefault(fact_id, set()).add(rowid)
        if with_support:
            support = Support(rowid, mid, ts, effective_visibility(Visibility(vis), shared))
            records[fact_id].support[rowid] = support
    for fact_id, record in records.items():
        record.stored_support = frozenset(stored.get(fact_id, ()))
    return list(records.values())


def load_topics(conn: sqlite3.Connection, scope: Scope) -> list[TopicRecord]:
    members: dict[int, list[int]] = {}
    rows = conn.execute(
        "SELECT tm.topic_id, tm.memory_rowid FROM profile_topic_members tm"
        " JOIN profile_topics t ON t.id = tm.topic_id WHERE t.scope = ?"
        " ORDER BY tm.topic_id, tm.memory_rowid",
        (str(scope),),
    )
    for topic_id, rowid in rows:
        members.setdefault(topic_id, []).append(rowid)
    return [
        TopicRecord(
            id=r["id"],
            scope=scope,
            members=members.get(r["id"], []),
            centroid=np.frombuffer(r["centroid"], dtype=np.float32),
            threshold=r["assign_threshold"],
            labelled_size=r["labelled_size"],
            label=r["label"],
            description=r["description"],
            keywords=tuple(json.loads(r["keywords"])),
            namer=r["namer"],
            stale=bool(r["stale"]),
        )
        for r in conn.execute(
            "SELECT * FROM profile_topics WHERE scope = ? ORDER BY id", (str(scope),)
        )
    ]


def stored_bios(conn: sqlite3.Connection, scope: Scope) -> list[StoredBio]:
    rows = conn.execute(
        "SELECT * FROM profile_bios WHERE scope = ? ORDER BY kind, person DESC", (str(scope),)
    )
    return [
        StoredBio(
            r["id"],
            r["kind"],
            r["person"],
            r["text"],
            r["writer"],
            r["inputs_hash"],
            bool(r["stale"]),
            r["build_id"],
        )
        for r in rows
    ]


# -- the build log ----------------------------------------------------------------------------


def start_build(
    conn: sqlite3.Connection,
    scopes: tuple[Scope, ...],
    full: bool,
    owner: str,
    writers: dict[str, str],
    now: float,
) -> int:
    cur = conn.execute(
        "INSERT INTO profile_builds (scopes, mode, status, started_at, owner_name, writers)"
        " VALUES (?,?, 'running', ?,?,?)",
        (
            ",".join(str(s) for s in scopes),
            "full" if full else "incremental",
            now,
            owner,
            json.dumps(writers),
        ),
    )
    return int(cur.lastrowid or 0)


def finish_build(
    conn: sqlite3.Connection, build_id: int, stats: dict[str, Any], now: float
) -> None:
    conn.execute(
        "UPDATE profile_builds SET status = 'done', finished_at = ?, stats = ? WHERE id = ?",
        (now, json.dumps(stats), build_id),
    )


def fail_build(conn: sqlite3.Connection, build_id: int, error: str, now: float) -> None:
    conn.execute(
        "UPDATE profile_builds SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
        (now, error, build_id),
    )


def last_build(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM profile_builds WHERE status = 'done' ORDER BY id DESC LIMIT 1"
    ).fetchone()


# -- writing a plan ---------------------------------------------------------------------------


def apply(conn: sqlite3.Connection, plan: BuildPlan, now: float) -> None:
    """Write `plan` inside the caller's transaction, then check what audiences would see."""
    missing = _missing(conn, plan.referenced_rowids())
    if missing:
        raise ProfileBuildConflict(
            f"{len(missing)} memories this build used were forgotten while it ran; "
            "nothing was written, run the build again"
        )
    _write_facts(conn, plan, now)
    for scope_plan in plan.scopes:
        _write_topics(conn, plan, scope_plan, now)
        if scope_plan.bio is not None:
            _write_bios(conn, plan.build_id, scope_plan, now)
    check(conn)


def _missing(conn: sqlite3.Connection, rowids: set[int]) -> set[int]:
    wanted = sorted(rowids)
    found: set[int] = set()
    for chunk in chunks(wanted):
        rows = conn.execute(
            f"SELECT rowid FROM memories WHERE rowid IN ({_marks(len(chunk))})", chunk
        )
        found.update(r[0] for r in rows)
    return set(wanted) - found


def _write_facts(conn: sqlite3.Connection, plan: BuildPlan, now: float) -> None:
    book = plan.facts
    if plan.full:
        conn.execute("DELETE FROM profile_processed WHERE step LIKE 'facts:%'")
    conn.executemany("DELETE FROM profile_facts WHERE id = ?", [(r.id,) for r in book.dead])
    for record in book.alive:
        if record.id is None:
            cur = conn.execute(
                "INSERT INTO profile_facts (attribute, value, value_key, statement, first_person,"
                " exclusive, extractor, build_id, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    record.attribute,
                    record.value,
                    record.value_key,
                    record.statement,
                    record.first_person,
                    int(record.exclusive),
                    record.extractor,
                    plan.build_id,
                    now,
                    now,
                ),
            )
            record.id = int(cur.lastrowid or 0)
        elif record.text_changed:
            conn.execute(
                "UPDATE profile_facts SET value = ?, value_key = ?, statement = ?,"
                " first_person = ?, extractor = ?, exclusive = ?, build_id = ?, updated_at = ?"
                " WHERE id = ?",
                (
                    record.value,
                    record.value_key,
                    record.statement,
                    record.first_person,
                    record.extractor,
                    int(record.exclusive),
                    plan.build_id,
                    now,
                    record.id,
                ),
            )
        added = [
            (record.id, rowid) for rowid in record.support if rowid not in record.stored_support
        ]
        conn.executemany(
            "INSERT OR IGNORE INTO profile_fact_support (fact_id, memory_rowid) VALUES (?,?)", added
        )
        # New support goes in before old support comes out: a fact never passes through
        # "no support", which the trigger would take for "forgotten".
        gone = [
            (record.id, rowid) for rowid in record.stored_support if rowid not in record.support
        ]
        conn.executemany(
            "DELETE FROM profile_fact_support WHERE fact_id = ? AND memory_rowid = ?", gone
        )
    conn.executemany(
        "UPDATE profile_facts SET status = ?, superseded_by = ?, updated_at = ?"
        " WHERE id = ? AND (status IS NOT ? OR superseded_by IS NOT ?)",
        [
            (r.status, target, now, r.id, r.status, target)
            for r in book.alive
            for target in [r.superseded_by.id if r.superseded_by else None]
        ],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO profile_processed (step, memory_rowid, build_id) VALUES (?,?,?)",
        [(plan.fact_step, rowid, plan.build_id) for rowid in plan.fact_processed],
    )


def _write_topics(
    conn: sqlite3.Connection, plan: BuildPlan, scope_plan: ScopePlan, now: float
) -> None:
    scope = str(scope_plan.scope)
    if plan.full:
        conn.execute("DELETE FROM profile_topics WHERE scope = ?", (scope,))
        conn.execute("DELETE FROM profile_processed WHERE step = ?", (scope_plan.step,))
    for topic in scope_plan.topics:
        values = (
            topic.label,
            topic.description,
            json.dumps(list(topic.keywords), ensure_ascii=False),
            topic.namer,
            topic.centroid.astype(np.float32).tobytes(),
            topic.threshold,
            topic.labelled_size,
        )
        if topic.id is None:
            cur = conn.execute(
                "INSERT INTO profile_topics (scope, build_id, label, description, keywords, namer,"
                " centroid, assign_threshold, labelled_size, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (scope, plan.build_id, *values, now, now),
            )
            topic.id = int(cur.lastrowid or 0)
        elif topic.relabel:
            conn.execute(
                "UPDATE profile_topics SET label = ?, description = ?, keywords = ?, namer = ?,"
                " centroid = ?, assign_threshold = ?, labelled_size = ?, stale = 0,"
                " build_id = ?, updated_at = ? WHERE id = ?",
                (*values, plan.build_id, now, topic.id),
            )
        conn.executemany(
            "INSERT OR IGNORE INTO profile_topic_members (topic_id, memory_rowid) VALUES (?,?)",
            [(topic.id, rowid) for rowid in topic.new_members],
        )
    conn.executemany(
        "INSERT OR IGNORE INTO profile_processed (step, memory_rowid, build_id) VALUES (?,?,?)",
        [(scope_plan.step, rowid, plan.build_id) for rowid in scope_plan.processed],
    )


def _write_bios(conn: sqlite3.Connection, build_id: int, scope_plan: ScopePlan, now: float) -> None:
    bio = scope_plan.bio
    assert bio is not None
    conn.execute("DELETE FROM profile_bios WHERE scope = ?", (str(scope_plan.scope),))
    for kind, person, text in bio.texts.items():
        cur = conn.execute(
            "INSERT INTO profile_bios (scope, kind, person, text, writer, build_id, inputs_hash,"
            " created_at) VALUES (?,?,?,?,?,?,?,?)",
            (str(scope_plan.scope), kind, person, text, bio.writer, build_id, bio.inputs_hash, now),
        )
        bio_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO profile_bio_facts (bio_id, fact_id, cited) VALUES (?,?,?)",
            [(bio_id, f.id, int(c)) for f, c in zip(bio.facts, bio.cited, strict=True)],
        )
        conn.executemany(
            "INSERT INTO profile_bio_topics (bio_id, topic_id) VALUES (?,?)",
            [(bio_id, t.id) for t in bio.topics],
        )


def check(conn: sqlite3.Connection) -> None:
    """Refuse to keep a profile where an audience's topics or bios draw on what it may not see:
    a topic member outside its scope, or a bio fact narrower than the bio's scope."""
    for scope in (Scope.FRIENDS, Scope.PUBLIC):
        allowed = [str(v) for v in scope.visibilities]
        marks = _marks(len(allowed))
        members = conn.execute(
            "SELECT count(*) FROM profile_topic_members tm"
            " JOIN profile_topics t ON t.id = tm.topic_id"
            " JOIN memories m ON m.rowid = tm.memory_rowid"
            f" WHERE t.scope = ? AND (m.shared_with IS NOT NULL OR m.visibility NOT IN ({marks}))",
            [str(scope), *allowed],
        ).fetchone()[0]
        facts = conn.execute(
            "SELECT count(*) FROM profile_bio_facts bf JOIN profile_bios b ON b.id = bf.bio_id"
            " JOIN profile_fact_visibility v ON v.fact_id = bf.fact_id"
            f" WHERE b.scope = ? AND v.visibility NOT IN ({marks})",
            [str(scope), *allowed],
        ).fetchone()[0]
        if members or facts:
            raise ProfileIntegrityError(
                f"the {scope} profile would draw on {members} topic memories and {facts} facts "
                "that audience may not see; nothing was written"
            )
