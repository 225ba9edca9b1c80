"""`twin profile …`: L1 memory, the bio, topics and facts."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.common import app, audience_named, console, fail, open_memory, settings
from core.progress import stage_progress

if TYPE_CHECKING:
    from memory.profile import ProfileView

profile_app = typer.Typer(
    help="L1 memory: a bio, topics and facts built from your memories.", no_args_is_help=True
)
app.add_typer(profile_app, name="profile")


@profile_app.command("build")
def profile_build(
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild everything, not only what changed.")
    ] = False,
) -> None:
    """Build the bio, topics and facts from memory (incrementally: only what is new)."""
    from lm.base import LLMError
    from memory.profile import ProfileBuildConflict
    from twin.config import ConfigError
    from twin.profile_writers import profile_builder

    s = settings()
    with open_memory(s) as store:
        try:
            builder = profile_builder(store, s)
        except ConfigError as exc:
            raise fail(str(exc)) from exc
        with stage_progress() as progress:
            try:
                report = builder.build(full=full, progress=progress)
            except (LLMError, ProfileBuildConflict) as exc:
                raise fail(f"{exc}\nThe previous profile is unchanged.") from exc
    table = Table("scope", "memories", "new", "joined a topic", "new topics", "renamed", "topics")
    for scope in report.scopes:
        table.add_row(
            str(scope.scope),
            str(scope.memories),
            str(scope.new_memories),
            str(scope.assigned),
            str(scope.new_topics),
            str(scope.relabelled),
            str(scope.topics),
        )
    console.print(table)
    console.print(
        f"{report.mode.capitalize()} build {report.build_id} in {report.seconds:.1f} s with "
        f"{builder.extractor.name} / {builder.namer.name} / {builder.bio_writer.name}: read "
        f"{report.fact_memories} of your memories for facts, {report.facts_added} new, "
        f"{report.facts_merged} confirmed again, {report.facts_superseded} superseded, "
        f"{report.facts_removed} removed; {report.facts_total} facts in all. "
        "See them with `twin profile show`."
    )


@profile_app.command("show")
def profile_show(
    audience: Annotated[
        str, typer.Option("--as", help="Show what the owner, a friend or the public sees.")
    ] = "owner",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Print the bio, topics and facts, each fact with the memories it comes from."""
    from memory.profile import Profile

    s = settings()
    who = audience_named(audience)
    with open_memory(s) as store:
        view = Profile(store, s.owner.name).for_audience(who.visibilities)
    if as_json:
        sys.stdout.write(json.dumps(view.to_json(), ensure_ascii=False, indent=2) + "\n")
        return
    print_profile(view, who.kind)


def print_profile(view: ProfileView, audience: str) -> None:
    """The profile as readable text; everything that comes from memory is escaped, so a
    "[photo]" in a message is printed rather than read as markup."""
    from memory.profile.fact_patterns import LIMITS as OFFLINE_FACT_LIMITS
    from memory.profile.fact_patterns import PatternFactExtractor

    if view.build_id is None:
        console.print("[dim]No profile has been built yet: run `twin profile build`.[/]")
        return
    built = view.built_at.strftime("%Y-%m-%d %H:%M") if view.built_at else "?"
    console.print(f"[bold]Profile as {audience} sees it[/] (scope {view.scope}, built {built})")
    for bio in view.bios:
        title = f"{bio.kind} bio, {bio.person} person"
        note = (
            " [yellow](assembled offline: the stored bio relied on something since forgotten; "
            "`twin profile build` rewrites it)[/]"
            if bio.fallback
            else f" [dim]({escape(bio.writer)})[/]"
        )
        console.print(f"\n[bold]{title.capitalize()}[/]{note}\n{escape(bio.text)}")
    topics = Table("topic", "keywords", "size", "from", "to", title="Topics", title_justify="left")
    for t in view.topics:
        label = escape(t.label) + (" [yellow](stale)[/]" if t.stale else "")
        if t.description:
            label += f"\n[dim]{escape(t.description)}[/]"
        topics.add_row(
            label,
            escape(", ".join(t.keywords)),
            str(t.size),
            t.first.date().isoformat() if t.first else "",
            t.last.date().isoformat() if t.last else "",
        )
    console.print()
    console.print(topics)
    facts = Table(
        "#",
        "fact",
        "attribute",
        "visibility",
        "status",
        "from",
        title="Facts",
        title_justify="left",
    )
    for f in view.facts:
        status = f"superseded by #{f.superseded_by}" if f.superseded_by else f.status
        sources = [f"[dim]{m.id}[/] {escape(m.snippet(70))}" for m in f.sources[:2]]
        if len(f.sources) > 2:
            sources.append(f"[dim]… and {len(f.sources) - 2} more[/]")
        facts.add_row(
            str(f.id),
            escape(f.statement),
            escape(f.attribute),
            str(f.visibility),
            status,
            "\n".join(sources),
        )
    console.print(facts)
    if any(f.extractor == PatternFactExtractor.name for f in view.facts):
        console.print(f"[dim]{escape(OFFLINE_FACT_LIMITS)}[/]")
