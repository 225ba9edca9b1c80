"""The demo's last step: the twin as an agent sees it, through the MCP server.

Starts `python -m mcp_server --home HOME` over stdio with the official MCP client (as Claude
Desktop would), lists what it offers and asks one question per task: memory QA, context
enhance, context critic.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from mcp_server.schemas import Critique, EnhancedRequest, TwinAnswer

CALLS: tuple[tuple[str, dict[str, Any], type[BaseModel]], ...] = (
    ("ask_twin", {"question": "What happened to Biscuit's paw?"}, TwinAnswer),
    (
        "enhance_request",
        {
            "request": "Book me a dinner for two in Kyoto next spring.",
            "target": "a restaurant concierge",
        },
        EnhancedRequest,
    ),
    (
        "critique_reply",
        {
            "request": "Where should I go for my birthday dinner?",
            "reply": "Try the Brazilian steakhouse: great picanha, and a famous coriander salsa.",
        },
        Critique,
    ),
)


@dataclass(frozen=True)
class Exchange:
    """One tool call of the demo and what came back."""

    tool: str
    arguments: dict[str, Any]
    result: BaseModel


# The client passes the server only a few safe variables of its own environment; the twin runs
# offline, so it gets these too.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def server_parameters(home: Path) -> StdioServerParameters:
    """How an MCP client starts this twin's server over stdio."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", "--home", str(home)], env=OFFLINE
    )


async def ask_through_mcp(home: Path) -> tuple[list[str], list[Exchange]]:
    """The server's tool names, and one call per task, through the official client."""
    async with Client(server_parameters(home)) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        exchanges = []
        for tool, arguments, schema in CALLS:
            result = await client.call_tool(tool, arguments)
            if result.is_error:
                text = " ".join(getattr(c, "text", "") for c in result.content)
                raise RuntimeError(f"{tool} failed: {text}")
            exchanges.append(
                Exchange(tool, arguments, schema.model_validate(result.structured_content))
            )
        return tools, exchanges


def mcp_demo(home: Path, console: Console) -> list[Exchange]:
    """Ask the twin in `home` one question per task through its MCP server, and print it all."""
    tools, exchanges = asyncio.run(ask_through_mcp(home))
    console.print(f"Tools: {', '.join(tools)}")
    for exchange in exchanges:
        args = ", ".join(f"{k}={v!r}" for k, v in exchange.arguments.items())
        console.print(f"\n[bold]{exchange.tool}[/]({escape(args)})")
        _print_result(console, exchange.result)
    return exchanges


def _print_result(console: Console, result: BaseModel) -> None:
    lines: list[str] = []
    if isinstance(result, TwinAnswer):
        lines.append(f"answer: {result.answer}")
        lines.append(
            f"found: {result.found}, search similarity {result.search_similarity:.2f}, "
            f"{result.model}"
        )
    elif isinstance(result, EnhancedRequest):
        lines.append(f"rewritten: {result.request}")
        lines += [f"+ {fact}" for fact in result.added]
    elif isinstance(result, Critique):
        lines.append(f"verdict: {result.verdict or '(none given)'}")
        lines.append(f"feedback: {result.feedback}")
        lines += [f"checked: {fact}" for fact in result.checked]
    for line in lines:
        console.print(f"  {escape(line)}")
    if isinstance(result, TwinAnswer | EnhancedRequest | Critique):
        for memory in result.memories[:3]:
            console.print(
                f"  [dim]{escape(f'{memory.id} {memory.source}: {memory.snippet[:100]}')}[/]"
            )
