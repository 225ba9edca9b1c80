"""Supervised fine-tuning with trl's SFTTrainer: a LoRA adapter on a pretrained chat model.

Every conversation ends with the assistant's reply, and the loss is on the assistant's tokens
alone (a chat template with `{% generation %}` markers says which those are, see
`training.chat_template`). A run trains from a `ModelStack` (the base, and adapters trained
before) and ends with one more adapter, saved in `work_dir/adapter`.

Runs on the CPU unless a GPU is there (bfloat16 autocast only where the hardware computes it);
under `accelerate launch` the Trainer spreads the work over the GPUs it is given.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.progress import Progress
from lm.base import ChatMessage
from training.lora import LoraSpec, ModelStack, use_bf16
from training.reply_head import score_labels_only

if TYPE_CHECKING:
    from transformers import TrainerCallback

log = logging.getLogger(__name__)

"""Called as progress(steps_done, total_steps) while a trainer runs."""

ADAPTER = "adapter"
REPORT = "report.json"


@dataclass(frozen=True)
class Hyperparameters:
    """How one trainer runs."""

    epochs: float
    learning_rate: float
    batch_size: int
    max_length: int
    lora: LoraSpec = field(default_factory=LoraSpec)
    seed: int = 0
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    # How many loss values to record over the run (for the loss curve).
    log_points: int = 60


@dataclass(frozen=True)
class LossPoint:
    step: int
    loss: float


@dataclass
class TrainReport:
    """What a trainer did: its losses, its steps, how many tokens it saw and how fast."""

    name: str
    steps: int = 0
    examples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    losses: list[LossPoint] = field(default_factory=list)
    # Trainer-specific figures at the end (e.g. DPO's reward accuracy).
    final: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1].loss if self.losses else None

    def save(self, path: Path) -> None:
        data = asdict(self)
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TrainReport:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["losses"] = [LossPoint(**p) for p in data.get("losses", [])]
        return cls(**data)


def train_sft(
    stack: ModelStack,
    conversations: Sequence[Sequence[ChatMessage]],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    name: str = "sft",
    progress: Progress | None = None,
) -> tuple[Path, TrainReport]:
    """Train a LoRA adapter on top of `stack` to give each conversation's final (assistant)
    reply. Returns the adapter's folder (`work_dir/adapter`) and the report."""
    recorder = StepRecorder(name, progress)
    trainer = sft_trainer(stack, conversations, work_dir, hyper, callbacks=[recorder.callback()])
    score_labels_only(trainer)
    recorder.attach(trainer)
    recorder.train(trainer, [len(ids) for ids in trainer.train_dataset["input_ids"]], hyper.epochs)
    adapter = save_adapter(trainer, work_dir)
    recorder.report.save(work_dir / REPORT)
    log.info(
        "%s: %d steps, %d tokens in %.1fs (%.0f tokens/s), last loss %s",
        name,
        recorder.report.steps,
        recorder.report.tokens,
        recorder.report.seconds,
        recorder.report.tokens_per_second,
        recorder.report.last_loss,
    )
    return adapter, recorder.report


def sft_trainer(
    stack: ModelStack,
    conversations: Sequence[Sequence[ChatMessage]],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    callbacks: Sequence[TrainerCallback] = (),
) -> Any:
    """trl's SFTTrainer on the conversations, loss on the replies (`train_sft` runs it with
    `score_labels_only`)."""
    from datasets import Dataset as HFDataset
    from trl import SFTConfig, SFTTrainer

    if not conversations:
        raise ValueError(f"{work_dir.name}: no conversations to train on")
    quiet_libraries()
    data = HFDataset.from_list([{"messages": chat_rows(c)} for c in conversations])
    args = SFTConfig(
        **trainer_arguments(work_dir, hyper, data_size=len(data)),
        max_length=hyper.max_length,
        assistant_only_loss=True,
        dataset_num_proc=None,
        # batches of similar lengths: chat samples vary a lot, and padding is wasted compute
        train_sampling_strategy="group_by_length",
    )
    return SFTTrainer(
        model=stack.load(),
        args=args,
        train_dataset=data,
        processing_class=stack.training_tokenizer(),
        peft_config=hyper.lora.peft_config(stack.layer_count()),
        callbacks=list(callbacks),
    )


def chat_rows(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Messages as the dicts chat templates and trl read."""
    return [{"role": m.role, "content": m.content} for m in messages]


def trainer_arguments(work_dir: Path, hyper: Hyperparameters, *, data_size: int) -> dict[str, Any]:
    """TrainingArguments shared by the SFT and DPO trainers."""
    import torch

    steps = max(1, round(-(-data_size // hyper.batch_size) * hyper.epochs))
    return {
        "output_dir": str(work_dir / "trainer"),
        "num_train_epochs": hyper.epochs,
        "learning_rate": hyper.learning_rate,
        "per_device_train_batch_size": hyper.batch_size,
        "lr_scheduler_type": "cosine",
        "warmup_steps": hyper.warmup_ratio,
        "weight_decay": hyper.weight_decay,
        "seed": hyper.seed,
        "data_seed": hyper.seed,
        "logging_steps": max(1, steps // hyper.log_points),
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        # small models: recomputing activations costs time and saves memory nobody needs
        "activation_checkpointing": False,
        "use_cpu": not torch.cuda.is_available(),
        # trl turns bfloat16 on by default; on a CPU without native bfloat16 it is emulated
        # and tens of times slower than float32
        "bf16": use_bf16(),
        "dataloader_num_workers": 0,
    }


def save_adapter(trainer: Any, work_dir: Path) -> Path:
    """Save the LoRA adapter `trainer` trained to `work_dir/adapter` (and drop its scratch)."""
    adapter_dir = work_dir / ADAPTER
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.save_pretrained(adapter_dir)
    shutil.rmtree(work_dir / "trainer", ignore_errors=True)
    return adapter_dir


class StepRecorder:
    """Drives a progress callback from a Trainer and records its losses into a report."""

    def __init__(self, name: str, progress: Progress | None) -> None:
        self.report = TrainReport(name)
        self.progress = progress

    def attach(self, trainer: Any) -> None:
        """Replace the trainer's own console output (logs printed as dicts) with this recorder."""
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)

    def train(self, trainer: Any, lengths: Sequence[int], epochs: float) -> None:
        """Run `trainer`, recording its examples, the tokens it trains on (`lengths` are the
        examples' token counts, seen `epochs` times) and how long it took."""
        self.report.examples = len(lengths)
        self.report.tokens = round(sum(lengths) * epochs)
        started = time.perf_counter()
        trainer.train()
        self.report.seconds = round(time.perf_counter() - started, 2)

    def callback(self) -> TrainerCallback:
        from transformers import TrainerCallback

        recorder = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
                if recorder.progress:
                    recorder.progress(0, state.max_steps)

            def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
                recorder.report.steps = state.global_step
                if recorder.progress:
                    recorder.progress(state.global_step, state.max_steps)

            def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
                logs = logs or {}
                if "loss" in logs:
                    point = LossPoint(state.global_step, round(float(logs["loss"]), 5))
                    recorder.report.losses.append(point)
                for key in ("rewards/accuracies", "rewards/margins", "train_loss"):
                    if key in logs:
                        recorder.report.final[key] = round(float(logs[key]), 5)

        return _Callback()


def quiet_libraries() -> None:
    """Silence the libraries' own progress bars and chatter: the pipeline shows its own."""
    import warnings

    import datasets
    import transformers

    # trl still reads a property transformers 5 renamed; the warning is theirs, not ours
    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
