"""The `twin` Typer app and what every command shares: the home, settings, output, errors.

Every `twin` command pays for what the CLI modules import when they are loaded, `twin --help`
included: so these modules import the memory store, the models, the servers and the bots inside
the commands that use them, not at the top.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from memory.write_lock import StoreBusyError
from twin.command_line import command_settings, err, fail, set_root_home
from twin.privacy import Audience

if TYPE_CHECKING:
    from memory.store import MemoryStore
    from twin.config import Settings


class TwinApp(typer.Typer):
    """A Typer app whose commands report a memory store busy beyond its wait (another process
    writing for too long) as a clear error, not a traceback."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)

        def decorator(command: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(command)
            def run(*a: Any, **kw: Any) -> Any:
                try:
                    return command(*a, **kw)
                except StoreBusyError as exc:
                    raise fail(str(exc)) from exc

            register(run)
            return command

        return decorator


app = TwinApp(
    help="Twin: a personal AI twin. Your notes and chats become memory; a small model learns it.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

console = Console()


@app.callback()
def main(
    home: Annotated[
        Path | None,
        typer.Option(help="The twin's home directory \\[default: $TWIN_HOME or ./.twin]."),
    ] = None,
) -> None:
    set_root_home(home)


def settings() -> Settings:
    """The settings of the home this command runs on (a clear error if they are invalid)."""
    return command_settings()


def audience_named(text: str) -> Audience:
    """The audience an `--as` option names ("owner", "friend", "public", or a principal); a
    clear error (and exit 1) for anything else."""
    try:
        return Audience.parse(text)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def open_memory(s: Settings) -> MemoryStore:
    """The home's L0 store. What the store has to say while the command runs (waiting for
    another writer, an index repaired on open) is shown on stderr."""
    from twin.ingest import open_store

    show_memory_notices()
    try:
        return open_store(s)
    except RuntimeError as exc:  # a busy or newer database, a model that does not load
        raise fail(str(exc)) from exc


class _Notices(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        err.print(record.getMessage(), style="yellow", markup=False, highlight=False)


def show_memory_notices() -> None:
    """Print the memory layer's warnings on stderr, unless logging is configured already (as
    `twin serve` does), in which case they go wherever it sends them."""
    memory_log = logging.getLogger("memory")
    if logging.getLogger().hasHandlers() or any(
        isinstance(h, _Notices) for h in memory_log.handlers
    ):
        return
    handler = _Notices(logging.WARNING)
    memory_log.addHandler(handler)
