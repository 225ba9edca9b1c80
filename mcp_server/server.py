"""The twin as an MCP server: tools, resources and prompts over one `Twin`.

A thin layer: every tool calls the Twin service (which does retrieval, privacy, the model and the
output guard) for the audience of whoever is calling (`mcp_server.access`). The tools are in
`mcp_server.tools`, the resources in `mcp_server.resources`, the prompts in `mcp_server.prompts`;
this module puts them on one server with the instructions an agent reads first.
"""

from importlib.metadata import PackageNotFoundError, version

from mcp.server.mcpserver import MCPServer

from mcp_server.access import AudienceMiddleware, Transport
from mcp_server.profile import ProfileReader, stored_profile
from mcp_server.prompts import register_prompts
from mcp_server.resources import register_resources
from mcp_server.tools import OWNER_ONLY, register_tools
from serving.service import Twin


def _package_version() -> str:
    try:
        return version("twin")
    except PackageNotFoundError:
        return "0"


def build_server(
    twin: Twin, transport: Transport = "stdio", profile: ProfileReader | None = None
) -> MCPServer:
    """An MCP server over `twin`. `transport` decides who callers are: over stdio the owner,
    over HTTP whoever the bearer token names (see `mcp_server.access`). `profile` reads L1
    (default: the profile built in the twin's store)."""
    owner = twin.owner
    read_profile = profile or stored_profile(twin.store, owner)
    server: MCPServer = MCPServer(
        name="twin",
        title=f"{owner}'s twin",
        version=_package_version(),
        instructions=(
            f"This is the personal AI twin of {owner}: it answers from {owner}'s own notes and "
            f"chats (their memory) and speaks from {owner}'s perspective. Ask it what only "
            f"{owner}'s memory knows: their plans, preferences, history, people, constraints. "
            "ask_twin answers a question; search_memories returns the raw memories; "
            f"enhance_request adds {owner}'s context to a request before you send it to another "
            f"agent or expert; critique_reply checks another agent's answer against {owner}'s "
            "situation. When a tool says memory holds nothing on a question, do not guess."
        ),
        middleware=[AudienceMiddleware(transport, OWNER_ONLY)],
        log_level="WARNING",
    )
    register_tools(server, twin)
    register_resources(server, twin, read_profile)
    register_prompts(server, twin, read_profile)
    return server
