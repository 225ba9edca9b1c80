"""The twin's MCP prompts: templates an agent fills in with the owner's memory and L1."""

import asyncio
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from pydantic import Field

from mcp_server.access import current_audience
from mcp_server.profile import ProfileReader
from serving.service import Twin
from twin.tasks import CONTEXT_PROMPT_MEMORIES, context_prompt, introduction_prompt


def register_prompts(server: MCPServer, twin: Twin, read_profile: ProfileReader) -> None:
    """Add the twin's prompts to `server`; `read_profile` reads L1 for an audience."""
    owner = twin.owner

    @server.prompt(
        name="answer_with_my_context",
        title="Answer with my context",
        description=(
            f"Answer a question with {owner}'s relevant memories and bio put in front of it."
        ),
    )
    async def answer_with_my_context(
        question: Annotated[str, Field(description="The question to answer.")],
    ) -> list[UserMessage]:
        audience = current_audience()
        hits = await asyncio.to_thread(twin.search, question, audience, CONTEXT_PROMPT_MEMORIES)
        view = await asyncio.to_thread(read_profile, audience)
        bio = view.bio("global", "third") if view else ""
        return [UserMessage(context_prompt(owner, question, [h.memory for h in hits], bio))]

    @server.prompt(
        name="introduce_me",
        title="Introduce me",
        description=f"Write a short introduction of {owner} from their bio, topics and facts.",
    )
    async def introduce_me(
        to: Annotated[
            str, Field(description="Who the introduction is for, e.g. 'a new colleague'.")
        ] = "someone meeting them for the first time",
    ) -> list[UserMessage]:
        view = await asyncio.to_thread(read_profile, current_audience())
        return [UserMessage(introduction_prompt(owner, to, view))]
