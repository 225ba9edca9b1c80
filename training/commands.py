"""The training commands: `twin train` and `twin models list|promote|rollback`.

Plain Typer commands for the `twin` app to register (`app.command()(train)`,
`app.add_typer(models_app, name="models")`). They find the twin's home through the root
command's `--home` option, so they need nothing from `app`. Every `twin` command loads
this module, so the pipeline, the registry and the settings are imported by the commands.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from core.progress import rich_bar
from twin.command_line import command_settings, err, fail
from twin.privacy import ModelSide
from twin.tasks import CoTStrategy

if TYPE_CHECKING:
    from training.pipeline import RunResult, Stage, StageRecord
    from training.pipeline.stages import Reporter
    from twin.registry import ModelRegistry

console = Console()

models_app = typer.Typer(
    help="Trained model versions: list them, promote one, roll back.", no_args_is_help=True
)


class RichReporter:
    """Progress bars per stage: one line per stage, its bar driven by the trainer's steps."""

    def __init__(self, progress: Progress) -> None:
        self.bar = progress
        self.task: TaskID | None = None

    def stage_started(self, stage: Stage, index: int, count: int) -> None:
        self.task = self.bar.add_task(f"{index}/{count} {stage}", total=None)

    def progress(self, done: int, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total)

    def stage_finished(self, stage: Stage, record: StageRecord) -> None:
        if self.task is None:
            return
        task = self.bar.tasks[self.task]
        total = task.total or 1
        label = "done before" if record.resumed else f"{record.seconds:.0f}s"
        self.bar.update(
            self.task,
            completed=total,
            total=total,
            description=f"{task.description} [dim]({label})[/]",
        )


@contextmanager
def stage_bars(console: Console = err) -> Iterator[Reporter]:
    """Progress bars for a training run, one per stage, on `console`; log lines on stderr
    instead when it is not a terminal (a service, a redirected run)."""
    if not console.is_terminal:
        from training.pipeline import LogReporter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger = logging.getLogger("training")
        logger.addHandler(handler)
        try:
            yield LogReporter()
        finally:
            logger.removeHandler(handler)
        return
    with rich_bar(console, transient=False) as progress:
        yield RichReporter(progress)


def train(
    base: Annotated[
        str | None,
        typer.Option(
            help="The base to fine-tune with LoRA: a model folder, a .gguf file or a Hugging "
            "Face id [default: training.base from twin.toml, else the packaged "
            "SmolLM2-135M-Instruct]."
        ),
    ] = None,
    strategy: Annotated[
        CoTStrategy | None,
        typer.Option(help="Chain-of-thought style of the training replies [default: twin.toml]."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            metavar="RUN", help="Finish the run with this id; stages it finished are not redone."
        ),
    ] = None,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Register the new version without serving it.")
    ] = False,
    fast: Annotated[
        bool,
        typer.Option(help="A minute-long smoke run (a few samples, one pass); not a useful twin."),
    ] = False,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for training [default: every core].")
    ] = None,
) -> None:
    """Train the twin's two models on memory (SFT, then DPO), export them and serve them.

    The owner's model learns all memory; the model that answers everyone else learns only what
    friends may see. Each run lives in <home>/runs/<run id>/ with its log and loss curves.
    """
    from training.pipeline import PipelineError, TrainingRun
    from training.recipe import RunOptions
    from twin.ingest import open_store

    s = command_settings()
    try:
        store = open_store(s)
    except RuntimeError as exc:
        raise fail(str(exc)) from exc
    with store:
        if store.count() == 0:
            raise fail("memory is empty: import notes or chats with `twin ingest` first")
        try:
            with stage_bars() as reporter:
                if resume:
                    run = TrainingRun.resume(s, store, resume, reporter=reporter)
                else:
                    options = RunOptions.from_settings(
                        s.training,
                        base=base,
                        strategy=strategy,
                        threads=threads,
                        fast=fast,
                        promote=not no_promote,
                    )
                    run = TrainingRun.create(s, store, options, reporter=reporter)
                err.print(f"Run [bold]{run.record.run_id}[/] in {run.dir}")
                result = run.run()
        except PipelineError as exc:
            raise fail(str(exc)) from exc
    print_result(result)


def print_result(result: RunResult, console: Console = console) -> None:
    """A finished run as a table of stages, its accuracy and what now serves."""
    table = Table("stage", "seconds", "what it did")
    for record in result.stages:
        seconds = f"{record.seconds:.1f}" + (" (earlier)" if record.resumed else "")
        table.add_row(str(record.stage), seconds, record.summary)
    console.print(table)
    accuracy = [
        f"{side} {metrics.key_fact_accuracy:.2f}"
        for side, metrics in sorted(result.metrics.items())
        if metrics.key_fact_accuracy is not None
    ]
    if accuracy:
        console.print(f"Held-out key-fact accuracy: {', '.join(accuracy)}")
    console.print(f"Total {result.seconds:.0f}s. Log and loss curves: {result.run_dir}")
    if result.version and result.promoted:
        console.print(f"[bold green]{result.version} is now serving.[/]")
    elif result.version:
        console.print(
            f"{result.version} is registered; serve it with `twin models promote {result.version}`."
        )


def _registry() -> ModelRegistry:
    from twin.registry import ModelRegistry

    return ModelRegistry(Path(command_settings().paths.models_dir))


@models_app.command("list")
def list_models() -> None:
    """Every trained version, with what it was trained on and how it scored."""
    registry = _registry()
    versions = registry.versions()
    health = registry.health()
    current = health.version
    for problem in registry.problems():
        err.print(f"[yellow]warning:[/] {problem}")
    if not versions:
        console.print("No trained models yet: run `twin train`.")
        return
    table = Table("", "version", "created", "base", "strategy", "samples", "accuracy", "data")
    table.columns[3].overflow = "fold"  # hub ids and folders are long; show them whole
    for m in versions:
        samples = sum(n for key, n in m.samples.items() if ":train:" in key)
        accuracy = " / ".join(
            f"{m.metric(side).key_fact_accuracy:.2f}"
            for side in (ModelSide.OWNER, ModelSide.SHARED)
            if m.metric(side).key_fact_accuracy is not None
        )
        table.add_row(
            "[bold green]*[/]" if m.version == current else "",
            m.version,
            f"{m.created_at:%Y-%m-%d %H:%M}",
            m.base,
            m.strategy,
            str(samples),
            accuracy or "-",
            m.data_hash,
        )
    console.print(table)
    console.print("[dim]* serving now; accuracy = held-out key facts, owner / shared model[/]")
    style = "green" if health.healthy else "bold red"
    console.print(f"[{style}]{health.summary()}[/]")


@models_app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to serve, e.g. v0003.")],
) -> None:
    """Serve VERSION from now on (the running twin picks it up on its next answer)."""
    from twin.registry import RegistryError

    try:
        manifest = _registry().promote(version)
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{manifest.version} ({manifest.base}, {manifest.strategy}) is now serving.")


@models_app.command()
def rollback() -> None:
    """Serve the version that was serving before the current one."""
    from twin.registry import RegistryError

    try:
        manifest = _registry().rollback()
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    console.print(f"Rolled back: {manifest.version} is serving again.")
