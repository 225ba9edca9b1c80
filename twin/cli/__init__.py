"""The `twin` command: one Typer app, its commands grouped by what they work on.

The faces register their own command groups: `twin serve` (the MCP server), `twin bot`
(Telegram and Discord), `twin train` and `twin models` (the L2 pipeline and registry).
"""

from bots.cli import bot_app
from mcp_server.cli import serve_app
from twin.cli import memory_commands, profile_commands, twin_commands
from twin.cli.common import app

app.add_typer(serve_app, name="serve", help="Serve the twin to other programs (MCP).")
app.add_typer(bot_app, name="bot", help="Let friends ask the twin on Telegram or Discord.")

__all__ = ["app", "memory_commands", "profile_commands", "twin_commands"]
