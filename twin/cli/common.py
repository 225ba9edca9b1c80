"""The `twin` Typer app and what every command shares: the home, settings, output, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from memory.store import MemoryStore
from twin.config import ConfigError, Settings, load_settings
from twin.ingest import open_store

app = typer.Typer(
    help="Twin: a personal AI twin. Your notes and chats become memory; a small model learns it.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

console = Console()
err = Console(stderr=True)


class State:
    home: Path | None = None


state = State()


@app.callback()
def main(
    home: Annotated[
        Path | None,
        typer.Option(help="The twin's home directory \\[default: $TWIN_HOME or ./.twin]."),
    ] = None,
) -> None:
    state.home = home


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error; raise the returned Exit to stop with `code`."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def settings() -> Settings:
    """The settings of the home this command runs on (a clear error if they are invalid)."""
    try:
        return load_settings(state.home)
    except ConfigError as exc:
        raise fail(str(exc)) from exc


def open_memory(s: Settings) -> MemoryStore:
    try:
        return open_store(s)
    except RuntimeError as exc:
        raise fail(str(exc)) from exc
