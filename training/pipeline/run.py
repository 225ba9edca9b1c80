"""One training run, from the stages it goes through to the result it reports."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from core.clock import SYSTEM_CLOCK, Clock
from memory.store import MemoryStore
from training.bases import BaseModelError, resolve_base
from training.pipeline import stages
from training.pipeline.artifacts import (
    LOG_FILE,
    LOSS_PLOT,
    RUN_FILE,
    PipelineError,
    RunFolder,
    RunRecord,
    Stage,
    StageRecord,
    StageResult,
)
from training.pipeline.data import SynthesizedData, TrainingData
from training.pipeline.plots import plot_losses
from training.pipeline.stages import SIDES, Reporter, RunContext
from training.recipe import Recipe, RunOptions, recipe_for
from training.sft import quiet_libraries
from twin.config import Settings
from twin.privacy import ModelSide
from twin.registry import ModelMetrics, ModelRegistry

log = logging.getLogger(__name__)


class LogReporter:
    """Progress within a stage as log lines, a tenth of the way at a time (for runs with no
    terminal to draw bars on; the run itself logs each stage's start and end)."""

    def __init__(self) -> None:
        self._stage: Stage | None = None
        self._logged = -1

    def stage_started(self, stage: Stage, index: int, count: int) -> None:
        self._stage, self._logged = stage, -1

    def progress(self, done: int, total: int) -> None:
        tenth = 10 * done // total if total > 0 else 0
        if tenth != self._logged:
            self._logged = tenth
            log.info("%s: %d/%d steps", self._stage, done, total)

    def stage_finished(self, stage: Stage, record: StageRecord) -> None:
        return None


@dataclass(frozen=True)
class RunResult:
    """What `twin train` reports at the end."""

    run_id: str
    run_dir: Path
    stages: list[StageRecord]
    version: str | None
    promoted: bool
    metrics: dict[ModelSide, ModelMetrics]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


class TrainingRun:
    """One run of the pipeline in its own folder; `run()` does (or finishes) it.

    Every stage writes its outputs, then `done.json`; a resumed run skips the stages that have
    one, so a crash costs at most the stage it interrupted.
    """

    def __init__(
        self,
        settings: Settings,
        store: MemoryStore,
        record: RunRecord,
        *,
        data: TrainingData | None = None,
        reporter: Reporter | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.store = store
        self.record = record
        self.folder = RunFolder(settings.paths.runs_dir / record.run_id)
        self.data = data or SynthesizedData(settings)
        self.reporter = reporter or LogReporter()
        self.clock = clock
        self.registry = ModelRegistry(settings.paths.models_dir, clock)

    @property
    def dir(self) -> Path:
        return self.folder.root

    @property
    def options(self) -> RunOptions:
        return self.record.options

    @property
    def recipe(self) -> Recipe:
        return self.record.recipe

    @classmethod
    def create(
        cls,
        settings: Settings,
        store: MemoryStore,
        options: RunOptions,
        *,
        data: TrainingData | None = None,
        reporter: Reporter | None = None,
        recipe: Recipe | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> TrainingRun:
        """A new run folder with its run.json: the base resolved (converted the first time),
        the recipe fitted to it. `recipe` replaces the one the options imply (benchmarks and
        tests use it to try other numbers)."""
        import torch

        try:
            base = resolve_base(options.base, settings.paths.bases_dir)
        except BaseModelError as exc:
            raise PipelineError(str(exc)) from exc
        recipe = recipe or recipe_for(
            settings.training,
            options,
            base_dir=base.folder,
            max_positions=base.max_positions,
            on_gpu=torch.cuda.is_available(),
        )
        recipe = replace(recipe, context_size=min(recipe.context_size, base.max_positions))
        now = clock.now()
        run_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        record = RunRecord(run_id, now, options, recipe, base.folder)
        folder = RunFolder(settings.paths.runs_dir / run_id)
        folder.root.mkdir(parents=True)
        folder.write_run(record)
        return cls(settings, store, record, data=data, reporter=reporter, clock=clock)

    @classmethod
    def resume(
        cls,
        settings: Settings,
        store: MemoryStore,
        run_id: str,
        *,
        data: TrainingData | None = None,
        reporter: Reporter | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> TrainingRun:
        """The run `run_id`, with the options, recipe and base it started with."""
        folder = RunFolder(settings.paths.runs_dir / run_id)
        if not (folder.root / RUN_FILE).is_file():
            known = sorted(p.parent.name for p in settings.paths.runs_dir.glob(f"*/{RUN_FILE}"))
            raise PipelineError(
                f"no training run {run_id!r} in {settings.paths.runs_dir}"
                + (f"; runs: {', '.join(known)}" if known else "")
            )
        record = folder.read_run()
        if not (record.base_dir / "config.json").is_file():
            raise PipelineError(
                f"run {run_id} trains {record.base_dir}, which is gone; start a new run"
            )
        return cls(settings, store, record, data=data, reporter=reporter, clock=clock)

    @property
    def stages(self) -> list[Stage]:
        """The stages this run goes through, in order."""
        skipped = {Stage.DPO_SHARED, Stage.DPO_OWNER} if self.recipe.dpo is None else set()
        return [stage for stage in Stage if stage not in skipped]

    @property
    def threads(self) -> int:
        return self.options.threads or os.cpu_count() or 1

    def stage_dir(self, stage: Stage) -> Path:
        return self.folder.stage_dir(stage)

    def run(self, *, stop_after: Stage | None = None) -> RunResult:
        """Run every stage not done yet (up to `stop_after`, if given)."""
        ctx = RunContext(
            settings=self.settings,
            store=self.store,
            record=self.record,
            folder=self.folder,
            data=self.data,
            reporter=self.reporter,
            registry=self.registry,
            threads=self.threads,
            now=self.clock.now(),
        )
        steps: dict[Stage, Callable[[], StageResult]] = {
            Stage.SYNTHESIZE: lambda: stages.synthesize(ctx),
            Stage.SFT_SHARED: lambda: stages.sft(ctx, ModelSide.SHARED),
            Stage.SFT_OWNER: lambda: stages.sft(ctx, ModelSide.OWNER),
            Stage.DPO_SHARED: lambda: stages.dpo(ctx, ModelSide.SHARED),
            Stage.DPO_OWNER: lambda: stages.dpo(ctx, ModelSide.OWNER),
            Stage.EXPORT: lambda: stages.export(ctx),
            Stage.EVALUATE: lambda: stages.evaluate(ctx),
            Stage.REGISTER: lambda: stages.register(ctx, self._metrics(), self._seconds()),
        }
        quiet_libraries()
        records: list[StageRecord] = []
        order = self.stages
        with self._run_log(), _torch_threads(self.threads):
            log.info("run %s: %s, base %s", self.record.run_id, self.options, self.record.base_dir)
            for index, stage in enumerate(order, start=1):
                log.info("stage %d/%d: %s", index, len(order), stage)
                self.reporter.stage_started(stage, index, len(order))
                record = self.folder.done(stage)
                if record is None:
                    started = time.perf_counter()
                    self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
                    result = steps[stage]()
                    record = StageRecord(
                        stage,
                        round(time.perf_counter() - started, 2),
                        self.clock.now(),
                        result.summary,
                        result.metrics,
                    )
                    self.folder.mark_done(record)
                    self._plot_losses()
                records.append(record)
                state = "done before" if record.resumed else f"done in {record.seconds:.1f}s"
                log.info("stage %s %s: %s", stage, state, record.summary)
                self.reporter.stage_finished(stage, record)
                if stage == stop_after:
                    break
        version = self.folder.registered_version()
        return RunResult(
            run_id=self.record.run_id,
            run_dir=self.dir,
            stages=records,
            version=version,
            promoted=version is not None and self.registry.current_version() == version,
            metrics=self._metrics(),
        )

    def _metrics(self) -> dict[ModelSide, ModelMetrics]:
        """What the finished stages measured, per model."""
        merged = {side: ModelMetrics() for side in SIDES}
        for stage in self.stages:
            record = self.folder.done(stage)
            for side, metrics in (record.metrics if record else {}).items():
                merged[side] = merged[side].merged(metrics)
        return merged

    def _seconds(self) -> dict[str, float]:
        """How long each finished stage took."""
        done = (self.folder.done(stage) for stage in self.stages)
        return {str(record.stage): record.seconds for record in done if record is not None}

    def _plot_losses(self) -> None:
        from training.sft import REPORT, TrainReport

        reports = [TrainReport.load(p) for p in sorted(self.dir.glob(f"*/{REPORT}"))]
        if reports:
            plot_losses(reports, self.dir / LOSS_PLOT)

    @contextmanager
    def _run_log(self) -> Iterator[None]:
        """Append everything the training code logs to the run's train.log."""
        handler = logging.FileHandler(self.dir / LOG_FILE, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("training")
        previous = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            yield
        except Exception:
            log.exception("run %s failed", self.record.run_id)
            raise
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous)
            handler.close()


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
