"""Starting the twin's MCP server, over stdio (default) or streamable HTTP: `run_mcp` and its
options, shared by `twin serve mcp` and `python -m mcp_server --home DIR`. The server and the
twin are imported when the server starts: every `twin` command loads this module.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from twin.config import Settings

HttpOption = Annotated[
    bool,
    typer.Option(
        "--http",
        help="Serve streamable HTTP instead of stdio. Clients send 'Authorization: Bearer "
        "<token>': the owner's mcp.token, or a friend's (friends see what friends may see).",
    ),
]
HostOption = Annotated[
    str | None,
    typer.Option(help="Address to listen on (default: mcp.host in twin.toml, 127.0.0.1)."),
]
PortOption = Annotated[
    int | None, typer.Option(help="Port to listen on (default: mcp.port in twin.toml, 8765).")
]


def run_mcp(
    settings: Settings, *, http: bool = False, host: str | None = None, port: int | None = None
) -> None:
    """Open the twin and serve it over MCP until the client leaves (stdio) or Ctrl-C (HTTP).

    Over stdio the client is the owner; stdout carries the protocol, so messages go to stderr.
    """
    from mcp_server.http import PATH, check_http, serve_http
    from mcp_server.server import build_server
    from serving.service import open_twin

    host = host or settings.mcp.host
    port = port or settings.mcp.port
    if http:
        check_http(settings.mcp, host)
    twin = open_twin(settings)
    try:
        if http:
            server = build_server(twin, "http")
            print(
                f"Serving {twin.owner}'s twin over MCP at http://{host}:{port}{PATH} "
                "(Authorization: Bearer <token>)",
                file=sys.stderr,
            )
            serve_http(server, settings.mcp, host, port)
        else:
            build_server(twin, "stdio").run("stdio")
    finally:
        twin.models.close()
        twin.store.close()
