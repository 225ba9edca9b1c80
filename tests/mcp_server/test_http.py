"""The MCP server over streamable HTTP with the official client: tokens, Origin, audiences,
concurrent callers, model reload and tool errors."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.tools import OWNER_ONLY
from memory.models import Visibility
from memory.profile import BioView, FactView, ProfileBuilder, ProfileView, Scope, TopicView
from serving.service import Twin
from tests.mcp_server.serving import FRIEND_TOKEN, OWNER_TOKEN, connected, serve_twin
from tests.stored import stored_memory
from tests.twin_fixtures import promote_a_copy
from twin.privacy import Audience, AudienceKind
from twin.registry import ModelRegistry

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
FRIEND = Audience.friend("mcp:ana")


def post_initialize(url: str, headers: dict[str, str]) -> httpx2.Response:
    return httpx2.post(url, json=INITIALIZE, headers={**ACCEPT, **headers}, timeout=30)


def text_of(result) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def visible_to_friend(twin: Twin, ids: list[str]) -> bool:
    memories = twin.store.get_many(ids)
    assert len(memories) == len(ids)
    return all(FRIEND.may_see(m.visibility, m.shared_with) for m in memories)


def test_requests_without_a_valid_token_get_401_and_are_logged(
    http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mcp_server.access"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": OWNER_TOKEN}):
            response = post_initialize(http_url, headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
    refusals = [r.getMessage() for r in caplog.records if r.name == "mcp_server.access"]
    assert len(refusals) == 3 and all("refused POST /mcp" in r and "(401)" in r for r in refusals)
    assert "an unknown bearer token" in refusals[1]
    # the log names the refusal, never the token that was tried
    assert not any("wrong" in r or OWNER_TOKEN in r for r in refusals)
    assert post_initialize(http_url, {"Authorization": f"Bearer {OWNER_TOKEN}"}).is_success


async def test_the_official_client_cannot_connect_with_a_wrong_token(http_url: str) -> None:
    with pytest.raises(ExceptionGroup) as failure:
        async with connected(http_url, "not-the-token") as client:
            await client.list_tools()
    assert failure.group_contains(MCPError, match="error response")
    async with connected(http_url) as client:
        assert (await client.list_tools()).tools


def test_a_foreign_origin_is_refused(http_url: str) -> None:
    auth = {"Authorization": f"Bearer {OWNER_TOKEN}"}
    refused = post_initialize(http_url, {**auth, "Origin": "http://evil.example"})
    assert refused.status_code == 403
    # A local page (e.g. the MCP Inspector's web UI on its own port) may call it.
    assert post_initialize(http_url, {**auth, "Origin": "http://localhost:6274"}).is_success


async def test_the_owner_can_search_remember_and_forget(http_url: str, persona_twin: Twin) -> None:
    async with connected(http_url) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"ask_twin", "search_memories", *OWNER_ONLY}

        stored = await client.call_tool(
            "remember",
            {"text": "My locker at the climbing gym is number 4417.", "visibility": "friends"},
        )
        assert not stored.is_error, text_of(stored)
        memory_id = stored.structured_content["id"]
        assert stored.structured_content["stored"]
        assert persona_twin.store.get(memory_id).visibility == Visibility.FRIENDS

        found = await client.call_tool("search_memories", {"query": "climbing gym locker", "k": 3})
        assert memory_id in [m["id"] for m in found.structured_content["memories"]]

        gone = await client.call_tool("forget", {"memory_id": memory_id})
        assert gone.structured_content["forgotten"] and "4417" in gone.structured_content["snippet"]
        assert persona_twin.store.get(memory_id) is None
        again = await client.call_tool("search_memories", {"query": "climbing gym locker 4417"})
        assert memory_id not in [m["id"] for m in again.structured_content["memories"]]


async def test_a_friend_sees_only_what_friends_may_see(http_url: str, persona_twin: Twin) -> None:
    async with connected(http_url, FRIEND_TOKEN) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"ask_twin", "search_memories"}

        for tool, args in (
            ("remember", {"text": "Ana was here"}),
            ("forget", {"memory_id": "m_0000000000000000"}),
            ("enhance_request", {"request": "Plan my week"}),
            ("critique_reply", {"request": "Dinner?", "reply": "Steak."}),
        ):
            refused = await client.call_tool(tool, args)
            assert refused.is_error and "not allowed" in text_of(refused), tool
        assert persona_twin.store.find_text("Ana was here") == []

        answer = await client.call_tool(
            "ask_twin", {"question": "Where is Iris interviewing for a new job?"}
        )
        assert not answer.is_error
        assert answer.structured_content["audience"] == "friend"
        assert visible_to_friend(
            persona_twin, [m["id"] for m in answer.structured_content["memories"]]
        )
        assert "monterey" not in json.dumps(answer.structured_content).lower()

        wider = await client.call_tool("ask_twin", {"question": "Where?", "audience": "owner"})
        assert wider.is_error and "connected as friend" in text_of(wider)

        hits = await client.call_tool(
            "search_memories", {"query": "Monterey Bay Aquarium interview application", "k": 20}
        )
        ids = [m["id"] for m in hits.structured_content["memories"]]
        assert ids and visible_to_friend(persona_twin, ids)

        prompt = await client.get_prompt(
            "answer_with_my_context", {"question": "Monterey interview application"}
        )
        cited = re.findall(r"\[(m_[0-9a-f]+)\]", prompt.messages[0].content.text)
        assert cited and visible_to_friend(persona_twin, cited)

        status = json.loads((await client.read_resource("twin://status")).contents[0].text)
        assert status["audience"] == "friend"
        assert status["memories"]["total"] == persona_twin.store.count(FRIEND.memory_filter())
        assert status["memories"]["total"] < persona_twin.store.count()
        assert status["memories"]["by_visibility"] == {}


def _view(scope: Scope, who: str) -> ProfileView:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    source = stored_memory(
        f"{who} memory",
        id=f"m_{who}",
        source_id=who,
        timestamp=now,
        visibility=Visibility.PRIVATE if who == "owner" else Visibility.FRIENDS,
    )
    return ProfileView(
        scope=scope,
        bios=(BioView("global", "third", f"The {who} bio.", "test", False),),
        topics=(TopicView(1, f"{who} topic", "about it", ("a", "b"), 3, now, now, False, ()),),
        facts=(
            FactView(
                id=1,
                statement=f"{who} fact",
                first_person="I ...",
                attribute="likes",
                value=who,
                visibility=source.visibility,
                status="active",
                superseded_by=None,
                extractor="test",
                newest=now,
                sources=(source,),
            ),
        ),
        build_id=1,
        built_at=now,
    )


async def test_bio_topics_and_facts_are_the_callers_own_scope(persona_twin: Twin) -> None:
    views = {
        AudienceKind.OWNER: _view(Scope.OWNER, "owner"),
        AudienceKind.FRIEND: _view(Scope.FRIENDS, "friend"),
    }
    seen: list[Audience] = []

    def profile(audience: Audience) -> ProfileView | None:
        seen.append(audience)
        return views.get(audience.kind)

    with serve_twin(persona_twin, profile) as url:
        for token, who, other in (
            (OWNER_TOKEN, "owner", "friend"),
            (FRIEND_TOKEN, "friend", "owner"),
        ):
            async with connected(url, token) as client:
                bio = (await client.read_resource("twin://bio")).contents[0].text
                topics = json.loads((await client.read_resource("twin://topics")).contents[0].text)
                facts = json.loads((await client.read_resource("twin://facts")).contents[0].text)
                intro = await client.get_prompt("introduce_me", {"to": "a colleague"})
            assert f"The {who} bio." in bio and other not in bio
            assert [t["label"] for t in topics["topics"]] == [f"{who} topic"]
            assert [f["statement"] for f in facts["facts"]] == [f"{who} fact"]
            assert facts["facts"][0]["memory_ids"] == [f"m_{who}"]
            intro_text = intro.messages[0].content.text
            assert f"{who} fact" in intro_text and f"{other} fact" not in intro_text
    assert {a.kind for a in seen} == {AudienceKind.OWNER, AudienceKind.FRIEND}
    assert {a.principal for a in seen if a.kind == AudienceKind.FRIEND} == {"mcp:ana"}


async def test_resources_show_each_caller_their_scope_of_a_real_profile(
    persona_twin: Twin,
) -> None:
    # A private first-person statement the offline extractor turns into a fact.
    persona_twin.remember("I'm allergic to penicillin.", Visibility.PRIVATE)
    ProfileBuilder(persona_twin.store, persona_twin.owner).build(full=True)
    read: dict[str, dict[str, str]] = {}
    with serve_twin(persona_twin) as url:
        for who, token in (("owner", OWNER_TOKEN), ("friend", FRIEND_TOKEN)):
            async with connected(url, token) as client:
                read[who] = {
                    name: (await client.read_resource(f"twin://{name}")).contents[0].text
                    for name in ("bio", "topics", "facts")
                }
    owner_facts = json.loads(read["owner"]["facts"])["facts"]
    friend_facts = json.loads(read["friend"]["facts"])["facts"]
    assert friend_facts and len(owner_facts) > len(friend_facts)
    assert visible_to_friend(persona_twin, [i for f in friend_facts for i in f["memory_ids"]])
    private_facts = {
        f["statement"] for f in owner_facts if not visible_to_friend(persona_twin, f["memory_ids"])
    }
    assert private_facts, "the owner's profile should draw on private memories too"
    assert not private_facts & {f["statement"] for f in friend_facts}
    assert json.loads(read["friend"]["topics"])["topics"]
    assert read["owner"]["bio"].startswith("# Iris Calder")
    assert read["owner"]["bio"] != read["friend"]["bio"]


async def test_eight_concurrent_callers_are_all_answered_whole(http_url: str) -> None:
    questions = [
        "What happened to Biscuit's paw?",
        "When did I run the half marathon?",
        "What's my sourdough starter called?",
        "Which journal took my cuttlefish paper?",
        "What do I eat?",
        "Who is Tomás?",
        "What is InkSpot?",
        "Where am I going in Japan?",
    ]
    async with connected(http_url) as client:
        alone = [
            (await client.call_tool("ask_twin", {"question": q})).structured_content["answer"]
            for q in questions
        ]

    async def ask(question: str) -> dict:
        async with connected(http_url) as client:
            result = await client.call_tool("ask_twin", {"question": question})
            search = await client.call_tool("search_memories", {"query": question, "k": 3})
            assert not result.is_error and not search.is_error
            return result.structured_content

    together = await asyncio.gather(*(ask(q) for q in questions))
    # Greedy decoding: a reply mixed with another call's tokens would differ from its answer alone.
    assert [r["answer"] for r in together] == alone
    assert all(r["model"].endswith("/owner") for r in together), together


async def test_a_promoted_model_is_served_without_a_restart(
    http_url: str, persona_twin: Twin
) -> None:
    registry: ModelRegistry = persona_twin.models.registry
    async with connected(http_url) as client:
        first = await client.call_tool("ask_twin", {"question": "What's my dog called?"})
        current = registry.current()
        assert first.structured_content["model"] == f"{current.version}/owner"

        version = promote_a_copy(registry)

        second = await client.call_tool("ask_twin", {"question": "What's my dog called?"})
        assert second.structured_content["model"] == f"{version}/owner"
        status = json.loads((await client.read_resource("twin://status")).contents[0].text)
        assert status["model"]["version"] == version and status["model"]["healthy"]


async def test_tool_errors_come_back_as_errors_and_the_server_keeps_serving(
    http_url: str, persona_twin: Twin
) -> None:
    pointer = persona_twin.models.registry.root / "current.json"
    good = pointer.read_text()
    async with connected(http_url) as client:
        unknown = await client.call_tool("forget", {"memory_id": "m_does_not_exist"})
        assert unknown.is_error and "no memory with id 'm_does_not_exist'" in text_of(unknown)

        empty = await client.call_tool("ask_twin", {"question": "   "})
        assert empty.is_error and "needs a question" in text_of(empty)

        bad_k = await client.call_tool("search_memories", {"query": "paw", "k": 500})
        assert bad_k.is_error

        pointer.write_text("{broken")
        # a damaged registry is not a tool error: memory still answers, and says why
        damaged = await client.call_tool("ask_twin", {"question": "What's my dog called?"})
        assert not damaged.is_error and damaged.structured_content["model"] == "retrieval"
        problem = damaged.structured_content["model_problem"]
        assert "current.json is damaged" in problem and "twin models promote" in problem
        status = json.loads((await client.read_resource("twin://status")).contents[0].text)
        assert status["model"] is None and "current.json is damaged" in status["model_note"]
        pointer.write_text(good)

        fine = await client.call_tool("ask_twin", {"question": "What's my dog called?"})
        assert not fine.is_error and fine.structured_content["found"]


async def test_the_owner_may_preview_what_a_friend_is_told(
    http_url: str, persona_twin: Twin
) -> None:
    async with connected(http_url) as client:
        as_friend = await client.call_tool(
            "ask_twin", {"question": "Where is Iris interviewing?", "audience": "friend"}
        )
    content = as_friend.structured_content
    assert content["audience"] == "friend"
    assert visible_to_friend(persona_twin, [m["id"] for m in content["memories"]])
    assert not content["model"].endswith("/owner")
