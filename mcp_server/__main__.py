"""`python -m mcp_server --home DIR [--http]`: the same server as `twin --home DIR serve mcp`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcp_server.http import ServeError
from mcp_server.launch import HostOption, HttpOption, PortOption, run_mcp
from twin.config import ConfigError, load_settings

app = typer.Typer(add_completion=False)


@app.command()
def main(
    home: Annotated[
        Path | None,
        typer.Option(help="The twin's home directory (default: $TWIN_HOME, else ./.twin)."),
    ] = None,
    http: HttpOption = False,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Serve the twin over MCP (stdio by default)."""
    try:
        run_mcp(load_settings(home), http=http, host=host, port=port)
    except (ConfigError, ServeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    app()
