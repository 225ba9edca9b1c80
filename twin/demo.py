"""The demo: the whole product on the bundled sample persona, offline, start to finish."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from memory.profile import Profile, ProfileBuilder
from memory.retrieve import Retriever, SearchHit
from memory.store import MemoryStore
from twin.config import load_settings
from twin.ingest import open_store, parse_paths, store_parsed
from twin.privacy import Audience

PERSONA = Path(__file__).resolve().parents[1] / "examples" / "persona"
MARKER = ".twin-demo"

SEARCHES = [
    ("owner", "What happened with Biscuit's paw?"),
    ("owner", "Where am I interviewing?"),
    ("friend", "Where am I interviewing?"),
    ("friend", "What did Tomás say about climbing at Vertigo?"),
]


def prepare_home(home: Path, persona: Path) -> None:
    """A fresh demo home with the persona's twin.toml. Refuses to wipe a folder the demo did
    not create, so pointing the demo at a real twin's home cannot destroy it."""
    if home.exists():
        if not (home / MARKER).exists():
            raise FileExistsError(f"{home} exists and is not a demo home; choose another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("created by `twin demo`; deleted by the next demo run\n")
    shutil.copy(persona / "twin.toml", home / "twin.toml")


def run_demo(home: Path, persona: Path = PERSONA, console: Console | None = None) -> None:
    """Ingest the sample persona and show what the twin can do with it."""
    console = console or Console()
    prepare_home(home, persona)
    settings = load_settings(home)
    console.print(Rule(f"Twin demo: {settings.owner.name}, from {persona}"))

    console.print(Rule("1. Ingest notes and chat exports into L0 memory", style="dim"))
    paths = sorted(p for p in persona.iterdir() if p.is_dir())
    parsed = parse_paths([p for sub in paths for p in sorted(_inputs(sub))], settings)
    with open_store(settings) as store:
        table = Table("format", "sources", "memories added")
        for item in parsed:
            reports = store_parsed(store, item, settings)
            table.add_row(item.format, str(len(reports)), str(sum(r.added for r in reports)))
        console.print(table)
        again = sum(r.added for item in parsed for r in store_parsed(store, item, settings))
        console.print(f"Importing everything a second time adds {again} memories.")

        console.print(
            Rule("2. Search memory: hybrid lexical + semantic, filtered by audience", style="dim")
        )
        retriever = Retriever(store)
        for audience, query in SEARCHES:
            hits = retriever.search(query, k=3, flt=Audience.parse(audience).memory_filter())
            console.print(f"[bold]{audience}[/] asks: {query}")
            _print_hits(console, hits)

        console.print(Rule("3. Build L1: bio, topics, facts", style="dim"))
        _build_profile(console, store, settings.owner.name)


def _build_profile(console: Console, store: MemoryStore, owner: str) -> None:
    """Build L1 offline and show what a friend would see of it."""
    report = ProfileBuilder(store, owner).build()
    topics = {str(s.scope): s.topics for s in report.scopes}
    console.print(
        f"{report.facts_total} facts, {topics['owner']} topics for the owner and "
        f"{topics['friends']} for friends, in {report.seconds:.1f} s (offline)."
    )
    view = Profile(store, owner).for_audience(Audience.friend().visibilities)
    console.print(f"[bold]friend[/] sees this bio: {escape(view.bio('global', 'third'))}")
    for fact in view.facts[:3]:
        sources = len(fact.sources)
        console.print(
            f"   [dim]{fact.visibility:8}[/] {escape(fact.statement)} "
            f"[dim](from {sources} {'memory' if sources == 1 else 'memories'})[/]"
        )


def _inputs(folder: Path) -> list[Path]:
    """The importable things in one of the persona's folders: the folder itself for notes,
    else each export file in it."""
    if folder.name == "notes":
        return [folder]
    return [p for p in folder.iterdir() if p.is_file()]


def _print_hits(console: Console, hits: list[SearchHit]) -> None:
    if not hits:
        console.print("   [dim](nothing this audience may see)[/]")
    for hit in hits:
        m = hit.memory
        when = m.timestamp.date().isoformat() if m.timestamp else ""
        who = m.author or "note"
        console.print(f"   [dim]{when} {m.visibility:8}[/] [cyan]{who}[/] {m.snippet(110)}")
