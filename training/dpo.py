"""Preference training with trl's DPOTrainer, after SFT.

A preference is a prompt (chat messages) with a reply to prefer and one to avoid. DPO trains a
fresh LoRA adapter on top of the SFT model (the `ModelStack` it is given, merged in memory); the
reference policy is that same model with the adapter switched off, so no second copy is held.
Held-out preferences measure whether DPO learned anything: the share of them where the trained
model prefers the chosen reply more than the reference does (trl's reward accuracy).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm.base import ChatMessage
from training.lora import ModelStack
from training.reply_head import score_labels_only
from training.sft import (
    REPORT,
    Hyperparameters,
    Progress,
    StepRecorder,
    TrainReport,
    chat_rows,
    quiet_libraries,
    save_adapter,
    trainer_arguments,
)

if TYPE_CHECKING:
    from datasets import Dataset as HFDataset
    from transformers import TrainerCallback

log = logging.getLogger(__name__)

HELD_OUT_ACCURACY = "held_out_reward_accuracy"
HELD_OUT_MARGIN = "held_out_reward_margin"


@dataclass(frozen=True)
class Preference:
    """A prompt and two replies to it, the first better than the second."""

    prompt: tuple[ChatMessage, ...]
    chosen: str
    rejected: str


def train_dpo(
    stack: ModelStack,
    preferences: Sequence[Preference],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    beta: float = 0.1,
    sft_weight: float = 0.0,
    held_out: Sequence[Preference] = (),
    name: str = "dpo",
    progress: Progress | None = None,
) -> tuple[Path, TrainReport]:
    """Train an adapter on top of `stack` to prefer each preference's chosen reply.

    `sft_weight` > 0 adds the chosen reply's likelihood to the loss (as in RPO), which keeps the
    model from drifting from the answers it learned in SFT. With `held_out` preferences the
    report's `final` carries their reward accuracy and margin after training. Returns the
    adapter's folder (`work_dir/adapter`) and the report.
    """
    recorder = StepRecorder(name, progress)
    with _no_tqdm():
        trainer = dpo_trainer(
            stack,
            preferences,
            work_dir,
            hyper,
            beta=beta,
            sft_weight=sft_weight,
            held_out=held_out,
            callbacks=[recorder.callback()],
        )
        score_labels_only(trainer)
        recorder.attach(trainer)
        dataset = trainer.train_dataset
        lengths = [
            2 * len(p) + len(c) + len(r)
            for p, c, r in zip(
                dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"], strict=True
            )
        ]
        recorder.train(trainer, lengths, hyper.epochs)
        if held_out:
            scores = trainer.evaluate()
            recorder.report.final[HELD_OUT_ACCURACY] = round(
                float(scores["eval_rewards/accuracies"]), 4
            )
            recorder.report.final[HELD_OUT_MARGIN] = round(float(scores["eval_rewards/margins"]), 4)
    adapter = save_adapter(trainer, work_dir)
    recorder.report.save(work_dir / REPORT)
    log.info(
        "%s: %d pairs, %d steps in %.1fs, last loss %s, held-out reward accuracy %s",
        name,
        len(lengths),
        recorder.report.steps,
        recorder.report.seconds,
        recorder.report.last_loss,
        recorder.report.final.get(HELD_OUT_ACCURACY),
    )
    return adapter, recorder.report


def dpo_trainer(
    stack: ModelStack,
    preferences: Sequence[Preference],
    work_dir: Path,
    hyper: Hyperparameters,
    *,
    beta: float = 0.1,
    sft_weight: float = 0.0,
    held_out: Sequence[Preference] = (),
    callbacks: Sequence[TrainerCallback] = (),
) -> Any:
    """trl's DPOTrainer on the preferences, reference = the stack with the adapter off
    (`train_dpo` runs it with `score_labels_only`)."""
    from trl import DPOConfig, DPOTrainer

    if not preferences:
        raise ValueError(f"{work_dir.name}: no preference pairs to train on")
    quiet_libraries()
    losses = ["sigmoid", "sft"] if sft_weight > 0 else ["sigmoid"]
    args = DPOConfig(
        **trainer_arguments(work_dir, hyper, data_size=len(preferences)),
        max_length=hyper.max_length,
        beta=beta,
        loss_type=losses,
        loss_weights=[1.0, sft_weight] if sft_weight > 0 else None,
        # one pair per batch: the held-out reward accuracy is then the share of pairs
        per_device_eval_batch_size=1,
    )
    return DPOTrainer(
        model=stack.load(),
        ref_model=None,
        args=args,
        train_dataset=_rows(preferences),
        eval_dataset=_rows(held_out) if held_out else None,
        processing_class=stack.tokenizer(),
        peft_config=hyper.lora.peft_config(stack.layer_count()),
        callbacks=list(callbacks),
    )


def _rows(preferences: Sequence[Preference]) -> HFDataset:
    from datasets import Dataset as HFDataset

    return HFDataset.from_list(
        [
            {
                "prompt": chat_rows(p.prompt),
                "chosen": [{"role": "assistant", "content": p.chosen}],
                "rejected": [{"role": "assistant", "content": p.rejected}],
            }
            for p in preferences
        ]
    )


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
