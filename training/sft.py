"""Supervised training with trl's SFTTrainer: plain language modelling and chat fine-tuning.

One code path serves both kinds of base. A tiny base made by `training.tiny` is trained in full;
a pretrained base gets a LoRA adapter (peft), which is then merged so every stage ends in a
complete Hugging Face model folder that the next stage, the evaluation and the GGUF export
read. Chat data is trained with the loss on the assistant's tokens only (the chat template's
`{% generation %}` markers say which those are; trl supplies a marked template for bases whose
own template has none).

Runs on the CPU unless a GPU is there; under `accelerate launch` the Trainer spreads the work
over the GPUs it is given.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.export import merge_lora
from training.tiny import load_tokenizer
from twin.llm.base import ChatMessage

if TYPE_CHECKING:
    from datasets import Dataset as HFDataset
    from transformers import PreTrainedModel, TrainerCallback

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called as progress(steps_done, total_steps) while a trainer runs."""

# The modules LoRA adapts in Qwen2 and Llama blocks: attention and MLP projections.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MODEL = "model"
ADAPTER = "adapter"
REPORT = "report.json"


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA adapter's shape."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = LORA_TARGETS


@dataclass(frozen=True)
class Hyperparameters:
    """How one trainer runs. `lora` None trains every weight."""

    epochs: float
    learning_rate: float
    batch_size: int
    max_length: int
    seed: int = 0
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    lora: LoraSpec | None = None
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


def train_language_model(
    base_dir: Path,
    texts: Sequence[str],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    name: str = "pretrain",
    progress: Progress | None = None,
) -> tuple[Path, TrainReport]:
    """Train the model in `base_dir` to continue `texts` (every token counts).

    Returns the trained model's folder (`work_dir/model`) and the report.
    """
    from datasets import Dataset as HFDataset

    if not texts:
        raise ValueError(f"{name}: no text to train on")
    data = HFDataset.from_list([{"text": t} for t in texts])
    return _run(base_dir, data, work_dir, hyper, name, progress, assistant_only=False)


def train_sft(
    base_dir: Path,
    conversations: Sequence[Sequence[ChatMessage]],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    assistant_only: bool = True,
    name: str = "sft",
    progress: Progress | None = None,
) -> tuple[Path, TrainReport]:
    """Fine-tune the model in `base_dir` on chat `conversations`. Each conversation ends with
    the assistant's reply.

    With `assistant_only` the loss is on the assistant's turns alone (what fine-tuning a
    pretrained model wants); without it on every token, which gives a model trained from
    scratch far more to learn from each conversation: the prompts are memory text too.
    Returns the trained model's folder (`work_dir/model`) and the report.
    """
    from datasets import Dataset as HFDataset

    if not conversations:
        raise ValueError(f"{name}: no conversations to train on")
    data = HFDataset.from_list([{"messages": chat_rows(c)} for c in conversations])
    return _run(base_dir, data, work_dir, hyper, name, progress, assistant_only=assistant_only)


def chat_rows(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Messages as the dicts chat templates and trl read."""
    return [{"role": m.role, "content": m.content} for m in messages]


def _run(
    base_dir: Path,
    data: HFDataset,
    work_dir: Path,
    hyper: Hyperparameters,
    name: str,
    progress: Progress | None,
    *,
    assistant_only: bool,
) -> tuple[Path, TrainReport]:
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()
    tokenizer = load_tokenizer(base_dir)
    model = load_model(base_dir)
    args = SFTConfig(
        **trainer_arguments(work_dir, hyper, data_size=len(data)),
        max_length=hyper.max_length,
        assistant_only_loss=assistant_only,
        dataset_num_proc=None,
        # batches of similar lengths: chat samples vary a lot, and padding is wasted compute
        train_sampling_strategy="group_by_length",
    )
    recorder = StepRecorder(name, progress)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora_config(hyper.lora),
        callbacks=[recorder.callback()],
    )
    recorder.attach(trainer)
    recorder.train(trainer, [len(ids) for ids in trainer.train_dataset["input_ids"]], hyper.epochs)
    model_dir = save_trained(trainer, base_dir, work_dir)
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
    return model_dir, recorder.report


def load_model(model_dir: Path) -> PreTrainedModel:
    """The causal LM in `model_dir`, in float32 on the CPU (bfloat16 on a GPU that has it)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.float32
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)


def trainer_arguments(work_dir: Path, hyper: Hyperparameters, *, data_size: int) -> dict[str, Any]:
    """TrainingArguments shared by the SFT and DPO trainers."""
    import torch

    on_gpu = torch.cuda.is_available()
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
        "use_cpu": not on_gpu,
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "dataloader_num_workers": 0,
    }


def lora_config(spec: LoraSpec | None) -> Any:
    """The peft config for `spec`, or None for full training."""
    if spec is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.targets),
        task_type="CAUSAL_LM",
    )


def save_trained(trainer: Any, base_dir: Path, work_dir: Path) -> Path:
    """Save what `trainer` trained as a complete model folder `work_dir/model`.

    A LoRA adapter is saved to `work_dir/adapter` and merged into the base; a fully trained
    model is saved as it is. The tokenizer is the base's, byte for byte.
    """
    from peft import PeftModel

    model_dir = work_dir / MODEL
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        adapter_dir = work_dir / ADAPTER
        model.save_pretrained(adapter_dir)
        merge_lora(base_dir, adapter_dir, model_dir)
    else:
        model.save_pretrained(model_dir)
        copy_tokenizer(base_dir, model_dir)
    shutil.rmtree(work_dir / "trainer", ignore_errors=True)
    return model_dir


def copy_tokenizer(source: Path, target: Path) -> None:
    """Copy the tokenizer files of `source` into `target` unchanged."""
    from training.export import TOKENIZER_FILES

    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


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
