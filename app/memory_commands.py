"""Commands on L0 memory: init, ingest, search, and `twin memory …`."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.common import TwinApp, app, audience_named, console, err, fail, open_memory, settings
from core.progress import progress_bar
from memory.models import Visibility
from memory.sources import IMPORTERS, DateOrder, ImportFormatError, NothingToImport, Skipped
from memory.sources import SkipReason as Skip
from twin.command_line import root_home
from twin.privacy import Audience

if TYPE_CHECKING:
    from memory.retrieve import SearchHit
    from twin.config import Settings
    from twin.ingest import ImportPlan, OwnerNotFound

memory_app = TwinApp(help="Inspect and manage L0 memory.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@app.command()
def init(
    owner: Annotated[
        str | None,
        typer.Option(
            help="Your name as it appears in your chats (required): how your own messages are "
            "recognised, and what your bio calls you."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing twin.toml.")] = False,
) -> None:
    """Create the twin's home with a commented twin.toml."""
    from twin.config import ConfigError, init_home, resolve_home

    if owner is None or not owner.strip():
        raise fail(
            'say who you are: twin init --owner "Your Name", with your name as it appears in '
            "your chats. It is how your own messages are recognised and what your bio calls "
            "you; other names and your platform ids go in twin.toml (owner.aliases, owner.ids)."
        )
    home = resolve_home(root_home())
    try:
        path = init_home(home, owner, force=force)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    console.print(f"Created [bold]{path}[/]. Edit it to add your platform ids, then `twin ingest`.")


class AmbiguousDates(StrEnum):
    """How to read a WhatsApp chat whose dates do not tell day from month."""

    DAY_FIRST = "day-first"
    MONTH_FIRST = "month-first"


# How many left-out paths `twin ingest` lists one by one before it only counts them.
SKIPPED_SHOWN = 20


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Exports, notes, or folders holding any of them.")
    ],
    fmt: Annotated[
        str,
        typer.Option("--format", help=f"auto, or one of: {', '.join(sorted(IMPORTERS))}."),
    ] = "auto",
    visibility: Annotated[
        Visibility | None,
        typer.Option(
            help="The widest these memories may be: narrows the per-source default and a "
            "note's own visibility, never widens them."
        ),
    ] = None,
    default_visibility: Annotated[
        Visibility | None,
        typer.Option(
            help="Visibility for memories that do not say their own, instead of twin.toml's "
            "per-source default. May widen it: say so only when you mean it."
        ),
    ] = None,
    whatsapp_dates: Annotated[
        AmbiguousDates | None,
        typer.Option(
            help="How to read a WhatsApp chat whose dates do not tell day from month "
            "\\[default: day-first, with a warning]."
        ),
    ] = None,
) -> None:
    """Import notes and chat exports into memory. Importing the same export again adds nothing.

    Each file is recognised by its content, also inside folders; what is left out of a folder
    (hidden, empty, too large, an unknown format) is listed after the table.
    """
    from twin.ingest import owner_unset, plan_import, store_parsed, unrecognised_owner

    s = settings()
    if fmt != "auto" and fmt not in IMPORTERS:
        raise fail(f"unknown format {fmt!r}; use auto or one of {', '.join(sorted(IMPORTERS))}")
    order = DateOrder(whatsapp_dates.value) if whatsapp_dates else None
    try:
        plan = plan_import(paths, s, fmt, order)
    except NothingToImport as exc:
        if len(exc.skipped) > 1:
            _print_skipped(exc.skipped, s)
        raise fail(f"{exc}\nNothing was imported.") from exc
    except ImportFormatError as exc:
        raise fail(f"{exc}\nNothing was imported.") from exc
    has_chats = any(item.format != "notes" for item in plan.parsed)
    if has_chats and owner_unset(s):
        raise fail(
            f"your name is not set (owner.name in {s.paths.config_file}), so none of your own "
            'messages in these chats would be recognised. Run twin init --owner "Your Name" '
            "(or set TWIN_OWNER__NAME), then import again.\nNothing was imported."
        )
    owner_missing = unrecognised_owner(plan.parsed, s.owner.identity())
    store = open_memory(s)
    table = Table("source", "format", "added", "unchanged", "removed", "forgotten")
    with store, progress_bar("Embedding") as progress:
        for item in plan.parsed:
            reports = store_parsed(
                store,
                item,
                s,
                ceiling=visibility,
                default_visibility=default_visibility,
                progress=progress,
            )
            for report in reports:
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
    _print_skipped(plan.skipped, s)
    _print_warnings(plan, owner_missing, s, dates_given=order is not None)


def _print_skipped(skipped: list[Skipped], s: Settings) -> None:
    """What was left out and why, one per line (only counted beyond the first few)."""
    if not skipped:
        return
    console.print(f"Left out {len(skipped)}:")
    for record in skipped[:SKIPPED_SHOWN]:
        console.print(f"  {record}", markup=False, highlight=False, soft_wrap=True)
    rest = skipped[SKIPPED_SHOWN:]
    if rest:
        counts = Counter(record.reason for record in rest)
        console.print(
            f"  … and {len(rest)} more: "
            + ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
        )
    if any(record.reason is Skip.TOO_LARGE for record in skipped):
        console.print(
            f"  To import larger files, raise memory.max_note_mb or memory.max_file_mb in "
            f"{s.paths.config_file} (0 = no limit)."
        )


def _print_warnings(
    plan: ImportPlan, owner_missing: list[OwnerNotFound], s: Settings, *, dates_given: bool
) -> None:
    for item in plan.parsed:
        for warning in item.warnings:
            err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
            if item.format == "whatsapp" and not dates_given:
                err.print(
                    "  If the phone writes the month first, those dates are wrong: give such a "
                    "chat --whatsapp-dates month-first on its first import (a later import "
                    "does not change memories already stored).",
                    highlight=False,
                )
    if not owner_missing:
        return
    for missing in owner_missing:
        err.print(f"[yellow]warning:[/] {missing}", highlight=False, soft_wrap=True)
    err.print(
        f"  If you wrote in {'that chat' if len(owner_missing) == 1 else 'these chats'}, tell "
        f"twin who you are there: owner.name, owner.aliases (other names) or owner.ids "
        f"(platform ids) in {s.paths.config_file}.",
        highlight=False,
    )


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
    from memory.retrieve import Retriever

    s = settings()
    who = audience_named(audience)
    flt = who.memory_filter(
        since=_utc(since),
        until=_utc(until),
        sources=tuple(source or ()),
        speakers=tuple(speaker or ()),
    )
    with open_memory(s) as store:
        retriever = Retriever(store, owner=s.owner.identity())
        hits = retriever.search(query, k=k, flt=flt, asker=who.asker)
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
        health = store.index_health()
        console.print(
            f"{store.count()} memories: "
            + ", ".join(f"{n} {v}" for v, n in counts.items())
            + f"; vector index holds {health.in_index}."
        )
        if not health.in_step:
            console.print(
                f"[yellow]The vector index is out of step with the database: {health.describe()}."
                " An import still running brings it in step itself; otherwise run"
                " `twin memory reindex`.[/]",
                highlight=False,
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
