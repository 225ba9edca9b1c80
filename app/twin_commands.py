"""Commands on the whole twin: asking it, and the demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from app.common import app, audience_named, console, err, fail, settings
from memory.sources import ImportFormatError
from twin.privacy import Audience

if TYPE_CHECKING:
    from serving.service import Twin, TwinReply


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="Where to build the demo twin.")] = Path(".twin-demo"),
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="A smoke training run (minutes) instead of the real fine-tuning."
        ),
    ] = False,
) -> None:
    """Run the whole product on the bundled sample persona, offline: ingest, search, profile,
    fine-tune SmolLM2 into the twin (LoRA SFT + DPO), ask it, and use it over MCP."""
    from app.demo import run_demo
    from training.pipeline import PipelineError
    from twin.config import ConfigError

    try:
        run_demo(home, console=console, quick=quick)
    except (FileExistsError, ImportFormatError, ConfigError, PipelineError) as exc:
        raise fail(str(exc)) from exc


def _reply(task: Callable[[Twin, Audience], TwinReply], audience: str = "owner") -> TwinReply:
    """Open the twin, run one task on it as `audience`, close it; errors exit with a message."""
    from serving.service import open_twin
    from twin.config import ConfigError
    from twin.registry import RegistryError

    who = audience_named(audience)
    try:
        twin = open_twin(settings())
    except (ValueError, RuntimeError, ConfigError, RegistryError) as exc:
        raise fail(str(exc)) from exc
    with twin.store:
        try:
            return task(twin, who)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        finally:
            twin.models.close()


def _show(reply: TwinReply, reasoning: bool) -> None:
    if reply.model_problem:
        err.print(f"[bold red]error:[/] {escape(reply.model_problem)}")
    if reasoning and reply.reasoning:
        console.print(Panel(escape(reply.reasoning), title="reasoning", border_style="dim"))
    if reply.verdict:
        console.print(f"[bold]Verdict:[/] {reply.verdict}")
    console.print(escape(reply.text))
    for title, items in (("Context added", reply.added), ("Checked against", reply.checked)):
        if items:
            console.print(f"[bold]{title}:[/]")
            for item in items:
                console.print(f"  - {escape(item)}")
    if reply.evidence:
        table = Table("when", "who", "source", "memory", title="From memory", title_justify="left")
        for e in reply.evidence:
            when = e.when.date().isoformat() if e.when else ""
            table.add_row(when, escape(e.who), escape(e.source), escape(e.snippet[:120]))
        console.print(table)
    note = "withheld by the privacy guard; " if reply.withheld else ""
    console.print(
        f"[dim]{note}model {reply.model}, search similarity {reply.search_similarity:.2f}[/]"
    )


ReasoningOption = Annotated[
    bool, typer.Option("--reasoning", help="Also show the model's reasoning, if it gave any.")
]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="What to ask your twin.")],
    audience: Annotated[
        str, typer.Option("--as", help="Ask as the owner, a friend or the public.")
    ] = "owner",
    reasoning: ReasoningOption = False,
) -> None:
    """Ask the twin something its memory knows (memory QA)."""
    _show(_reply(lambda twin, who: twin.answer(question, who), audience), reasoning)


@app.command()
def enhance(
    request: Annotated[str, typer.Argument(help="What you are about to ask another agent.")],
    target: Annotated[str | None, typer.Option("--for", help="Who the request is for.")] = None,
    reasoning: ReasoningOption = False,
) -> None:
    """Rewrite a request with the personal context another agent needs (context enhance)."""
    _show(_reply(lambda twin, _: twin.enhance(request, target)), reasoning)


@app.command()
def critique(
    request: Annotated[str, typer.Argument(help="What you asked another agent.")],
    answer: Annotated[str, typer.Argument(help="What it replied.")],
    reasoning: ReasoningOption = False,
) -> None:
    """Judge another agent's reply from your point of view (context critic)."""
    _show(_reply(lambda twin, _: twin.critique(request, answer)), reasoning)
