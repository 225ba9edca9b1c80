"""The demo: the whole product on the bundled sample persona, offline, start to finish.

Ingest the persona's notes and chats (L0), search them, build the profile (L1), fine-tune the
packaged SmolLM2 base into the twin (L2), ask it questions as the owner and as a friend, and
end as an agent would: three tasks through the MCP server with the official client. It lives
with the CLI because it is the one place that drives every layer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from mcp_server.demo import mcp_demo
from memory.profile import Profile, ProfileBuilder
from memory.retrieve import Retriever, SearchHit
from memory.store import MemoryStore
from serving.service import open_twin
from training.commands import print_result, stage_bars
from training.evaluate import Asker, PersonaQuestion, load_questions
from training.pipeline import TrainingRun
from training.recipe import RunOptions
from twin.config import Settings, load_settings
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


def demo_questions(persona: Path, per_group: int = 2) -> list[PersonaQuestion]:
    """The first `per_group` questions of each kind in the persona's questions.jsonl: the owner
    asking, a friend asking, a friend asking what is private."""
    path = persona / "questions.jsonl"
    if not path.is_file():
        return []
    groups: dict[tuple[Asker, bool], list[PersonaQuestion]] = {}
    for q in load_questions(path):
        groups.setdefault((q.asker, q.private), []).append(q)
    wanted = [(Asker.OWNER, False), (Asker.FRIEND, False), (Asker.FRIEND, True)]
    return [q for key in wanted for q in groups.get(key, [])[:per_group]]


def run_demo(
    home: Path, persona: Path = PERSONA, console: Console | None = None, quick: bool = False
) -> None:
    """Ingest the sample persona, train its twin and show what the twin can do with it.
    `quick` makes the training a smoke run (it answers, but has barely trained)."""
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
        retriever = Retriever(store, owner=settings.owner.identity())
        for audience, query in SEARCHES:
            who = Audience.parse(audience)
            hits = retriever.search(query, k=3, flt=who.memory_filter(), asker=who.asker)
            console.print(f"[bold]{audience}[/] asks: {query}")
            _print_hits(console, hits)

        console.print(Rule("3. Build L1: bio, topics, facts", style="dim"))
        _build_profile(console, store, settings.owner.name)

        console.print(Rule("4. Train the twin (L2): synthesize, SFT, DPO, GGUF", style="dim"))
        _train(console, settings, store, quick)

        console.print(Rule("5. Ask the twin, as the owner and as a friend", style="dim"))
        _ask(console, settings, store, demo_questions(persona))

    console.print(Rule("6. The twin over MCP: what an agent like Claude sees", style="dim"))
    mcp_demo(home, console)
    console.print(Rule(f"Done. The demo twin lives in {home}", style="dim"))


def _train(console: Console, settings: Settings, store: MemoryStore, quick: bool) -> None:
    options = RunOptions.from_settings(settings.training, fast=quick)
    with stage_bars(console) as reporter:
        result = TrainingRun.create(settings, store, options, reporter=reporter).run()
    print_result(result, console)


def _ask(
    console: Console, settings: Settings, store: MemoryStore, questions: list[PersonaQuestion]
) -> None:
    twin = open_twin(settings, store)
    table = Table("asks", "question", "expected", "", show_lines=True)
    table.add_column("the twin says", overflow="fold", ratio=1)
    try:
        for q in questions:
            reply = twin.answer(q.question, q.asker.audience)
            verdict = q.judged(reply.text)
            colour = "green" if q.right(reply.text) else "red"
            table.add_row(
                str(q.asker.audience.kind),
                escape(q.question),
                escape(" / ".join(q.answers[:2])),
                f"[{colour}]{verdict}[/]",
                escape(reply.text),
            )
    finally:
        twin.models.close()
    console.print(table)


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
