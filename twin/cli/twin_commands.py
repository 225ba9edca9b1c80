"""Commands on the whole twin: asking it, and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memory.sources import ImportFormatError
from twin.cli.common import app, console, fail
from twin.config import ConfigError


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="Where to build the demo twin.")] = Path(".twin-demo"),
) -> None:
    """Run the whole product on the bundled sample persona, offline."""
    from twin.demo import run_demo

    try:
        run_demo(home, console=console)
    except (FileExistsError, ImportFormatError, ConfigError) as exc:
        raise fail(str(exc)) from exc
