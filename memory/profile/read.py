"""Reading L1 for one audience: only what that audience may see, never stale text.

A fact is shown to an audience when its computed visibility (the narrowest of its supporting
memories, from the `profile_fact_visibility` view) is one the audience may see; only the owner
sees superseded facts. Topics and bios come from the audience's scope. A topic that lost
members since it was named is shown by the keywords its remaining members still contain; a bio
that is stale (a fact or topic it used is gone) is replaced by one assembled offline from what
is there now.
"""

from __future__ import annotations

import json
from datetime import timedelta

from core.clock import SYSTEM_CLOCK, Clock
from memory.models import Visibility
from memory.profile import db
from memory.profile.bio import STATUS_DAYS, TemplateBioWriter, bio_request
from memory.profile.records import (
    BioFact,
    BioTopic,
    BioView,
    FactView,
    ProfileView,
    Scope,
    TopicView,
)
from memory.profile.sentences import topic_terms
from memory.profile.topics import keyword_label
from memory.store import MemoryStore


class Profile:
    """The L1 profile of a store, as each audience may see it."""

    def __init__(
        self,
        store: MemoryStore,
        owner_name: str | None = None,
        status_days: int = STATUS_DAYS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.clock = clock
        last = db.last_build(store.conn)
        self.owner_name = owner_name or (last["owner_name"] if last else "the owner")
        self.status_days = status_days

    def for_audience(self, visibilities: tuple[Visibility, ...]) -> ProfileView:
        """What an audience that may see memories of `visibilities` may see of the profile."""
        scope = Scope.for_audience(visibilities)
        if scope is None:
            return ProfileView(None, (), (), (), None, None)
        return self.for_scope(scope)

    def for_scope(self, scope: Scope) -> ProfileView:
        last = db.last_build(self.store.conn)
        facts = self._facts(scope)
        topics = self._topics(scope)
        return ProfileView(
            scope=scope,
            bios=self._bios(scope, facts, topics),
            topics=topics,
            facts=facts,
            build_id=last["id"] if last else None,
            built_at=db.to_datetime(last["finished_at"]) if last else None,
        )

    def _facts(self, scope: Scope) -> tuple[FactView, ...]:
        conn = self.store.conn
        allowed = [str(v) for v in scope.visibilities]
        status = "" if scope is Scope.OWNER else " AND f.status = 'active'"
        rows = conn.execute(
            "SELECT f.*, v.visibility AS effective, v.newest_ts FROM profile_facts f"
            " JOIN profile_fact_visibility v ON v.fact_id = f.id"
            f" WHERE v.visibility IN ({','.join('?' for _ in allowed)}){status}"
            " ORDER BY f.status, f.attribute, f.id",
            allowed,
        ).fetchall()
        support: dict[int, list[str]] = {}
        for chunk in db.chunks([r["id"] for r in rows]):
            for fact_id, memory_id in conn.execute(
                "SELECT s.fact_id, m.id FROM profile_fact_support s"
                " JOIN memories m ON m.rowid = s.memory_rowid"
                f" WHERE s.fact_id IN ({','.join('?' for _ in chunk)})"
                " ORDER BY coalesce(m.ts, m.created_at), m.rowid",
                chunk,
            ):
                support.setdefault(fact_id, []).append(memory_id)
        memories = {
            m.id: m for m in self.store.get_many([mid for ids in support.values() for mid in ids])
        }
        return tuple(
            FactView(
                id=r["id"],
                statement=r["statement"],
                first_person=r["first_person"],
                attribute=r["attribute"],
                value=r["value"],
                visibility=Visibility(r["effective"]),
                status=r["status"],
                superseded_by=r["superseded_by"],
                extractor=r["extractor"],
                newest=db.to_datetime(r["newest_ts"]),
                sources=tuple(memories[mid] for mid in support.get(r["id"], []) if mid in memories),
            )
            for r in rows
        )

    def _topics(self, scope: Scope) -> tuple[TopicView, ...]:
        conn = self.store.conn
        where, params = scope.memory_filter.sql("m")
        rows = conn.execute(
            "SELECT t.*, s.size, s.first_ts, s.last_ts FROM profile_topics t"
            " JOIN profile_topic_stats s ON s.topic_id = t.id WHERE t.scope = ?"
            # Never show a topic with a member this scope may not see.
            " AND NOT EXISTS (SELECT 1 FROM profile_topic_members tm"
            " JOIN memories m ON m.rowid = tm.memory_rowid"
            f" WHERE tm.topic_id = t.id AND NOT ({where}))"
            " ORDER BY s.size DESC, t.id",
            [str(scope), *params],
        ).fetchall()
        out = []
        for r in rows:
            members = conn.execute(
                "SELECT m.id, m.text FROM profile_topic_members tm"
                " JOIN memories m ON m.rowid = tm.memory_rowid WHERE tm.topic_id = ?"
                " ORDER BY m.rowid",
                (r["id"],),
            ).fetchall()
            keywords = tuple(json.loads(r["keywords"]))
            label, description = r["label"], r["description"]
            if r["stale"]:
                # Only keywords the remaining members still contain: a forgotten memory's
                # words must not outlive it.
                present = {key for m in members for key, _ in topic_terms(m["text"])}
                keywords = tuple(k for k in keywords if k.casefold() in present)
                label, description = keyword_label(keywords), ""
            out.append(
                TopicView(
                    id=r["id"],
                    label=label,
                    description=description,
                    keywords=keywords,
                    size=r["size"],
                    first=db.to_datetime(r["first_ts"]),
                    last=db.to_datetime(r["last_ts"]),
                    stale=bool(r["stale"]),
                    member_ids=tuple(m["id"] for m in members),
                )
            )
        return tuple(out)

    def _bios(
        self, scope: Scope, facts: tuple[FactView, ...], topics: tuple[TopicView, ...]
    ) -> tuple[BioView, ...]:
        stored = db.stored_bios(self.store.conn, scope)
        if len(stored) == 4 and not any(b.stale for b in stored) and self._links_ok(scope):
            return tuple(BioView(b.kind, b.person, b.text, b.writer, False) for b in stored)
        return self._fallback(scope, facts, topics)

    def _links_ok(self, scope: Scope) -> bool:
        """Whether every fact the scope's bios used is still one the scope may see."""
        allowed = [str(v) for v in scope.visibilities]
        wider = self.store.conn.execute(
            "SELECT count(*) FROM profile_bio_facts bf JOIN profile_bios b ON b.id = bf.bio_id"
            " JOIN profile_fact_visibility v ON v.fact_id = bf.fact_id"
            f" WHERE b.scope = ? AND v.visibility NOT IN ({','.join('?' for _ in allowed)})",
            [str(scope), *allowed],
        ).fetchone()[0]
        return wider == 0

    def _fallback(
        self, scope: Scope, facts: tuple[FactView, ...], topics: tuple[TopicView, ...]
    ) -> tuple[BioView, ...]:
        now = self.clock.now()
        since = now - timedelta(days=self.status_days)
        rows = self.store.conn.execute(
            "SELECT tm.topic_id, count(*) FROM profile_topic_members tm"
            " JOIN memories m ON m.rowid = tm.memory_rowid"
            " WHERE coalesce(m.ts, m.created_at) >= ? GROUP BY tm.topic_id",
            (since.timestamp(),),
        )
        recent: dict[int, int] = dict(rows.fetchall())
        active = [f for f in facts if f.status == "active"]
        request = bio_request(
            self.owner_name,
            scope,
            [
                BioFact(i, f.statement, f.first_person, f.attribute, f.value, f.newest)
                for i, f in enumerate(active)
            ],
            [
                BioTopic(
                    i,
                    t.label,
                    t.keywords,
                    t.description,
                    t.size,
                    t.first,
                    t.last,
                    recent.get(t.id, 0),
                )
                for i, t in enumerate(topics)
            ],
            now,
            status_days=self.status_days,
        )
        writer = TemplateBioWriter()
        texts = writer.write(request)
        return tuple(
            BioView(kind, person, text, writer.name, True) for kind, person, text in texts.items()
        )
