"""What a training run is asked to do (`RunOptions`) and every number it trains with (`Recipe`).

The tiny base and a pretrained base need different numbers: a model trained from scratch wants
high learning rates and many passes over little text; a LoRA on a pretrained model wants the
opposite. `recipe_for` picks the recipe for a run's options; the `[training]` settings are the
pretrained recipe, and values set there explicitly also override the tiny one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from training.sft import Hyperparameters, LoraSpec
from training.tiny import DEFAULT_TINY_SIZE, tiny_size
from twin.config import TrainingSettings
from twin.tasks import CoTStrategy, PromptBudget


@dataclass(frozen=True)
class RunOptions:
    """What the person asked for: which base, which CoT strategy, how hard to work."""

    # A model folder or hub id; empty trains the tiny base from scratch.
    base: str = ""
    strategy: CoTStrategy = CoTStrategy.STRONG
    tiny_size: str = DEFAULT_TINY_SIZE
    # torch and llama.cpp threads; 0 = every core
    threads: int = 0
    # a seconds-long smoke run (micro model, a few samples); the result is not a useful twin
    fast: bool = False
    promote: bool = True
    seed: int = 0

    @property
    def tiny(self) -> bool:
        return not self.base.strip()

    @classmethod
    def from_settings(cls, training: TrainingSettings, **overrides: object) -> RunOptions:
        """Options from the `[training]` settings, with command-line `overrides` (None = unset)."""
        values: dict[str, object] = {
            "base": training.base,
            "strategy": CoTStrategy(training.strategy),
            "seed": training.seed,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Recipe:
    """Every number a run trains with, fixed when the run starts (and kept for a resume)."""

    budget: PromptBudget
    # SFT of the shared model; the tiny base first learns the memory text (`pretrain`)
    sft: Hyperparameters
    sft_owner: Hyperparameters
    pretrain: Hyperparameters | None = None
    # the owner's model reads all memory text before its SFT (tiny base only)
    owner_text: Hyperparameters | None = None
    # None = no preference training
    dpo: Hyperparameters | None = None
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 0.0
    tokenizer_vocab: int = 4096
    context_size: int = 2048
    max_new_tokens: int = 256
    # training samples per model whose SFT answers are checked for DPO pairs
    model_pair_samples: int = 64
    # held-out samples evaluated per model (None = all)
    eval_samples: int | None = None
    # training samples per model to synthesize (None = the synthesizer's default)
    train_samples: int | None = None
    memory_doc_chars: int = 1200


def tiny_recipe(size_name: str) -> Recipe:
    """The tiny base's recipe: high learning rates (the weights start random), many epochs over
    a small dataset (a model this small learns facts by seeing them often), little context
    per prompt. The owner's model starts from the shared one and needs fewer passes."""
    size = tiny_size(size_name)
    length = min(768, size.context)
    sft = Hyperparameters(epochs=12, learning_rate=3e-3, batch_size=8, max_length=length)
    return Recipe(
        budget=PromptBudget(memories=2, chars_per_memory=160, bio=False),
        pretrain=Hyperparameters(epochs=2, learning_rate=3e-3, batch_size=16, max_length=512),
        sft=sft,
        owner_text=Hyperparameters(epochs=1, learning_rate=2e-3, batch_size=16, max_length=512),
        sft_owner=replace(sft, epochs=4),
        dpo=Hyperparameters(epochs=1, learning_rate=5e-5, batch_size=8, max_length=length),
        dpo_beta=0.1,
        dpo_sft_weight=1.0,
        tokenizer_vocab=size.vocab,
        context_size=size.context,
        max_new_tokens=160,
        model_pair_samples=64,
        eval_samples=120,
        train_samples=800,
    )


def fast_recipe(lora: LoraSpec | None = None) -> Recipe:
    """A smoke run: one pass over a handful of samples, short replies. On the tiny base the
    micro model; on a pretrained base LoRA (`lora`) and no pretraining."""
    one = Hyperparameters(epochs=1, learning_rate=3e-3, batch_size=8, max_length=384, lora=lora)
    micro = tiny_size("micro")
    return Recipe(
        budget=PromptBudget(memories=2, chars_per_memory=120, bio=False),
        pretrain=one if lora is None else None,
        sft=replace(one, epochs=2),
        owner_text=one if lora is None else None,
        sft_owner=replace(one, epochs=2),
        dpo=replace(one, learning_rate=1e-4),
        dpo_sft_weight=1.0,
        tokenizer_vocab=micro.vocab,
        context_size=micro.context if lora is None else 2048,
        max_new_tokens=24,
        model_pair_samples=4,
        eval_samples=4,
        train_samples=48,
        memory_doc_chars=600,
    )


def lora_spec(training: TrainingSettings) -> LoraSpec:
    return LoraSpec(r=training.lora_r, alpha=training.lora_alpha, dropout=training.lora_dropout)


def pretrained_recipe(training: TrainingSettings) -> Recipe:
    """LoRA on a pretrained base, straight from the `[training]` settings."""
    lora = lora_spec(training)
    sft = Hyperparameters(
        epochs=training.sft_epochs,
        learning_rate=training.sft_learning_rate,
        batch_size=training.batch_size,
        max_length=training.max_length,
        seed=training.seed,
        lora=lora,
    )
    dpo = replace(sft, epochs=training.dpo_epochs, learning_rate=training.dpo_learning_rate)
    return Recipe(
        budget=PromptBudget(),
        sft=sft,
        sft_owner=sft,
        dpo=dpo if training.dpo_epochs > 0 else None,
        dpo_beta=training.dpo_beta,
        context_size=2048,
        max_new_tokens=256,
        model_pair_samples=32,
        eval_samples=60,
    )


# Settings that, when set explicitly in twin.toml or the environment, override the tiny recipe.
_EXPLICIT = ("sft_epochs", "sft_learning_rate", "dpo_epochs", "dpo_learning_rate", "max_length")


def recipe_for(training: TrainingSettings, options: RunOptions) -> Recipe:
    """The recipe for this run. The tiny base has its own defaults (a model trained from
    scratch needs other numbers than a LoRA); values set explicitly in `[training]` still win.
    The smoke run ignores them: it must stay seconds long."""
    if options.fast:
        return _seeded(fast_recipe(None if options.tiny else lora_spec(training)), options.seed)
    if not options.tiny:
        return _seeded(pretrained_recipe(training), options.seed)
    recipe = tiny_recipe(options.tiny_size)
    explicit = training.model_fields_set
    sft_changes = {}
    if "sft_epochs" in explicit:
        sft_changes["epochs"] = training.sft_epochs
    if "sft_learning_rate" in explicit:
        sft_changes["learning_rate"] = training.sft_learning_rate
    if "max_length" in explicit:
        sft_changes["max_length"] = training.max_length
    if "batch_size" in explicit:
        sft_changes["batch_size"] = training.batch_size
    recipe = replace(
        recipe,
        sft=replace(recipe.sft, **sft_changes),
        sft_owner=replace(recipe.sft_owner, **sft_changes),
    )
    if recipe.dpo is not None:
        dpo_changes = {}
        if "dpo_learning_rate" in explicit:
            dpo_changes["learning_rate"] = training.dpo_learning_rate
        if "dpo_epochs" in explicit:
            dpo_changes["epochs"] = training.dpo_epochs
        dpo = replace(recipe.dpo, **dpo_changes)
        recipe = replace(recipe, dpo=dpo if dpo.epochs > 0 else None)
    if "dpo_beta" in explicit:
        recipe = replace(recipe, dpo_beta=training.dpo_beta)
    return _seeded(recipe, options.seed)


def _seeded(recipe: Recipe, seed: int) -> Recipe:
    def with_seed(hyper: Hyperparameters | None) -> Hyperparameters | None:
        return replace(hyper, seed=seed) if hyper else None

    return replace(
        recipe,
        pretrain=with_seed(recipe.pretrain),
        sft=replace(recipe.sft, seed=seed),
        owner_text=with_seed(recipe.owner_text),
        sft_owner=replace(recipe.sft_owner, seed=seed),
        dpo=with_seed(recipe.dpo),
    )
