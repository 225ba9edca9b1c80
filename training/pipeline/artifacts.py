"""A run's folder and the records in it: what was asked (run.json), what each stage did
(done.json), where each stage keeps its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import TypeAdapter

from training.lora import ModelStack
from training.recipe import Recipe, RunOptions
from training.sft import ADAPTER
from training.synthesize.samples import Dataset
from twin.privacy import ModelSide
from twin.registry import ModelMetrics

RUN_FILE = "run.json"
DONE_FILE = "done.json"
LOG_FILE = "train.log"
LOSS_PLOT = "loss.png"


class PipelineError(Exception):
    """Training cannot go on; the message says why and what to do."""


class PrivacyViolation(PipelineError):
    """Data meant for the shared model cites a memory friends may not see."""


class Stage(StrEnum):
    SYNTHESIZE = "synthesize"
    SFT_SHARED = "sft-shared"
    SFT_OWNER = "sft-owner"
    DPO_SHARED = "dpo-shared"
    DPO_OWNER = "dpo-owner"
    EXPORT = "export"
    EVALUATE = "evaluate"
    REGISTER = "register"

    @classmethod
    def sft(cls, side: ModelSide) -> Stage:
        return cls.SFT_OWNER if side is ModelSide.OWNER else cls.SFT_SHARED

    @classmethod
    def dpo(cls, side: ModelSide) -> Stage:
        return cls.DPO_OWNER if side is ModelSide.OWNER else cls.DPO_SHARED


@dataclass(frozen=True)
class StageResult:
    """What a stage reports: a line for people, and what it measured per model."""

    summary: str
    metrics: dict[ModelSide, ModelMetrics] = field(default_factory=dict)


@dataclass(frozen=True)
class StageRecord:
    """What a finished stage wrote into its done.json."""

    stage: Stage
    seconds: float
    finished_at: datetime
    summary: str = ""
    metrics: dict[ModelSide, ModelMetrics] = field(default_factory=dict)
    # set when a resumed run found the stage already done
    resumed: bool = False


@dataclass(frozen=True)
class RunRecord:
    """run.json: what a run was asked to do, and the base it trains (resolved at the start)."""

    run_id: str
    created_at: datetime
    options: RunOptions
    recipe: Recipe
    base_dir: Path


_RUN = TypeAdapter(RunRecord)
_STAGE = TypeAdapter(StageRecord)


@dataclass(frozen=True)
class RunFolder:
    """The layout of `<home>/runs/<run id>/`."""

    root: Path

    def stage_dir(self, stage: Stage) -> Path:
        return self.root / stage.value

    def dataset_dir(self, side: ModelSide) -> Path:
        return self.stage_dir(Stage.SYNTHESIZE) / side.value

    def dataset(self, side: ModelSide) -> Dataset:
        return Dataset.load(self.dataset_dir(side))

    def adapter(self, stage: Stage) -> Path:
        return self.stage_dir(stage) / ADAPTER

    def sft_stack(self, base: Path, side: ModelSide) -> ModelStack:
        """The SFT model of `side`: the owner's trains on top of the shared one's."""
        stack = ModelStack(base).plus(self.adapter(Stage.SFT_SHARED))
        if side is ModelSide.OWNER:
            stack = stack.plus(self.adapter(Stage.SFT_OWNER))
        return stack

    def final_stack(self, base: Path, side: ModelSide) -> ModelStack:
        """The model exported for `side`: after DPO when DPO ran."""
        stack = self.sft_stack(base, side)
        dpo = self.adapter(Stage.dpo(side))
        return stack.plus(dpo) if dpo.is_dir() else stack

    def export_path(self, side: ModelSide, quant: str) -> Path:
        return self.stage_dir(Stage.EXPORT) / f"{side}.{quant}.gguf"

    def write_run(self, record: RunRecord) -> None:
        (self.root / RUN_FILE).write_bytes(_RUN.dump_json(record, indent=2))

    def read_run(self) -> RunRecord:
        return _RUN.validate_json((self.root / RUN_FILE).read_bytes())

    def done(self, stage: Stage) -> StageRecord | None:
        path = self.stage_dir(stage) / DONE_FILE
        if not path.is_file():
            return None
        return replace(_STAGE.validate_json(path.read_bytes()), resumed=True)

    def mark_done(self, record: StageRecord) -> None:
        path = self.stage_dir(record.stage) / DONE_FILE
        path.write_bytes(_STAGE.dump_json(record, indent=2))

    @property
    def version_file(self) -> Path:
        """Where the register stage notes the registry version it allocated."""
        return self.stage_dir(Stage.REGISTER) / "version.txt"

    def registered_version(self) -> str | None:
        """The version this run became, once its register stage is done."""
        if self.done(Stage.REGISTER) is None:
            return None
        return self.version_file.read_text(encoding="utf-8").strip()
