"""The recipe a run trains with: the owner's SFT set apart from the shared one's, explicit
`[training]` values winning, and the sample counts scaled to the base and the device."""

from __future__ import annotations

import json
from pathlib import Path

from training.recipe import (
    CPU_OWNER_SAMPLES,
    CPU_TRAIN_SAMPLES,
    RunOptions,
    fast_recipe,
    recipe_for,
)
from twin.config import TrainingSettings


def base_folder(tmp_path: Path, hidden: int, layers: int) -> Path:
    """A model folder with only the config the recipe reads."""
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "intermediate_size": hidden * 8 // 3,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
    }
    folder = tmp_path / f"base-{hidden}-{layers}"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_owner_s_sft_trains_harder_than_the_shared_one_and_settings_win(
    tmp_path: Path,
) -> None:
    base = base_folder(tmp_path, 576, 30)  # the packaged 135M base's shape
    default = recipe_for(
        TrainingSettings(), RunOptions(), base_dir=base, max_positions=8192, on_gpu=False
    )
    assert default.sft_owner.epochs > default.sft.epochs
    assert default.sft_owner.learning_rate > default.sft.learning_rate
    assert (default.train_samples, default.owner_samples) == (CPU_TRAIN_SAMPLES, CPU_OWNER_SAMPLES)
    assert default.context_size == 2048

    chosen = TrainingSettings(owner_sft_epochs=1.5, owner_sft_learning_rate=1e-4, sft_epochs=3)
    recipe = recipe_for(chosen, RunOptions(seed=7), base_dir=base, max_positions=1024, on_gpu=False)
    assert (recipe.sft_owner.epochs, recipe.sft_owner.learning_rate) == (1.5, 1e-4)
    assert recipe.sft.epochs == 3
    assert {recipe.sft.seed, recipe.sft_owner.seed} == {7}
    assert recipe.context_size == 1024


def test_a_bigger_base_gets_fewer_samples_and_a_fast_run_the_smoke_recipe(
    tmp_path: Path,
) -> None:
    big = base_folder(tmp_path, 1152, 60)
    recipe = recipe_for(
        TrainingSettings(), RunOptions(), base_dir=big, max_positions=8192, on_gpu=False
    )
    assert recipe.train_samples < CPU_TRAIN_SAMPLES
    assert recipe.owner_samples < CPU_OWNER_SAMPLES
    fast = recipe_for(
        TrainingSettings(), RunOptions(fast=True), base_dir=big, max_positions=8192, on_gpu=False
    )
    assert fast.train_samples == fast_recipe().train_samples
