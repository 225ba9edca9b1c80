"""Commands on L0 memory: init, ingest, search, and `twin memory …`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from memory.models import Visibility
from memory.retrieve import Retriever, SearchHit
from memory.sources import IMPORTERS, ImportFormatError
from twin.cli.common import app, console, err, fail, open_memory, settings, state
from twin.config import ConfigError, init_home, resolve_home
from twin.ingest import parse_paths, store_parsed
from twin.privacy import Audience
from twin.progress import progress_bar

memory_app = typer.Typer(help="Inspect and manage L0 memory.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@app.command()
def init(
    owner: Annotated[str, typer.Option(help="Your name, as it appears in your chats.")] = "Me",
    force: Annotated[bool, typer.Option(help="Overwrite an existing twin.toml.")] = False,
) -> None:
    """Create the twin's home with a commented twin.toml."""
    home = resolve_home(state.home)
    try:
        path = init_home(home, owner, force=force)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    console.print(f"Created [bold]{path}[/]. Edit it to add your platform ids, then `twin ingest`.")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Exports or note folders to import.")],
    fmt: Annotated[
        str,
        typer.Option("--format", help=f"auto, or one of: {', '.join(sorted(IMPORTERS))}."),
    ] = "auto",
    visibility: Annotated[
        Visibility | None,
        typer.Option(help="Who may see these memories \\[default: per source, from twin.toml]."),
    ] = None,
) -> None:
    """Import notes and chat exports into memory. Importing the same export again adds nothing."""
    s = settings()
    if fmt != "auto" and fmt not in IMPORTERS:
        raise fail(f"unknown format {fmt!r}; use auto or one of {', '.join(sorted(IMPORTERS))}")
    try:
        parsed = parse_paths(paths, s, fmt)
    except ImportFormatError as exc:
        raise fail(f"{exc}\nNothing was imported.") from exc
    store = open_memory(s)
    table = Table("source", "format", "added", "unchanged", "removed", "forgotten")
    with store, progress_bar("Embedding") as progress:
        for item in parsed:
            for report in store_parsed(store, item, s, visibility, progress):
                name = store.source_name(report.source_key)
                table.add_row(
                    name,
                    item.format,
                    str(report.added),
                    str(report.unchanged),
                    str(report.removed),
                    str(report.blocked),
                )
    console.print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many memories to show.")] = 10,
    audience: Annotated[
        str, typer.Option("--as", help="Search as owner, friend or public.")
    ] = "owner",
    since: Annotated[datetime | None, typer.Option(help="Only memories from this date on.")] = None,
    until: Annotated[datetime | None, typer.Option(help="Only memories before this date.")] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="Only this source (key or prefix, e.g. telegram).")
    ] = None,
    speaker: Annotated[list[str] | None, typer.Option(help="Only messages by this person.")] = None,
) -> None:
    """Search memory (hybrid lexical + semantic) and print the best matches."""
    s = settings()
    try:
        who = Audience.parse(audience)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    flt = who.memory_filter(
        since=_utc(since),
        until=_utc(until),
        sources=tuple(source or ()),
        speakers=tuple(speaker or ()),
    )
    with open_memory(s) as store:
        hits = Retriever(store).search(query, k=k, flt=flt)
        print_hits(hits)


def print_hits(hits: list[SearchHit]) -> None:
    if not hits:
        console.print("[dim]No memories match.[/]")
        return
    table = Table("#", "when", "who", "source", "memory", "id", show_lines=False)
    for rank, hit in enumerate(hits, 1):
        m = hit.memory
        when = m.timestamp.strftime("%Y-%m-%d %H:%M") if m.timestamp else ""
        table.add_row(
            str(rank), when, m.author or "", m.source_name, m.snippet(120), f"[dim]{m.id}[/]"
        )
    console.print(table)


@memory_app.command("stats")
def memory_stats() -> None:
    """How many memories there are, per source and visibility."""
    s = settings()
    with open_memory(s) as store:
        table = Table("source", "memories")
        for ref, n in store.sources():
            table.add_row(ref.name, str(n))
        console.print(table)
        counts = {
            v: store.count(Audience.owner().memory_filter(visibilities=(v,))) for v in Visibility
        }
        console.print(
            f"{store.count()} memories: "
            + ", ".join(f"{n} {v}" for v, n in counts.items())
            + f"; vector index holds {store.index.count()}."
        )


@memory_app.command("forget")
def memory_forget(
    ids: Annotated[list[str] | None, typer.Argument(help="Memory ids to forget.")] = None,
    query: Annotated[
        str | None, typer.Option(help="Forget every memory whose text contains this phrase.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Forget a whole source (key or prefix, e.g. whatsapp:Sam).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget memories everywhere (database, search index, future training) for good."""
    if not (ids or query or source):
        raise fail("say what to forget: memory ids, --query PHRASE or --source KEY")
    s = settings()
    with open_memory(s) as store:
        targets = store.get_many(list(ids or []))
        if ids and len(targets) < len(ids):
            missing = sorted(set(ids) - {m.id for m in targets})
            raise fail(f"no memory with id {', '.join(missing)}")
        if query:
            targets += store.find_text(query)
        if source:
            targets += store.get_many(store.source_memory_ids(source))
        targets = list({m.id: m for m in targets}.values())
        if not targets:
            console.print("Nothing matches; nothing was forgotten.")
            return
        for m in targets[:20]:
            console.print(f"  [dim]{m.id}[/] {m.source_name}: {m.snippet(100)}")
        if len(targets) > 20:
            console.print(f"  … and {len(targets) - 20} more")
        if not yes and not typer.confirm(f"Forget these {len(targets)} memories for good?"):
            raise typer.Exit(1)
        forgotten = store.forget([m.id for m in targets], reason="twin memory forget")
    console.print(
        f"Forgot {len(forgotten)} memories; they will not be imported or trained on again."
    )


@memory_app.command("export")
def memory_export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write \\[default: stdout].")
    ] = None,
) -> None:
    """Write every memory as JSON Lines, with all its fields."""
    s = settings()
    with open_memory(s) as store:
        if output is None:
            n = store.export_jsonl(sys.stdout)
        else:
            tmp = output.with_name(output.name + ".part")
            with tmp.open("w", encoding="utf-8") as out:
                n = store.export_jsonl(out)
            tmp.replace(output)
    err.print(f"Exported {n} memories.")


@memory_app.command("reindex")
def memory_reindex(
    re_embed: Annotated[
        bool, typer.Option(help="Compute embeddings again instead of reusing the stored ones.")
    ] = False,
) -> None:
    """Rebuild the vector index from the database."""
    s = settings()
    with open_memory(s) as store, progress_bar("Indexing") as progress:
        n = store.reindex(re_embed=re_embed, progress=progress)
    console.print(f"Indexed {n} memories.")


def _utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)
