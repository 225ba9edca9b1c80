"""Progress of long work, in one place: the `Progress` callback every layer reports through, and how
it is shown: a rich bar on a terminal (on stderr, so piped output stays clean), and
log lines when stderr is not a terminal (a pipe, a file, a service's journal), so that long work
is never silent there either.

Log lines go to the `twin.progress` logger: at the start, each time another tenth is done, and
at the end. When nothing has configured logging (a plain `twin` command), they are written to
stderr with a timestamp.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

# Called with (done, total) as work proceeds; how it is shown (a bar, log lines) is the caller's.
Progress = Callable[[int, int], None]

err = Console(stderr=True)
log = logging.getLogger("twin.progress")
log.setLevel(logging.INFO)  # progress is what a log reader of long work wants to see
LOG_STEPS = 10


class ProgressReport:
    """Reports `(done, total)` of the current piece of work; `describe` names that piece."""

    def __init__(self, description: str, bar: RichProgress | None) -> None:
        self.description = description
        self._bar = bar
        self._task = bar.add_task(description, total=None) if bar else None
        self._logged: tuple[str, int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=self.description, completed=done, total=total)
            return
        step = done * LOG_STEPS // total if total > 0 else 0
        mark = (self.description, total, step)
        if mark == self._logged:
            return
        self._logged = mark
        share = f" ({100 * done // total}%)" if total > 0 else ""
        log.info("%s: %d/%d%s", self.description, done, total, share)

    def describe(self, description: str) -> None:
        """Name the work that follows (e.g. the source being embedded)."""
        self.description = description


def rich_bar(console: Console = err, *, transient: bool = True) -> RichProgress:
    """The one look of Twin's progress bars: description, bar, done/total, time elapsed."""
    return RichProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


@contextmanager
def _report(description: str) -> Iterator[ProgressReport]:
    if err.is_terminal:
        with rich_bar() as bar:
            yield ProgressReport(description, bar)
        return
    handler = None
    if not log.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    try:
        yield ProgressReport(description, None)
    finally:
        if handler is not None:
            log.removeHandler(handler)


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressReport]:
    """Progress of one kind of work; yields a `progress(done, total)` callback."""
    with _report(description) as report:
        yield report


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """Progress of work in named stages; yields `progress(stage, done, total)`."""
    with _report("Starting") as report:

        def update(stage: str, done: int, total: int) -> None:
            report.describe(stage)
            report(done, total)

        yield update
