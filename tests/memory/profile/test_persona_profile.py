"""L1 on the sample persona, offline: deterministic topics with real keywords, facts we know are
in her life, every fact traceable to memories, and nothing private in what friends see."""

from __future__ import annotations

import json

from core.clock import FixedClock
from memory.models import Visibility
from memory.profile import BuildReport, Profile, ProfileBuilder, ProfileView, Scope
from memory.profile.sentences import plain, topic_terms
from memory.store import MemoryStore
from tests.conftest import PERSONA_NOW
from tests.memory.profile.conftest import OWNER, PRIVATE_STRINGS

FRIEND = (Visibility.FRIENDS, Visibility.PUBLIC)


def topic_snapshot(view: ProfileView) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return sorted((t.label, t.keywords, tuple(sorted(t.member_ids))) for t in view.topics)


def friend_visible_text(view: ProfileView) -> str:
    """Everything a friend reads in the profile, as one string."""
    parts = [b.text for b in view.bios]
    for t in view.topics:
        parts += [t.label, t.description, *t.keywords]
    for f in view.facts:
        parts += [f.statement, f.first_person, f.value, *(m.text for m in f.sources)]
    return "\n".join(parts)


def test_first_build_covers_every_scope(persona_build: BuildReport) -> None:
    scopes = {s.scope: s for s in persona_build.scopes}
    assert scopes[Scope.OWNER].memories > scopes[Scope.FRIENDS].memories > 0
    # The persona has no public memory once notes are capped at friends.
    assert scopes[Scope.PUBLIC].memories == 0
    assert scopes[Scope.OWNER].topics >= 8
    assert scopes[Scope.FRIENDS].topics >= 8
    assert all(s.bios_rebuilt for s in persona_build.scopes)
    assert persona_build.fact_memories > 300  # every memory Iris wrote was read for facts


def test_topics_are_deterministic(persona_store: MemoryStore, persona_build: BuildReport) -> None:
    profile = Profile(persona_store)
    before = {s: topic_snapshot(profile.for_scope(s)) for s in Scope}
    report = ProfileBuilder(persona_store, OWNER, clock=FixedClock(PERSONA_NOW)).build(full=True)
    assert report.mode == "full"
    after = {s: topic_snapshot(profile.for_scope(s)) for s in Scope}
    assert after == before
    assert before[Scope.OWNER]


def test_topic_keywords_come_from_their_members(
    persona_store: MemoryStore, persona_build: BuildReport
) -> None:
    view = Profile(persona_store).for_scope(Scope.FRIENDS)
    members = {
        m.id: m for m in persona_store.get_many([i for t in view.topics for i in t.member_ids])
    }
    for topic in view.topics:
        assert topic.label and topic.keywords
        for keyword in topic.keywords:
            holding = [
                mid
                for mid in topic.member_ids
                if keyword.casefold() in {k for k, _ in topic_terms(members[mid].text)}
            ]
            # c-TF-IDF keywords must occur in at least two of the topic's memories
            assert len(holding) >= 2, (topic.label, keyword)
    keywords = {k.casefold() for t in view.topics for k in t.keywords}
    assert {"biscuit", "inkspot", "cuttlefish"} <= keywords


def test_facts_she_states_are_found(persona_store: MemoryStore, persona_build: BuildReport) -> None:
    facts = {(f.attribute, f.value): f for f in Profile(persona_store).for_scope(Scope.OWNER).facts}
    assert facts[("job", "marine biologist")].statement == (
        "Iris Calder works as a marine biologist"
    )
    assert ("employer", "Oceanário de Lisboa") in facts
    assert facts[("home_city", "Lisbon")].status == "active"
    assert ("lived_in", "Edinburgh") in facts
    assert ("pet", "greyhound") in facts
    assert ("diet", "vegetarian") in facts
    assert facts[("relation:climbing partner", "Tomás")].first_person == (
        "My climbing partner is Tomás"
    )
    # "I moved to Lisbon" is said in two notes: one fact, two supporting memories
    assert len(facts[("home_city", "Lisbon")].sources) == 2


def test_every_fact_is_supported_by_existing_memories_that_say_it(
    persona_store: MemoryStore, persona_build: BuildReport
) -> None:
    conn = persona_store.conn
    orphans = conn.execute(
        "SELECT count(*) FROM profile_facts f WHERE NOT EXISTS"
        " (SELECT 1 FROM profile_fact_support s JOIN memories m ON m.rowid = s.memory_rowid"
        " WHERE s.fact_id = f.id)"
    ).fetchone()[0]
    dangling = conn.execute(
        "SELECT count(*) FROM profile_fact_support s LEFT JOIN memories m"
        " ON m.rowid = s.memory_rowid WHERE m.rowid IS NULL"
    ).fetchone()[0]
    assert (orphans, dangling) == (0, 0)
    for fact in Profile(persona_store).for_scope(Scope.OWNER).facts:
        assert fact.sources
        # extractive: the value is in the words of a memory the owner wrote ("veggie" is the
        # one word the extractor normalises)
        said = {"vegetarian": "veggie"}.get(fact.value, fact.value).casefold()
        assert any(said in plain(m.text).casefold() for m in fact.sources)
        assert all(m.is_owner for m in fact.sources)


def test_friends_see_nothing_derived_from_private_memories(
    persona_store: MemoryStore, persona_build: BuildReport
) -> None:
    profile = Profile(persona_store)
    owner = profile.for_audience(tuple(Visibility))
    friends = profile.for_audience(FRIEND)
    assert friends.scope is Scope.FRIENDS
    # The private notes are in the owner's topics, so the check below is not vacuous.
    owner_members = persona_store.get_many([i for t in owner.topics for i in t.member_ids])
    assert any(s in m.text for m in owner_members for s in PRIVATE_STRINGS)
    assert any(m.visibility is Visibility.PRIVATE for m in owner_members)

    friend_members = persona_store.get_many([i for t in friends.topics for i in t.member_ids])
    assert friend_members
    assert all(m.visibility is not Visibility.PRIVATE for m in friend_members)
    for fact in friends.facts:
        assert fact.visibility is not Visibility.PRIVATE
        assert all(m.visibility is not Visibility.PRIVATE for m in fact.sources)
    text = friend_visible_text(friends).casefold()
    for secret in PRIVATE_STRINGS:
        assert secret.casefold() not in text
    # the words of the private home note that do make it into the owner's topics stay there
    assert "door code" in json.dumps(owner.to_json()).casefold()
    assert "door code" not in text


def test_friend_bio_is_built_from_what_friends_see(
    persona_store: MemoryStore, persona_build: BuildReport
) -> None:
    friends = Profile(persona_store).for_audience(FRIEND)
    bio = friends.bio("global", "third")
    assert bio.startswith("Iris Calder works as a marine biologist")
    assert "greyhound" in bio
    assert friends.bio("global", "first").startswith("I work as a marine biologist")
    assert "Since 22 September 2026" in friends.bio("status", "third")
    assert not any(b.fallback for b in friends.bios)


def test_the_public_sees_an_empty_profile(
    persona_store: MemoryStore, persona_build: BuildReport
) -> None:
    public = Profile(persona_store).for_audience((Visibility.PUBLIC,))
    assert public.scope is Scope.PUBLIC
    assert (public.topics, public.facts) == ((), ())
    assert public.bio() == "Nothing about Iris Calder is known to this audience yet."


def test_an_incremental_build_with_nothing_new_changes_nothing(
    persona_store: MemoryStore, persona_build: BuildReport
) -> None:
    before = Profile(persona_store).for_scope(Scope.OWNER).to_json()
    report = ProfileBuilder(persona_store, OWNER, clock=FixedClock(PERSONA_NOW)).build()
    assert report.fact_memories == 0
    assert all(s.new_memories == 0 and not s.bios_rebuilt for s in report.scopes)
    after = Profile(persona_store).for_scope(Scope.OWNER).to_json()
    assert {k: v for k, v in after.items() if k not in ("build_id", "built_at")} == {
        k: v for k, v in before.items() if k not in ("build_id", "built_at")
    }
