"""The offline base: a tokenizer trained on the twin's text and a Qwen2 model made from scratch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from training.tiny import (
    CHATML_TEMPLATE,
    TINY_SIZES,
    TURN_END,
    create_model,
    load_tokenizer,
    tiny_size,
    train_tokenizer,
)

TEXTS = [
    "Biscuit the greyhound sleeps on the sofa after his walk along the Tejo.",
    "Rehearsal with the Graça orchestra on Wednesday: cello part, bars 40 to 72.",
    "Bouldering at Vertigo with Tomás on Tuesday and Thursday evenings.",
] * 20


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(TEXTS, tmp_path_factory.mktemp("tokenizer"), vocab_size=400)


def test_tokenizer_learns_the_words_of_its_texts(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    # frequent words of the training text become single tokens
    for word in (" greyhound", " orchestra", " Vertigo"):
        assert len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1, word
    # byte-level: text it never saw still round-trips exactly
    unseen = "Zürich 🦑 ∑ 東京 — naïve"
    ids = tokenizer(unseen, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == unseen
    assert len(tokenizer) <= 400


def test_tokenizer_folder_has_chatml_and_loads_alike_everywhere(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    assert tokenizer.eos_token == TURN_END
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.chat_template == CHATML_TEMPLATE
    pipeline = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "Who minds Biscuit on Wednesday?"
    expected = pipeline.encode(text, add_special_tokens=False).ids
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == expected
    assert auto(text, add_special_tokens=False)["input_ids"] == expected
    # the ChatML markers are single special tokens
    assert len(pipeline.encode("<|im_start|>", add_special_tokens=False).ids) == 1


def test_chat_template_marks_exactly_the_reply_and_its_end_for_the_loss(
    tokenizer_dir: Path,
) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    messages = [
        {"role": "system", "content": "You are the twin."},
        {"role": "user", "content": "What is the dog called?"},
        {"role": "assistant", "content": "Biscuit."},
    ]
    encoded = tokenizer.apply_chat_template(
        messages, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = [token for token, bit in zip(ids, mask, strict=True) if bit]
    # the reply and the token that stops generation, nothing of the prompt
    assert tokenizer.decode(trained) == "Biscuit." + TURN_END
    prompt = tokenizer.apply_chat_template(
        messages[:2], add_generation_prompt=True, return_dict=False
    )
    assert ids[: len(prompt)] == prompt
    assert not any(mask[: len(prompt)])


def test_model_is_sized_by_its_preset(tokenizer_dir: Path, tmp_path: Path) -> None:
    size = TINY_SIZES["micro"]
    model = create_model(tokenizer_dir, size, tmp_path / "model", seed=3)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["hidden_size"] == size.hidden
    assert config["num_hidden_layers"] == size.layers
    assert config["num_key_value_heads"] == size.kv_heads
    assert config["max_position_embeddings"] == size.context
    assert config["tie_word_embeddings"] is True
    # embedding rows: the tokenizer's length rounded up to a multiple of 64
    tokenizer = load_tokenizer(tokenizer_dir)
    assert config["vocab_size"] % 64 == 0
    assert len(tokenizer) <= config["vocab_size"] < len(tokenizer) + 64
    assert config["eos_token_id"] == tokenizer.eos_token_id
    real = sum(p.numel() for p in model.parameters())
    assert real == replace(size, vocab=config["vocab_size"]).parameter_count()
    # the folder is a complete base: the tokenizer sits beside the weights
    assert load_tokenizer(tmp_path / "model").chat_template == CHATML_TEMPLATE


def test_same_seed_same_model(tokenizer_dir: Path, tmp_path: Path) -> None:
    import torch

    first = create_model(tokenizer_dir, TINY_SIZES["micro"], tmp_path / "a", seed=1)
    again = create_model(tokenizer_dir, TINY_SIZES["micro"], tmp_path / "b", seed=1)
    other = create_model(tokenizer_dir, TINY_SIZES["micro"], tmp_path / "c", seed=2)
    weights = first.model.embed_tokens.weight
    assert torch.equal(weights, again.model.embed_tokens.weight)
    assert not torch.equal(weights, other.model.embed_tokens.weight)


def test_unknown_size_lists_the_presets() -> None:
    with pytest.raises(ValueError, match=r"micro.*small.*base"):
        tiny_size("huge")
