"""The `twin` command: one Typer app, its commands grouped by what they work on.

The faces bring their own command groups: `twin bot` (Telegram and Discord), `twin train` and
`twin models` (the L2 pipeline and registry); `twin serve` runs them together.
"""

from app import memory_commands, profile_commands, twin_commands
from app.common import app
from app.serve_commands import serve_app
from bots.commands import bot_app
from training.commands import models_app, train

app.add_typer(serve_app, name="serve")
app.add_typer(bot_app, name="bot", help="Let friends ask the twin on Telegram or Discord.")
app.command()(train)
app.add_typer(models_app, name="models")

__all__ = ["app", "memory_commands", "profile_commands", "twin_commands"]
