"""What a training run is asked to do (`RunOptions`) and every number it trains with (`Recipe`).

The numbers follow the base and the machine. On a CPU a LoRA step costs time in proportion to
the base's size, so the recipe fixes a budget of training tokens that fits the run in about
fifteen minutes on two cores with the packaged 135M base, and scales it down for bigger bases
and up on a GPU. Values set explicitly in `[training]` (twin.toml) win over the recipe's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from training.bases import DEFAULT_BASE
from training.lora import LoraSpec
from training.sft import Hyperparameters
from twin.config import TrainingSettings
from twin.tasks import CoTStrategy, PromptBudget

# The packaged base, and what fits the time budget with it on two CPU cores: LoRA SFT on the
# 135M base trains at about 170 tokens/s there in float32 (prompt and answer ~300 tokens), so
# the two SFT trainers get about 115k tokens and DPO the rest of the fifteen minutes.
REFERENCE_PARAMETERS = 135e6
CPU_TRAIN_SAMPLES = 128
CPU_OWNER_SAMPLES = 96
CPU_PAIRS = 48
CPU_HELD_OUT_PAIRS = 32
CPU_EVAL_SAMPLES = 12


@dataclass(frozen=True)
class RunOptions:
    """What the person asked for: which base, which CoT strategy, how hard to work."""

    # A packaged base's name, a model folder, a .gguf file or a hub id.
    base: str = DEFAULT_BASE
    strategy: CoTStrategy = CoTStrategy.WEAK
    # torch and llama.cpp threads; 0 = every core
    threads: int = 0
    # a minute-long smoke run (a few samples, one pass); the result is not a useful twin
    fast: bool = False
    promote: bool = True
    seed: int = 0

    @classmethod
    def from_settings(cls, training: TrainingSettings, **overrides: object) -> RunOptions:
        """Options from the `[training]` settings, with command-line `overrides` (None = unset)."""
        values: dict[str, object] = {
            "base": training.base or DEFAULT_BASE,
            "strategy": CoTStrategy(training.strategy),
            "seed": training.seed,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Recipe:
    """Every number a run trains with, fixed when the run starts (and kept for a resume)."""

    budget: PromptBudget
    # SFT of the shared model, then of the owner's model on top of it
    sft: Hyperparameters
    sft_owner: Hyperparameters
    # None = no preference training
    dpo: Hyperparameters | None
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 0.2
    context_size: int = 2048
    max_new_tokens: int = 160
    # training samples per model (the owner's model also starts from the shared one's SFT)
    train_samples: int = CPU_TRAIN_SAMPLES
    owner_samples: int = CPU_OWNER_SAMPLES
    # preference pairs per model for DPO, and held out to measure it
    pairs: int = CPU_PAIRS
    held_out_pairs: int = CPU_HELD_OUT_PAIRS
    # held-out samples evaluated per model (None = all)
    eval_samples: int | None = CPU_EVAL_SAMPLES


def parameter_count(model_dir: Path) -> float:
    """About how many parameters the model in `model_dir` has, from its config alone."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    c = config.get("text_config") or config
    hidden, layers = int(c["hidden_size"]), int(c["num_hidden_layers"])
    intermediate = int(c.get("intermediate_size") or 4 * hidden)
    heads = int(c["num_attention_heads"])
    kv_heads = int(c.get("num_key_value_heads") or heads)
    head_dim = int(c.get("head_dim") or hidden // heads)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    embeddings = int(c["vocab_size"]) * hidden * (1 if c.get("tie_word_embeddings") else 2)
    return float(embeddings + layers * (attention + 3 * hidden * intermediate))


def recipe_for(
    training: TrainingSettings,
    options: RunOptions,
    *,
    base_dir: Path,
    max_positions: int,
    on_gpu: bool,
) -> Recipe:
    """The recipe for this run: scaled to the base's size and the device, the smoke recipe
    for `options.fast`, and the values set explicitly in `[training]` on top."""
    if options.fast:
        return _seeded(fast_recipe(), options.seed)
    scale = 8.0 if on_gpu else min(2.0, REFERENCE_PARAMETERS / parameter_count(base_dir))
    lora = LoraSpec(
        r=training.lora_r,
        alpha=training.lora_alpha,
        dropout=training.lora_dropout,
        # on a CPU, adapting the top blocks only keeps back-propagation short
        top_layers=None if on_gpu else training.lora_top_layers,
    )
    sft = Hyperparameters(
        epochs=training.sft_epochs,
        learning_rate=training.sft_learning_rate,
        batch_size=training.batch_size,
        max_length=training.max_length,
        lora=lora,
    )
    dpo = replace(sft, epochs=training.dpo_epochs, learning_rate=training.dpo_learning_rate)
    recipe = Recipe(
        budget=PromptBudget(memories=4, chars_per_memory=200, bio=False),
        sft=sft,
        sft_owner=replace(
            sft, epochs=training.owner_sft_epochs, learning_rate=training.owner_sft_learning_rate
        ),
        dpo=dpo if training.dpo_epochs > 0 else None,
        dpo_beta=training.dpo_beta,
        context_size=min(2048, max_positions),
        train_samples=_scaled(CPU_TRAIN_SAMPLES, scale),
        owner_samples=_scaled(CPU_OWNER_SAMPLES, scale),
        pairs=_scaled(CPU_PAIRS, scale),
        held_out_pairs=_scaled(CPU_HELD_OUT_PAIRS, scale),
        eval_samples=_scaled(CPU_EVAL_SAMPLES, scale),
    )
    return _seeded(recipe, options.seed)


def fast_recipe() -> Recipe:
    """A smoke run: one pass over a handful of samples, short replies."""
    one = Hyperparameters(
        epochs=1,
        learning_rate=5e-4,
        batch_size=4,
        max_length=384,
        lora=LoraSpec(r=4, alpha=8, top_layers=4),
    )
    return Recipe(
        budget=PromptBudget(memories=3, chars_per_memory=140, bio=False),
        sft=one,
        sft_owner=one,
        dpo=replace(one, learning_rate=2e-4),
        context_size=1024,
        max_new_tokens=40,
        train_samples=12,
        owner_samples=8,
        pairs=8,
        held_out_pairs=4,
        eval_samples=4,
    )


def _scaled(count: int, scale: float) -> int:
    return max(8, round(count * scale))


def _seeded(recipe: Recipe, seed: int) -> Recipe:
    return replace(
        recipe,
        sft=replace(recipe.sft, seed=seed),
        sft_owner=replace(recipe.sft_owner, seed=seed),
        dpo=replace(recipe.dpo, seed=seed) if recipe.dpo else None,
    )
