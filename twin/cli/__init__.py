"""The `twin` command: one Typer app, its commands grouped by what they work on.

The faces bring their own command groups: `twin bot` (Telegram and Discord), `twin train` and
`twin models` (the L2 pipeline and registry); `twin serve` runs them together.
"""

from bots.cli import bot_app
from training.cli import models_app, train
from twin.cli import memory_commands, profile_commands, twin_commands
from twin.cli.common import app
from twin.cli.serve_commands import serve_app

app.add_typer(serve_app, name="serve")
app.add_typer(bot_app, name="bot", help="Let friends ask the twin on Telegram or Discord.")
app.command()(train)
app.add_typer(models_app, name="models")

__all__ = ["app", "memory_commands", "profile_commands", "twin_commands"]
