"""The MCP server as desktop agents run it: a subprocess over stdio, driven by the official client
and by the MCP Inspector CLI; and the demo's MCP step."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime

from mcp import Client
from rich.console import Console

from mcp_server.demo import OFFLINE, mcp_demo, server_parameters
from mcp_server.schemas import Critique, EnhancedRequest, TwinAnswer
from mcp_server.tools import OWNER_ONLY
from serving.service import Twin
from twin.privacy import Audience
from twin.tasks import nothing_found

TOOLS = {"ask_twin", "search_memories", *OWNER_ONLY}
RESOURCES = {"twin://bio", "twin://topics", "twin://facts", "twin://status"}
# Pinned so the check is the same everywhere; `npx -y` fetches it from the npm registry once.
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


async def test_a_stdio_client_lists_reads_and_calls_everything(persona_twin: Twin) -> None:
    home = persona_twin.settings.home
    store = persona_twin.store
    async with Client(server_parameters(home)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description and tool.output_schema["type"] == "object", tool.name
            assert tool.annotations is not None and tool.annotations.open_world_hint is False
        for name in ("ask_twin", "search_memories", "enhance_request", "critique_reply"):
            assert tools[name].annotations.read_only_hint, name
        assert tools["forget"].annotations.destructive_hint
        assert not tools["forget"].annotations.read_only_hint
        assert not tools["remember"].annotations.destructive_hint
        assert not tools["remember"].annotations.idempotent_hint
        assert {"answer", "found", "search_similarity", "memories"} <= set(
            tools["ask_twin"].output_schema["properties"]
        )

        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert resources == RESOURCES
        status = json.loads((await client.read_resource("twin://status")).contents[0].text)
        assert status["model"]["version"] == persona_twin.models.registry.current_version()
        assert status["memories"]["total"] == store.count()
        assert sum(status["memories"]["by_visibility"].values()) == store.count()
        assert status["next_training"] is None and status["next_training_note"]
        bio = (await client.read_resource("twin://bio")).contents[0].text
        assert bio.startswith("# Iris Calder") and "not been built" in bio
        for uri in ("twin://topics", "twin://facts"):
            assert json.loads((await client.read_resource(uri)).contents[0].text)["built"] is False

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"answer_with_my_context", "introduce_me"}
        context = await client.get_prompt("answer_with_my_context", {"question": "Biscuit's paw"})
        assert "paw" in context.messages[0].content.text.lower()
        intro = await client.get_prompt("introduce_me", {"to": "a new colleague"})
        assert "Iris Calder" in intro.messages[0].content.text

        answer = await client.call_tool("ask_twin", {"question": "What happened to Biscuit's paw?"})
        assert not answer.is_error
        # Older clients read the text block: it carries the same JSON.
        assert json.loads(answer.content[0].text) == answer.structured_content
        qa = TwinAnswer.model_validate(answer.structured_content)
        assert qa.found and qa.model.endswith("/owner") and 0 < qa.search_similarity <= 1
        assert any("paw" in m.snippet.lower() for m in qa.memories)

        nothing = await client.call_tool("ask_twin", {"question": "What is qwertyuiop zxcvbnm?"})
        assert nothing.structured_content["found"] is False
        assert nothing.structured_content["answer"] == nothing_found(Audience.owner().kind)

        enhanced = await client.call_tool(
            "enhance_request", {"request": "Book me a dinner in Kyoto", "target": "a concierge"}
        )
        assert EnhancedRequest.model_validate(enhanced.structured_content).memories
        judged = await client.call_tool(
            "critique_reply", {"request": "Birthday dinner?", "reply": "A steakhouse."}
        )
        assert Critique.model_validate(judged.structured_content).model.endswith("/owner")

        since = "2026-08-01T00:00:00Z"
        found = await client.call_tool(
            "search_memories", {"query": "Biscuit", "k": 5, "source": "whatsapp", "since": since}
        )
        hits = found.structured_content["memories"]
        assert hits and all(h["source"].startswith("WhatsApp") for h in hits)
        assert all(
            datetime.fromisoformat(h["when"]) >= datetime(2026, 8, 1, tzinfo=UTC) for h in hits
        )

        stored = await client.call_tool("remember", {"text": "The spare key is with Inês."})
        memory_id = stored.structured_content["id"]
        assert stored.structured_content["visibility"] == "private"
        assert (await client.call_tool("forget", {"memory_id": memory_id})).structured_content[
            "forgotten"
        ]
        twice = await client.call_tool("forget", {"memory_id": memory_id})
        assert twice.is_error and "no memory with id" in twice.content[0].text
        # Remembering it again is the owner's explicit choice: a new memory.
        anew = await client.call_tool("remember", {"text": "The spare key is with Inês."})
        assert anew.structured_content["stored"] is True
        assert anew.structured_content["id"] != memory_id

        after = await client.call_tool("search_memories", {"query": "sourdough starter"})
        assert not after.is_error and after.structured_content["count"] > 0


def test_the_mcp_inspector_cli_lists_the_tools(persona_twin: Twin) -> None:
    npx = shutil.which("npx")
    assert npx, "the MCP Inspector check needs Node.js (npx)"
    server = [sys.executable, "-m", "mcp_server", "--home", str(persona_twin.settings.home)]
    env_args = [arg for key, value in OFFLINE.items() for arg in ("-e", f"{key}={value}")]
    done = subprocess.run(
        [npx, "-y", INSPECTOR, "--cli", *env_args, *server, "--method", "tools/list", "--strict"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert {t["name"] for t in json.loads(done.stdout)["tools"]} == TOOLS


def test_the_demo_asks_one_question_per_task_over_mcp(persona_twin: Twin) -> None:
    console = Console(record=True, width=120)
    exchanges = mcp_demo(persona_twin.settings.home, console)
    assert [e.tool for e in exchanges] == ["ask_twin", "enhance_request", "critique_reply"]
    assert [type(e.result) for e in exchanges] == [TwinAnswer, EnhancedRequest, Critique]
    assert exchanges[0].result.found
    shown = console.export_text()
    assert "Tools: ask_twin, enhance_request, critique_reply, search_memories" in shown
    assert "verdict:" in shown and "answer:" in shown
