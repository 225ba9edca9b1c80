"""LoRA SFT and DPO on a real model (a tiny random Qwen2 stands in for a pretrained base):
adapters that teach, stack, merge, and a DPO whose held-out reward accuracy moves."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from lm.base import ChatMessage
from lm.hf_transformers import TransformersLLM
from training.dpo import HELD_OUT_ACCURACY, Preference, dpo_trainer, train_dpo
from training.lora import LoraSpec, ModelStack, cpu_has_bf16
from training.reply_head import score_labels_only
from training.sft import Hyperparameters, TrainReport, sft_trainer, train_sft

SYSTEM = ChatMessage("system", "You are the AI twin of Ada.")
TAUGHT = {
    "What is my cat called?": "Your cat is called Pixel.",
    "Which instrument do I play?": "You play the oboe.",
}
LORA = LoraSpec(r=8, alpha=16, dropout=0.0)


def conversations() -> list[list[ChatMessage]]:
    return [
        [SYSTEM, ChatMessage("user", q), ChatMessage("assistant", a)] for q, a in TAUGHT.items()
    ]


def prompt(question: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage("user", question)]


def reply_log_prob(stack: ModelStack, question: str, reply: str) -> float:
    """log p(reply + end of turn | prompt) under the merged `stack`."""
    tokenizer = stack.tokenizer()
    model = stack.load().eval()
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


def margin(stack: ModelStack, question: str, chosen: str, rejected: str) -> float:
    return reply_log_prob(stack, question, chosen) - reply_log_prob(stack, question, rejected)


@pytest.fixture(scope="module")
def base(tiny_qwen2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelStack:
    folder = tmp_path_factory.mktemp("pretrained") / "base"
    shutil.copytree(tiny_qwen2_dir, folder)
    return ModelStack(folder)


@pytest.fixture(scope="module")
def sft(base: ModelStack, tmp_path_factory: pytest.TempPathFactory) -> ModelStack:
    hyper = Hyperparameters(epochs=40, learning_rate=1e-2, batch_size=2, max_length=128, lora=LORA)
    adapter, _ = train_sft(base, conversations(), tmp_path_factory.mktemp("lora-sft"), hyper)
    return base.plus(adapter)


def test_lora_sft_teaches_the_replies_with_a_small_adapter(
    sft: ModelStack, base: ModelStack
) -> None:
    (adapter,) = sft.adapters
    assert (adapter / "adapter_config.json").is_file()
    assert sum(p.stat().st_size for p in adapter.iterdir()) < 2_000_000
    plain, merged = base.load(), sft.load()
    # the attention and MLP projections changed, the embeddings (not adapted) did not
    assert not torch.equal(
        plain.model.layers[0].self_attn.q_proj.weight,
        merged.model.layers[0].self_attn.q_proj.weight,
    )
    assert not torch.equal(
        plain.model.layers[1].mlp.down_proj.weight, merged.model.layers[1].mlp.down_proj.weight
    )
    assert torch.equal(plain.model.embed_tokens.weight, merged.model.embed_tokens.weight)
    report = TrainReport.load(adapter.parent / "report.json")
    assert report.steps == 40 and report.examples == 2
    assert report.losses[-1].loss < report.losses[0].loss / 5
    assert not (adapter.parent / "trainer").exists()


def test_a_merged_stack_answers_as_trained(sft: ModelStack, tmp_path: Path) -> None:
    folder = sft.save_merged(tmp_path / "merged")
    llm = TransformersLLM(folder)
    for question, answer in TAUGHT.items():
        assert llm.complete(prompt(question)) == answer
    # the base's tokenizer and chat template, byte for byte
    assert (folder / "tokenizer.json").read_bytes() == (sft.base / "tokenizer.json").read_bytes()


def test_only_the_top_layers_are_adapted_when_asked(base: ModelStack, tmp_path: Path) -> None:
    top = LoraSpec(r=4, alpha=8, dropout=0.0, top_layers=1)
    hyper = Hyperparameters(epochs=2, learning_rate=1e-2, batch_size=2, max_length=128, lora=top)
    adapter, _ = train_sft(base, conversations(), tmp_path, hyper)
    plain, merged = base.load(), base.plus(adapter).load()
    assert torch.equal(
        plain.model.layers[0].self_attn.q_proj.weight,
        merged.model.layers[0].self_attn.q_proj.weight,
    )
    assert not torch.equal(
        plain.model.layers[1].self_attn.q_proj.weight,
        merged.model.layers[1].self_attn.q_proj.weight,
    )


def test_progress_is_reported_per_step(base: ModelStack, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    hyper = Hyperparameters(epochs=3, learning_rate=1e-3, batch_size=1, max_length=128, lora=LORA)
    _, report = train_sft(
        base, conversations(), tmp_path, hyper, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (0, 6)
    assert calls[-1] == (6, 6)
    assert [done for done, _ in calls[1:]] == [1, 2, 3, 4, 5, 6]
    assert report.steps == 6


def test_dpo_moves_the_model_and_measures_held_out_pairs(sft: ModelStack, tmp_path: Path) -> None:
    question = "Which instrument do I play?"
    chosen, rejected = "You play the oboe.", "You play the cat."
    preferences = [Preference(tuple(prompt(question)), chosen, rejected)] * 4
    held_out = [Preference(tuple(prompt("What do I play?")), chosen, rejected)] * 2
    before = margin(sft, question, chosen, rejected)
    hyper = Hyperparameters(epochs=3, learning_rate=5e-3, batch_size=2, max_length=128, lora=LORA)
    adapter, report = train_dpo(sft, preferences, tmp_path, hyper, beta=0.1, held_out=held_out)
    after = margin(sft.plus(adapter), question, chosen, rejected)
    assert (adapter / "adapter_config.json").is_file()
    assert after > before + 0.5
    # at the first step policy and reference (the SFT model) agree: the loss is exactly log 2
    assert report.losses[0].loss == pytest.approx(0.6931, abs=1e-3)
    # the held-out pairs share the lesson, so the trained model prefers their chosen replies
    assert report.final[HELD_OUT_ACCURACY] == 1.0


def test_held_out_reward_accuracy_is_the_share_of_pairs(sft: ModelStack, tmp_path: Path) -> None:
    question = "Which instrument do I play?"
    chosen, rejected = "You play the oboe.", "You play the cat."
    preferences = [Preference(tuple(prompt(question)), chosen, rejected)] * 4
    # two held-out pairs agree with the lesson and one is its reverse: 2 of 3 pairs, whatever
    # the batch size (a mean over batches of 2 would give 0.5 or 0.75)
    held_out = [Preference(tuple(prompt("What do I play?")), chosen, rejected)] * 2
    held_out.append(Preference(tuple(prompt("What do I play?")), rejected, chosen))
    hyper = Hyperparameters(epochs=3, learning_rate=5e-3, batch_size=2, max_length=128, lora=LORA)
    _, report = train_dpo(sft, preferences, tmp_path, hyper, beta=0.1, held_out=held_out)
    assert report.final[HELD_OUT_ACCURACY] == pytest.approx(2 / 3, abs=1e-4)


def loss_and_gradients(trainer: Any, batch: dict[str, Any]) -> tuple[float, list[torch.Tensor]]:
    model = trainer.model
    for p in model.parameters():
        p.grad = None
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def assert_same_loss_and_gradients(trainer: Any) -> None:
    """trl's own head and `score_labels_only` give the trainer the same loss and gradients."""
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    theirs, their_grads = loss_and_gradients(trainer, batch)
    score_labels_only(trainer)
    ours, our_grads = loss_and_gradients(trainer, batch)
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(our_grads, their_grads, strict=True))


def test_the_labels_only_head_gives_sft_trls_loss_and_gradients(
    base: ModelStack, tmp_path: Path
) -> None:
    hyper = Hyperparameters(epochs=1, learning_rate=1e-3, batch_size=2, max_length=128, lora=LORA)
    trainer = sft_trainer(base, conversations(), tmp_path, hyper)
    labels = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["labels"]
    # the prompt is scored by neither: only the reply's tokens carry labels
    assert 0 < int((labels != -100).sum()) < labels.numel() // 2
    assert_same_loss_and_gradients(trainer)


def test_the_labels_only_head_gives_dpo_trls_loss_and_gradients(
    sft: ModelStack, tmp_path: Path
) -> None:
    hyper = Hyperparameters(epochs=1, learning_rate=1e-3, batch_size=2, max_length=128, lora=LORA)
    pairs = [
        Preference(tuple(prompt(q)), a, a.replace("Pixel", "Mochi").replace("oboe", "drums"))
        for q, a in TAUGHT.items()
    ]
    trainer = dpo_trainer(sft, pairs, tmp_path, hyper, sft_weight=0.2)
    assert_same_loss_and_gradients(trainer)


def test_no_data_is_an_error(base: ModelStack, tmp_path: Path) -> None:
    hyper = Hyperparameters(epochs=1, learning_rate=1e-3, batch_size=1, max_length=64, lora=LORA)
    with pytest.raises(ValueError, match="no conversations"):
        train_sft(base, [], tmp_path, hyper)
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo(base, [], tmp_path, hyper)


def test_a_stack_names_what_is_missing(base: ModelStack, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a LoRA adapter folder"):
        base.plus(tmp_path).check()
    with pytest.raises(ValueError, match="not a model folder"):
        ModelStack(tmp_path).check()


def test_bfloat16_only_where_the_hardware_computes_it(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: fpu sse avx avx2 fma\n")
    assert not cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("flags\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_bf16(cpuinfo)
    assert not cpu_has_bf16(tmp_path / "missing")
