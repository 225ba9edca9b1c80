"""`twin serve mcp`: the twin as an MCP server, over stdio (default) or streamable HTTP.

`serve_app` is registered in the main `twin` app (which handles `--home`); `python -m
mcp_server --home DIR` runs the same server through `run_mcp`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mcp_server.http import PATH, ServeError, check_http, serve_http
from mcp_server.server import build_server
from twin.config import Settings
from twin.service import open_twin

serve_app = typer.Typer(no_args_is_help=True)


@serve_app.callback()
def serve() -> None:
    """Serve the twin to other programs."""


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


@serve_app.command("mcp")
def mcp(http: HttpOption = False, host: HostOption = None, port: PortOption = None) -> None:
    """Serve the twin over MCP: stdio for desktop agents, or streamable HTTP with --http."""
    from rich.markup import escape

    from twin.cli.common import fail, settings

    try:
        run_mcp(settings(), http=http, host=host, port=port)
    except ServeError as exc:
        raise fail(escape(str(exc))) from exc
