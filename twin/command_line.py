"""What every command-line entry point shares: errors on stderr, and the settings of the home.

`twin`'s own commands, `twin train`/`twin models` (training) and the bots' commands all find
their home and report errors here, so they behave alike whether run under `twin` or alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from twin.config import Settings

err = Console(stderr=True)


class _Root:
    """The `--home` the root command was given in this invocation (None: not given)."""

    home: Path | None = None


_root = _Root()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error; raise the returned Exit to stop with `code`."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def set_root_home(home: Path | None) -> None:
    """Called by the root command (`twin --home H …`) before any subcommand runs."""
    _root.home = home


def root_home() -> Path | None:
    """The home the root command's `--home` names, if any."""
    return _root.home


def command_settings(home: Path | None = None) -> Settings:
    """The settings of `home`, else of the root's `--home`, else $TWIN_HOME or ./.twin; a clear
    error (and exit 1) when they are invalid."""
    from twin.config import ConfigError, load_settings

    try:
        return load_settings(home or root_home())
    except ConfigError as exc:
        raise fail(str(exc)) from exc
