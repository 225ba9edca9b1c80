"""SFT and DPO on real (tiny) models: full training for the tiny base, LoRA for a pretrained one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from training.dpo import Preference, train_dpo
from training.sft import Hyperparameters, LoraSpec, TrainReport, train_language_model, train_sft
from training.tiny import TINY_SIZES, create_model, load_tokenizer, train_tokenizer
from twin.llm.base import ChatMessage
from twin.llm.hf_transformers import TransformersLLM

SYSTEM = ChatMessage("system", "You are the AI twin of Ada.")
TAUGHT = {
    "What is my cat called?": "Your cat is called Pixel.",
    "Which instrument do I play?": "You play the oboe.",
}


def conversations() -> list[list[ChatMessage]]:
    return [
        [SYSTEM, ChatMessage("user", q), ChatMessage("assistant", a)] for q, a in TAUGHT.items()
    ]


def prompt(question: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage("user", question)]


def reply_log_prob(model_dir: Path, question: str, reply: str) -> float:
    """log p(reply + end of turn | prompt) under the model in `model_dir`."""
    tokenizer = load_tokenizer(model_dir)
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    rows = [{"role": m.role, "content": m.content} for m in prompt(question)]
    prefix = tokenizer.apply_chat_template(rows, add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(
        [*rows, {"role": "assistant", "content": reply}], return_dict=False
    )
    ids = torch.tensor([full])
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].log_softmax(-1)
    targets = ids[0, 1:]
    picked = logits[torch.arange(len(targets)), targets]
    return float(picked[len(prefix) - 1 :].sum())


@pytest.fixture(scope="module")
def micro_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh micro model with a tokenizer trained on the conversations."""
    root = tmp_path_factory.mktemp("micro")
    texts = [m.content for c in conversations() for m in c] * 5
    tokenizer = train_tokenizer(texts, root / "tokenizer", vocab_size=300, min_frequency=1)
    create_model(tokenizer, TINY_SIZES["micro"], root / "base", seed=0)
    return root / "base"


@pytest.fixture(scope="module")
def sft_model(micro_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    hyper = Hyperparameters(epochs=60, learning_rate=3e-3, batch_size=2, max_length=128)
    model_dir, _ = train_sft(
        micro_base, conversations(), tmp_path_factory.mktemp("sft"), hyper, name="sft"
    )
    return model_dir


def test_full_sft_teaches_the_replies(sft_model: Path) -> None:
    llm = TransformersLLM(sft_model)
    for question, answer in TAUGHT.items():
        assert llm.complete(prompt(question)) == answer
    report = TrainReport.load(sft_model.parent / "report.json")
    assert report.steps == 60
    assert report.examples == 2
    assert report.tokens > 60 * 2 * 20
    assert report.losses[-1].loss < report.losses[0].loss / 5


def test_progress_is_reported_per_step(micro_base: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    hyper = Hyperparameters(epochs=3, learning_rate=1e-3, batch_size=1, max_length=128)
    texts = ["Pixel sleeps on the piano.", "The oboe is in its case."]
    model_dir, report = train_language_model(
        micro_base, texts, tmp_path, hyper, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[0] == (0, 6)
    assert calls[-1] == (6, 6)
    assert [done for done, _ in calls[1:]] == [1, 2, 3, 4, 5, 6]
    assert report.steps == 6
    # a complete model folder: weights and the base's tokenizer, byte for byte
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").read_bytes() == (
        micro_base / "tokenizer.json"
    ).read_bytes()
    assert not (tmp_path / "trainer").exists()


def test_full_dpo_prefers_the_chosen_reply(sft_model: Path, tmp_path: Path) -> None:
    question = "What is my cat called?"
    chosen, rejected = "Your cat is called Pixel.", "Your cat is called Oboe."
    preferences = [Preference(tuple(prompt(question)), chosen, rejected)] * 4
    before = reply_log_prob(sft_model, question, chosen) - reply_log_prob(
        sft_model, question, rejected
    )
    hyper = Hyperparameters(epochs=3, learning_rate=1e-3, batch_size=2, max_length=128)
    model_dir, report = train_dpo(sft_model, preferences, tmp_path, hyper, beta=0.1)
    after = reply_log_prob(model_dir, question, chosen) - reply_log_prob(
        model_dir, question, rejected
    )
    assert after > before + 1.0
    assert report.final["rewards/accuracies"] == 1.0
    assert report.steps == 6


def test_no_data_is_an_error(micro_base: Path, tmp_path: Path) -> None:
    hyper = Hyperparameters(epochs=1, learning_rate=1e-3, batch_size=1, max_length=64)
    with pytest.raises(ValueError, match="no conversations"):
        train_sft(micro_base, [], tmp_path, hyper)
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo(micro_base, [], tmp_path, hyper)


# -- LoRA on a "pretrained" base (the tiny random Qwen2 stands in for one) -------------------


LORA = LoraSpec(r=8, alpha=16, dropout=0.0)


@pytest.fixture(scope="module")
def lora_sft(tiny_qwen2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("pretrained") / "base"
    shutil.copytree(tiny_qwen2_dir, base)
    hyper = Hyperparameters(epochs=40, learning_rate=1e-2, batch_size=2, max_length=128, lora=LORA)
    model_dir, _ = train_sft(base, conversations(), tmp_path_factory.mktemp("lora-sft"), hyper)
    return model_dir


def test_lora_sft_trains_an_adapter_and_merges_it(lora_sft: Path, tiny_qwen2_dir: Path) -> None:
    adapter = lora_sft.parent / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir)
    merged = AutoModelForCausalLM.from_pretrained(lora_sft)
    # the attention and MLP projections changed, the embeddings (not adapted) did not
    assert not torch.equal(
        base.model.layers[0].self_attn.q_proj.weight, merged.model.layers[0].self_attn.q_proj.weight
    )
    assert not torch.equal(
        base.model.layers[1].mlp.down_proj.weight, merged.model.layers[1].mlp.down_proj.weight
    )
    assert torch.equal(base.model.embed_tokens.weight, merged.model.embed_tokens.weight)
    llm = TransformersLLM(lora_sft)
    for question, answer in TAUGHT.items():
        assert llm.complete(prompt(question)) == answer
    assert (lora_sft / "tokenizer.json").read_bytes() == (
        tiny_qwen2_dir / "tokenizer.json"
    ).read_bytes()


def test_lora_dpo_uses_the_adapter_free_model_as_reference(lora_sft: Path, tmp_path: Path) -> None:
    question = "Which instrument do I play?"
    chosen, rejected = "You play the oboe.", "You play the cat."
    preferences = [Preference(tuple(prompt(question)), chosen, rejected)] * 4
    before = reply_log_prob(lora_sft, question, chosen) - reply_log_prob(
        lora_sft, question, rejected
    )
    hyper = Hyperparameters(epochs=3, learning_rate=5e-3, batch_size=2, max_length=128, lora=LORA)
    model_dir, report = train_dpo(lora_sft, preferences, tmp_path, hyper, beta=0.1)
    after = reply_log_prob(model_dir, question, chosen) - reply_log_prob(
        model_dir, question, rejected
    )
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert after > before + 0.5
    # at the first step policy and reference are the same model: the loss is exactly log 2
    assert report.losses[0].loss == pytest.approx(0.6931, abs=1e-3)
