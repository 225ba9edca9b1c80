"""Preference training with trl's DPOTrainer, after SFT.

A preference is a prompt (chat messages) with a reply to prefer and one to avoid. The reference
policy DPO measures against is the model as it comes in: for a LoRA run the adapter-disabled
model (no second copy in memory); for full training (the tiny base) its log-probabilities are
computed once before training starts, which also needs no second copy. Like SFT, the stage ends
in a complete model folder, the adapter merged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from training.sft import (
    REPORT,
    Hyperparameters,
    Progress,
    StepRecorder,
    TrainReport,
    chat_rows,
    load_model,
    lora_config,
    quiet_libraries,
    save_trained,
    trainer_arguments,
)
from training.tiny import load_tokenizer
from twin.llm.base import ChatMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preference:
    """A prompt and two replies to it, the first better than the second."""

    prompt: tuple[ChatMessage, ...]
    chosen: str
    rejected: str


def train_dpo(
    base_dir: Path,
    preferences: Sequence[Preference],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    beta: float = 0.1,
    sft_weight: float = 0.0,
    name: str = "dpo",
    progress: Progress | None = None,
) -> tuple[Path, TrainReport]:
    """Train the model in `base_dir` to prefer each preference's chosen reply.

    `sft_weight` > 0 adds the chosen reply's likelihood to the loss (as in RPO), which keeps a
    small model from drifting away from the answers it learned in SFT while it learns the
    preferences. Returns the trained model's folder (`work_dir/model`) and the report.
    """
    from datasets import Dataset as HFDataset
    from trl import DPOConfig, DPOTrainer

    if not preferences:
        raise ValueError(f"{name}: no preference pairs to train on")
    quiet_libraries()
    data = HFDataset.from_list(
        [
            {
                "prompt": chat_rows(p.prompt),
                "chosen": [{"role": "assistant", "content": p.chosen}],
                "rejected": [{"role": "assistant", "content": p.rejected}],
            }
            for p in preferences
        ]
    )
    losses = ["sigmoid", "sft"] if sft_weight > 0 else ["sigmoid"]
    args = DPOConfig(
        **trainer_arguments(work_dir, hyper, data_size=len(data)),
        max_length=hyper.max_length,
        beta=beta,
        loss_type=losses,
        loss_weights=[1.0, sft_weight] if sft_weight > 0 else None,
        # full training: the reference is the incoming model, scored once up front
        precompute_ref_log_probs=hyper.lora is None,
    )
    recorder = StepRecorder(name, progress)
    with _no_tqdm():
        trainer = DPOTrainer(
            model=load_model(base_dir),
            ref_model=None,
            args=args,
            train_dataset=data,
            processing_class=load_tokenizer(base_dir),
            peft_config=lora_config(hyper.lora),
            callbacks=[recorder.callback()],
        )
        recorder.attach(trainer)
        dataset = trainer.train_dataset
        lengths = [
            2 * len(p) + len(c) + len(r)
            for p, c, r in zip(
                dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"], strict=True
            )
        ]
        recorder.train(trainer, lengths, hyper.epochs)
    model_dir = save_trained(trainer, base_dir, work_dir)
    recorder.report.save(work_dir / REPORT)
    log.info(
        "%s: %d pairs, %d steps in %.1fs, last loss %s, reward accuracy %s",
        name,
        len(lengths),
        recorder.report.steps,
        recorder.report.seconds,
        recorder.report.last_loss,
        recorder.report.final.get("rewards/accuracies"),
    )
    return model_dir, recorder.report


@contextmanager
def _no_tqdm() -> Iterator[None]:
    """trl scores the reference with a tqdm bar that only this variable turns off."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous
