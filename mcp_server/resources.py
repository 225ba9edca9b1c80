"""The twin's MCP resources: L1 memory (bio, topics, facts) and the twin's status."""

import asyncio

from mcp.server.mcpserver import MCPServer

from mcp_server.access import current_audience
from mcp_server.profile import ProfileReader, bio_markdown, facts_of, topics_of
from mcp_server.status import twin_status
from serving.service import Twin


def register_resources(server: MCPServer, twin: Twin, read_profile: ProfileReader) -> None:
    """Add the twin's resources to `server`; `read_profile` reads L1 for an audience."""
    owner = twin.owner

    @server.resource(
        "twin://bio",
        name="bio",
        title=f"{owner}'s bio",
        description=f"Who {owner} is and what they have been up to lately (L1 memory).",
        mime_type="text/markdown",
    )
    async def bio() -> str:
        audience = current_audience()
        return bio_markdown(owner, await asyncio.to_thread(read_profile, audience))

    @server.resource(
        "twin://topics",
        name="topics",
        title=f"{owner}'s topics",
        description=f"The topics {owner}'s memories cluster into, with keywords and time span.",
        mime_type="application/json",
    )
    async def topics() -> str:
        audience = current_audience()
        return topics_of(await asyncio.to_thread(read_profile, audience)).model_dump_json(indent=2)

    @server.resource(
        "twin://facts",
        name="facts",
        title=f"Facts about {owner}",
        description=f"Facts about {owner} drawn from memory, each with the memories behind it.",
        mime_type="application/json",
    )
    async def facts() -> str:
        audience = current_audience()
        return facts_of(await asyncio.to_thread(read_profile, audience)).model_dump_json(indent=2)

    @server.resource(
        "twin://status",
        name="status",
        title="Twin status",
        description=(
            "The model answering now (version, age, metrics), memory counts, the last training "
            "and the next scheduled one."
        ),
        mime_type="application/json",
    )
    async def status() -> str:
        audience = current_audience()
        report = await asyncio.to_thread(twin_status, twin, audience)
        return report.model_dump_json(indent=2)
