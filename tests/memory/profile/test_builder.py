"""Building L1 on small stores: incremental work, contradictions, privacy of derived facts,
forgetting, and builds that fail without leaving half a profile behind."""

from __future__ import annotations

import pytest

from memory.models import Visibility
from memory.profile import (
    BioRequest,
    BioTexts,
    Profile,
    ProfileBuilder,
    ProfileIntegrityError,
    Scope,
)
from memory.profile.db import check
from memory.store import MemoryStore
from tests.memory.profile.corpus import CLIMBING, OWNER, Line, ingest, themed

FRIEND = (Visibility.FRIENDS, Visibility.PUBLIC)


def build(store: MemoryStore, **kwargs) -> ProfileBuilder:
    builder = ProfileBuilder(store, OWNER)
    builder.build(**kwargs)
    return builder


def facts_by_value(store: MemoryStore, scope: Scope = Scope.OWNER) -> dict[str, object]:
    return {f.value: f for f in Profile(store).for_scope(scope).facts}


def topic_of(store: MemoryStore, memory_id: str, scope: Scope = Scope.OWNER):
    (topic,) = [t for t in Profile(store).for_scope(scope).topics if memory_id in t.member_ids]
    return topic


def test_incremental_build_processes_only_new_memories(store: MemoryStore) -> None:
    first_ids = ingest(store, themed())
    first = ProfileBuilder(store, OWNER).build()
    owner = {s.scope: s for s in first.scopes}[Scope.OWNER]
    assert (first.fact_memories, owner.new_memories, owner.new_topics) == (24, 24, 3)

    new_ids = ingest(
        store,
        [
            Line("Bouldering again tonight, the overhang at Vertigo is calling", day=20),
            Line("Baking sourdough bread again with more starter this time", day=20),
            Line("More cuttlefish camouflage trials on the checkerboard tank", day=20),
            Line("I live in Lisbon and love it", day=21),
        ],
    )
    second = ProfileBuilder(store, OWNER).build()
    owner = {s.scope: s for s in second.scopes}[Scope.OWNER]
    assert second.mode == "incremental"
    assert second.fact_memories == 4  # only the new memories were read for facts
    assert (owner.memories, owner.new_memories) == (28, 4)
    # the three on-theme messages joined existing topics; the fourth is too short to cluster
    assert (owner.assigned, owner.new_topics, owner.topics) == (3, 0, 3)
    # one new member in eight is not enough to rename a topic
    assert owner.relabelled == 0
    assert facts_by_value(store)["Lisbon"].statement == "Iris Calder lives in Lisbon"
    processed = store.conn.execute(
        "SELECT count(*) FROM profile_processed WHERE step = 'facts:offline-patterns'"
    ).fetchone()[0]
    assert processed == 28

    climbing_new = topic_of(store, new_ids[0])
    old_climbing = {i for i, line in zip(first_ids, themed(), strict=True) if line.text in CLIMBING}
    assert old_climbing <= set(climbing_new.member_ids)
    # a full rebuild from scratch groups the newcomer the same way
    ProfileBuilder(store, OWNER).build(full=True)
    assert old_climbing <= set(topic_of(store, new_ids[0]).member_ids)


def test_newer_memory_supersedes_older_value_and_forgetting_it_restores_it(
    store: MemoryStore,
) -> None:
    (lisbon,) = ingest(store, [Line("I live in Lisbon these days", day=300)])
    build(store)
    # the older memory arrives later (an older export): it must not win
    (edinburgh,) = ingest(store, [Line("I live in Edinburgh, in a flat in Leith", day=10)])
    report = ProfileBuilder(store, OWNER).build()
    assert report.facts_superseded == 1
    facts = facts_by_value(store)
    assert facts["Lisbon"].status == "active"
    assert facts["Edinburgh"].status == "superseded"
    assert facts["Edinburgh"].superseded_by == facts["Lisbon"].id
    # friends only ever see the current value
    assert set(facts_by_value(store, Scope.FRIENDS)) == {"Lisbon"}

    store.forget([lisbon])
    facts = facts_by_value(store)
    assert "Lisbon" not in facts
    assert facts["Edinburgh"].status == "active"
    assert facts["Edinburgh"].superseded_by is None
    assert [m.id for m in facts["Edinburgh"].sources] == [edinburgh]


def test_forgetting_the_newest_of_three_values_activates_the_next_newest(
    store: MemoryStore,
) -> None:
    ids = ingest(
        store,
        [
            Line("I live in Glasgow", day=1),
            Line("I live in Edinburgh", day=100),
            Line("I live in Lisbon", day=200),
        ],
    )
    build(store)
    assert {v: f.status for v, f in facts_by_value(store).items()} == {
        "Glasgow": "superseded",
        "Edinburgh": "superseded",
        "Lisbon": "active",
    }
    store.forget([ids[2]])
    facts = facts_by_value(store)
    assert facts["Edinburgh"].status == "active"
    assert facts["Glasgow"].superseded_by == facts["Edinburgh"].id


def test_a_fact_is_as_private_as_its_most_private_support(store: MemoryStore) -> None:
    private, shared = ingest(
        store,
        [
            Line(
                "I'm allergic to peanuts, which nobody at work knows", visibility=Visibility.PRIVATE
            ),
            Line("I'm allergic to peanuts so no satay for me", day=3),
        ],
    )
    build(store)
    (fact,) = Profile(store).for_scope(Scope.OWNER).facts
    assert (fact.attribute, fact.value, fact.visibility) == ("allergy", "peanuts", "private")
    assert {m.id for m in fact.sources} == {private, shared}
    friends = Profile(store).for_audience(FRIEND)
    assert friends.facts == ()
    assert "peanuts" not in friends.bio()

    # forgetting the private support widens the fact to what the remaining one allows
    store.forget([private])
    (fact,) = Profile(store).for_audience(FRIEND).facts
    assert fact.visibility is Visibility.FRIENDS
    assert [m.id for m in fact.sources] == [shared]


def test_a_memory_shared_with_one_friend_only_feeds_the_owner(store: MemoryStore) -> None:
    lines = [
        Line(t, visibility=Visibility.FRIENDS, shared_with="telegram:555")
        for t in [*CLIMBING, "I'm allergic to shellfish, always ask about the sauce"]
    ]
    ingest(store, lines)
    build(store)
    owner = Profile(store).for_scope(Scope.OWNER)
    friends = Profile(store).for_audience(FRIEND)
    assert owner.topics and owner.facts
    assert owner.facts[0].visibility is Visibility.PRIVATE
    assert (friends.topics, friends.facts) == ((), ())


def test_forgetting_the_only_support_deletes_the_fact_and_stales_the_bio(
    store: MemoryStore,
) -> None:
    ids = ingest(store, [*themed(), Line("I'm allergic to peanuts and carry an EpiPen", day=9)])
    build(store)
    assert "peanuts" in Profile(store).for_scope(Scope.OWNER).bio()

    store.forget([ids[-1]])
    assert store.conn.execute("SELECT count(*) FROM profile_facts").fetchone()[0] == 0
    stale = store.conn.execute(
        "SELECT count(*) FROM profile_bios WHERE stale = 1 AND text = ''"
    ).fetchone()[0]
    assert stale == 8  # four texts each for owner and friends, both used the fact
    view = Profile(store).for_scope(Scope.OWNER)
    assert all(b.fallback for b in view.bios)
    assert all("peanuts" not in b.text for b in view.bios)
    assert "often talks about" in view.bio()

    report = ProfileBuilder(store, OWNER).build()
    assert all(s.bios_rebuilt for s in report.scopes if s.scope is not Scope.PUBLIC)
    assert not any(b.fallback for b in Profile(store).for_scope(Scope.OWNER).bios)


def test_a_topic_that_loses_a_member_is_stale_until_renamed(store: MemoryStore) -> None:
    ids = ingest(store, themed())
    build(store)
    topic = topic_of(store, ids[0])
    gone = store.get(ids[0])
    assert gone is not None
    store.forget([ids[0]])

    row = store.conn.execute(
        "SELECT stale, label FROM profile_topics WHERE id = ?", (topic.id,)
    ).fetchone()
    assert (row[0], row[1]) == (1, "")
    view = Profile(store).for_scope(Scope.OWNER)
    (shown,) = [t for t in view.topics if t.id == topic.id]
    assert shown.stale and shown.size == topic.size - 1
    assert set(shown.keywords) <= set(topic.keywords)
    assert all(b.fallback for b in view.bios)

    report = ProfileBuilder(store, OWNER).build()
    owner = {s.scope: s for s in report.scopes}[Scope.OWNER]
    assert owner.relabelled == 1
    (renamed,) = [t for t in Profile(store).for_scope(Scope.OWNER).topics if t.id == topic.id]
    assert not renamed.stale and renamed.label


def test_full_build_rederives_facts_and_keeps_their_ids(store: MemoryStore) -> None:
    ingest(store, [Line("I live in Edinburgh", day=1), Line("I moved to Lisbon in March", day=50)])
    build(store)
    before = {v: (f.id, f.status) for v, f in facts_by_value(store).items()}
    report = ProfileBuilder(store, OWNER).build(full=True)
    assert report.fact_memories == 2 and report.facts_removed == 0
    assert {v: (f.id, f.status) for v, f in facts_by_value(store).items()} == before
    assert before["Edinburgh"][1] == "superseded"


class BrokenBioWriter:
    name = "broken"

    def write(self, request: BioRequest) -> BioTexts:
        raise RuntimeError("the bio writer fell over")


def test_a_failed_build_leaves_the_previous_profile(store: MemoryStore) -> None:
    ingest(store, [*themed(), Line("I live in Lisbon", day=2)])
    build(store)
    before = Profile(store).for_scope(Scope.OWNER).to_json()
    ingest(store, [Line("I'm allergic to peanuts", day=30)])
    with pytest.raises(RuntimeError, match="fell over"):
        ProfileBuilder(store, OWNER, bio_writer=BrokenBioWriter()).build(full=True)
    assert Profile(store).for_scope(Scope.OWNER).to_json() == before
    status, error = store.conn.execute(
        "SELECT status, error FROM profile_builds ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert status == "failed" and "fell over" in error
    # nothing of the failed build's work was kept: the new memory is still unprocessed
    assert ProfileBuilder(store, OWNER).build().fact_memories == 1


def test_the_integrity_check_refuses_a_private_memory_in_a_friends_topic(
    store: MemoryStore,
) -> None:
    ids = ingest(store, [*themed(), Line("a private thought", visibility=Visibility.PRIVATE)])
    build(store)
    check(store.conn)  # what the builder wrote passes
    topic_id = store.conn.execute(
        "SELECT id FROM profile_topics WHERE scope = 'friends' LIMIT 1"
    ).fetchone()[0]
    rowid = store.conn.execute("SELECT rowid FROM memories WHERE id = ?", (ids[-1],)).fetchone()[0]
    store.conn.execute(
        "INSERT INTO profile_topic_members (topic_id, memory_rowid) VALUES (?, ?)",
        (topic_id, rowid),
    )
    with pytest.raises(ProfileIntegrityError, match="friends profile"):
        check(store.conn)
    # and a reader never shows such a topic to friends
    friends = Profile(store).for_audience(FRIEND)
    assert topic_id not in {t.id for t in friends.topics}
