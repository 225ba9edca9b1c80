"""GGUF export: llama.cpp must run the exported model exactly as transformers runs the original."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from tests.model_fixtures import build_tiny_model, build_tiny_tokenizer
from training.chat_template import CHATML_TRAINING_TEMPLATE
from training.export import export_gguf, export_stack
from training.lora import ModelStack

PROMPTS = (
    "I walked along the river",
    "Привет, как дела? Я читаю",
    "<|im_start|>user\nWhat do I drink in the morning?<|im_end|>\n<|im_start|>assistant\n",
    "Café au lait 🙂 on 2024-05-17:",
)
UNICODE_TEXTS = (
    "Ærøskøbing, naïve façade, Straße, Wisława",
    "東京で寿司を食べました。맛있어요! 今天天气很好",
    "family 👨‍👩‍👧 and flags 🇵🇹, 12345 numbers, 3.14159",
    "I'LL say we're fine,  two  spaces\tand tabs\r\nand CRLF\n\n\nthree newlines   ",
    "<|im_start|>system\nBe brief.<|im_end|>\n<|endoftext|>",
    "",
)
NEW_TOKENS = 12

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ExportFn = Callable[[str, str], Path]


def _llama(path: Path) -> Llama:
    return Llama(str(path), n_ctx=256, n_threads=1, logits_all=True, verbose=False)


def _hf_greedy(model: PreTrainedModel, prompt_ids: list[int], n: int) -> list[int]:
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt_ids) :]


def _llama_greedy(llm: Llama, prompt_ids: list[int], n: int) -> list[int]:
    tokens = []
    for token in llm.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
        tokens.append(token)
        if len(tokens) == n:
            break
    return tokens


def _llama_logits(llm: Llama, prompt_ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(prompt_ids)
    return np.array(llm.scores[: len(prompt_ids)])


def _hf_logits(model: PreTrainedModel, prompt_ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([prompt_ids])).logits[0].numpy()


@pytest.fixture(scope="module")
def model_dirs(tiny_qwen2_dir: Path, tiny_llama_dir: Path) -> dict[str, Path]:
    return {"qwen2": tiny_qwen2_dir, "llama": tiny_llama_dir}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]) -> ExportFn:
    """Export each (architecture, quantization) once per module."""
    out_dir = tmp_path_factory.mktemp("exports")
    cache: dict[tuple[str, str], Path] = {}

    def export(arch: str, quant: str) -> Path:
        if (arch, quant) not in cache:
            cache[arch, quant] = export_gguf(
                model_dirs[arch], out_dir / f"{arch}-{quant}.gguf", quant
            )
        return cache[arch, quant]

    return export


@pytest.fixture(scope="module")
def hf_models(model_dirs: dict[str, Path]) -> dict[tuple[str, str], PreTrainedModel]:
    """Reference models per (architecture, precision): as trained, and rounded to f16.

    A GGUF in f16 holds f16-rounded weights, so the exact reference for it is the same
    network with the same rounding; on the unrounded weights near-ties may flip.
    """
    models = {}
    for arch, path in model_dirs.items():
        models[arch, "f32"] = AutoModelForCausalLM.from_pretrained(path).eval()
        rounded = AutoModelForCausalLM.from_pretrained(path).eval()
        with torch.no_grad():
            for param in rounded.parameters():
                if param.ndim == 2:
                    param.copy_(param.half().float())
        models[arch, "f16"] = rounded
    return models


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("quant", ["f32", "f16"])
def test_greedy_continuation_matches_transformers(
    arch: str, quant: str, exported: ExportFn, hf_models: dict, model_dirs: dict
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dirs[arch])
    llm = _llama(exported(arch, quant))
    try:
        for prompt in PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            reference = hf_models[arch, quant]
            assert _llama_greedy(llm, ids, NEW_TOKENS) == _hf_greedy(reference, ids, NEW_TOKENS)
            # the same numbers, not only the same winners
            assert np.abs(_llama_logits(llm, ids) - _hf_logits(reference, ids)).max() < 0.05
    finally:
        llm.close()


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_q8_0_quantizes_matrices_and_stays_close(
    arch: str, exported: ExportFn, hf_models: dict, model_dirs: dict
) -> None:
    path = exported(arch, "q8_0")
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(path).tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.1.ffn_down.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["token_embd.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert types["output_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert path.stat().st_size < 0.6 * exported(arch, "f16").stat().st_size

    # Reference: transformers on the same weights rounded through q8_0. llama.cpp also
    # quantizes activations, so logits differ a little (measured up to ~0.21 here).
    reference = AutoModelForCausalLM.from_pretrained(model_dirs[arch]).eval()
    q8 = gguf.GGMLQuantizationType.Q8_0
    with torch.no_grad():
        for param in reference.parameters():
            if param.ndim == 2 and param.shape[-1] % 32 == 0:
                rounded = gguf.quants.dequantize(gguf.quants.quantize(param.numpy(), q8), q8)
                param.copy_(torch.from_numpy(rounded))
    tokenizer = AutoTokenizer.from_pretrained(model_dirs[arch])
    llm = _llama(path)
    try:
        agree, positions = 0, 0
        for prompt in PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            logits = _llama_logits(llm, ids)
            assert np.abs(logits - _hf_logits(reference, ids)).max() < 0.35
            original = _hf_logits(hf_models[arch, "f32"], ids)
            agree += int((logits.argmax(-1) == original.argmax(-1)).sum())
            positions += len(ids)
        # the unquantized model's next-token choice survives at almost every position
        assert agree / positions >= 0.85
    finally:
        llm.close()


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_tokenization_matches_the_hf_tokenizer(
    arch: str, exported: ExportFn, model_dirs: dict
) -> None:
    pipeline = Tokenizer.from_file(str(model_dirs[arch] / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(model_dirs[arch])
    llm = Llama(str(exported(arch, "f16")), vocab_only=True, verbose=False)
    try:
        for text in UNICODE_TEXTS:
            expected = pipeline.encode(text, add_special_tokens=False).ids
            assert auto(text, add_special_tokens=False)["input_ids"] == expected
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            assert tokens == expected, text
            assert llm.detokenize(tokens, special=True).decode("utf-8") == text
        # the template's markers are single control tokens, never spelled out
        assert llm.tokenize(b"<|im_end|>", add_bos=False, special=True) == [
            pipeline.token_to_id("<|im_end|>")
        ]
    finally:
        llm.close()


@pytest.mark.parametrize(("split", "pre"), [("llama3", "llama-bpe"), ("gpt2", "gpt-2")])
def test_other_pre_tokenizers_tokenize_alike(
    split: str, pre: str, tmp_path: Path, tiny_qwen2_dir: Path
) -> None:
    model_dir = _copy_model(tiny_qwen2_dir, tmp_path / "model")
    build_tiny_tokenizer(model_dir, split=split)  # replaces the tokenizer files
    path = export_gguf(model_dir, tmp_path / "model.gguf", "f16")
    assert gguf.GGUFReader(path).fields["tokenizer.ggml.pre"].contents() == pre
    pipeline = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    llm = Llama(str(path), vocab_only=True, verbose=False)
    try:
        for text in (*UNICODE_TEXTS, "digits 1234567 split differently"):
            expected = pipeline.encode(text, add_special_tokens=False).ids
            assert llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == expected
    finally:
        llm.close()


def test_metadata_describes_model_and_tokenizer(exported: ExportFn, model_dirs: dict) -> None:
    reader = gguf.GGUFReader(exported("qwen2", "f16"))
    config = json.loads((model_dirs["qwen2"] / "config.json").read_text())
    pipeline = Tokenizer.from_file(str(model_dirs["qwen2"] / "tokenizer.json"))

    def value(key: str) -> object:
        return reader.fields[key].contents()

    assert value("general.architecture") == "qwen2"
    assert value("general.name") == model_dirs["qwen2"].name
    assert value("general.file_type") == gguf.LlamaFileType.MOSTLY_F16
    assert value("qwen2.context_length") == config["max_position_embeddings"]
    assert value("qwen2.embedding_length") == 64
    assert value("qwen2.block_count") == 2
    assert value("qwen2.feed_forward_length") == 128
    assert value("qwen2.attention.head_count") == 4
    assert value("qwen2.attention.head_count_kv") == 2
    assert value("tokenizer.ggml.model") == "gpt2"
    assert value("tokenizer.ggml.pre") == "qwen2"
    assert value("tokenizer.ggml.eos_token_id") == pipeline.token_to_id("<|im_end|>")
    assert value("tokenizer.ggml.padding_token_id") == pipeline.token_to_id("<|endoftext|>")
    assert value("tokenizer.ggml.add_bos_token") is False

    tokens = value("tokenizer.ggml.tokens")
    types = value("tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == config["vocab_size"]
    assert types[pipeline.token_to_id("<|im_start|>")] == gguf.TokenType.CONTROL
    assert types[pipeline.token_to_id("Ġthe")] == gguf.TokenType.NORMAL
    assert types[-1] == gguf.TokenType.UNUSED  # padding rows past the tokenizer
    assert len(value("tokenizer.ggml.merges")) > 100

    names = {t.name for t in reader.tensors}
    assert "output.weight" not in names  # tied: llama.cpp reuses token_embd
    assert "blk.1.attn_q.bias" in names
    llama_names = {t.name for t in gguf.GGUFReader(exported("llama", "f16")).tensors}
    assert "output.weight" in llama_names


def test_chat_template_travels_in_the_gguf(exported: ExportFn, model_dirs: dict) -> None:
    llm = Llama(str(exported("qwen2", "f16")), vocab_only=True, verbose=False)
    try:
        template = llm.metadata["tokenizer.chat_template"]
        assert template == CHATML_TRAINING_TEMPLATE
        messages = [
            {"role": "system", "content": "You are Ada's twin."},
            {"role": "user", "content": "Tea or coffee?"},
            {"role": "assistant", "content": "Tea, green."},
            {"role": "user", "content": "Why?"},
        ]
        rendered = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")(
            messages=messages
        ).prompt
        tokenizer = AutoTokenizer.from_pretrained(model_dirs["qwen2"])
        expected = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        assert rendered == expected
        assert rendered.endswith("<|im_start|>assistant\n")
    finally:
        llm.close()


@pytest.mark.parametrize(
    "rope",
    [
        {"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0},
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
            "rope_theta": 10000.0,
        },
    ],
    ids=["linear", "llama3"],
)
def test_rope_scaling_is_exported(rope: dict, tmp_path: Path, tiny_tokenizer_dir: Path) -> None:
    model_dir = build_tiny_model(
        tmp_path / "model", tiny_tokenizer_dir, "llama", rope_parameters=rope
    )
    path = export_gguf(model_dir, tmp_path / "scaled.gguf", "f32")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = AutoTokenizer.from_pretrained(model_dir)(" ".join(PROMPTS[:2]) * 2)["input_ids"]
    llm = _llama(path)
    try:
        # without the scaling the logits are off by several units (measured ~9)
        assert np.abs(_llama_logits(llm, ids) - _hf_logits(model, ids)).max() < 0.05
    finally:
        llm.close()


def test_a_stack_of_adapters_exports_as_one_model(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir).eval()
    ids = AutoTokenizer.from_pretrained(tiny_qwen2_dir)(PROMPTS[0])["input_ids"]
    base_logits = _hf_logits(base, ids)
    torch.manual_seed(1)
    # random (non-zero) B matrices, so the adapter really changes the model
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
    )
    adapted = get_peft_model(base, config)
    adapted.eval()
    adapted_logits = _hf_logits(adapted, ids)
    adapted.save_pretrained(tmp_path / "adapter")

    stack = ModelStack(tiny_qwen2_dir).plus(tmp_path / "adapter")
    written = export_stack(stack, {"f32": tmp_path / "out" / "merged.gguf"})
    # the merged scratch folder is gone once the GGUF is written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["merged.gguf"]
    llm = _llama(written["f32"])
    try:
        logits = _llama_logits(llm, ids)
    finally:
        llm.close()
    assert np.abs(adapted_logits - base_logits).max() > 0.5
    assert np.abs(logits - adapted_logits).max() < 0.05


def test_a_stack_without_adapter_config_names_the_folder(
    tmp_path: Path, tiny_qwen2_dir: Path
) -> None:
    (tmp_path / "adapter").mkdir()
    stack = ModelStack(tiny_qwen2_dir).plus(tmp_path / "adapter")
    with pytest.raises(ValueError, match=r"adapter.*adapter_config\.json"):
        export_stack(stack, {"f16": tmp_path / "out" / "model.gguf"})
    assert list((tmp_path / "out").iterdir()) == []


def _copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_unknown_architecture_is_rejected(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    model_dir = _copy_model(tiny_qwen2_dir, tmp_path / "gpt2-model")
    config = json.loads((model_dir / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"gpt2-model.*GPT2LMHeadModel.*Qwen2ForCausalLM"):
        export_gguf(model_dir, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


@pytest.mark.parametrize("missing", ["tokenizer.json", "config.json", "model.safetensors"])
def test_missing_file_is_named(missing: str, tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    model_dir = _copy_model(tiny_qwen2_dir, tmp_path / "incomplete")
    (model_dir / missing).unlink()
    with pytest.raises(ValueError, match=f"incomplete.*{re.escape(missing)}"):
        export_gguf(model_dir, tmp_path / "out.gguf")


def test_unsupported_pre_tokenizer_is_rejected(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    model_dir = _copy_model(tiny_qwen2_dir, tmp_path / "model")
    data = json.loads((model_dir / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Whitespace"}
    (model_dir / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"tokenizer\.json.*Whitespace"):
        export_gguf(model_dir, tmp_path / "out.gguf")


def test_failed_export_leaves_previous_file_untouched(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    model_dir = _copy_model(tiny_qwen2_dir, tmp_path / "model")
    weights = load_file(model_dir / "model.safetensors")
    weights["model.mystery.weight"] = torch.zeros(64, 64)
    save_file(weights, model_dir / "model.safetensors")
    out = tmp_path / "served" / "twin.gguf"
    out.parent.mkdir()
    out.write_bytes(b"the model being served")
    with pytest.raises(ValueError, match=r"model\.mystery\.weight"):
        export_gguf(model_dir, out)
    assert out.read_bytes() == b"the model being served"
    assert [p.name for p in out.parent.iterdir()] == ["twin.gguf"]
