"""From a trained model to a GGUF file that llama.cpp serves.

`export_gguf` writes a Qwen2 or Llama model folder, its byte-level BPE tokenizer and its chat
template into one GGUF file with the `gguf` package, as f32, f16 or q8_0; llama.cpp then
reproduces transformers' greedy output. `export_stack` does it for a base with LoRA adapters
(`training.lora.ModelStack`): merged once into a scratch folder, written in every quantisation
asked for, the scratch folder removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np

from training.lora import ModelStack

Quantization = Literal["f32", "f16", "q8_0"]

ARCHITECTURES: dict[str, gguf.MODEL_ARCH] = {
    "Qwen2ForCausalLM": gguf.MODEL_ARCH.QWEN2,
    "LlamaForCausalLM": gguf.MODEL_ARCH.LLAMA,
}

FILE_TYPES: dict[str, gguf.LlamaFileType] = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}

# The split patterns llama.cpp knows by name ("tokenizer.ggml.pre"); a tokenizer whose
# pre-tokenizer is none of these would be tokenized differently by llama.cpp.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_PATTERN = QWEN2_PATTERN.replace(r"|\p{N}|", r"|\p{N}{1,3}|")

Q8_0_BLOCK = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]


@dataclass(frozen=True)
class NetworkShape:
    """What llama.cpp needs to know about the network, read from config.json."""

    architecture: str
    arch: gguf.MODEL_ARCH
    context_length: int
    embedding_length: int
    block_count: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    rope_theta: float
    rms_eps: float
    tied_embeddings: bool
    vocab_size: int
    rope_type: str
    rope_scaling: dict[str, Any]


@dataclass(frozen=True)
class Vocabulary:
    """A byte-level BPE tokenizer as GGUF stores it."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None


def export_stack(stack: ModelStack, targets: dict[Quantization, Path]) -> dict[Quantization, Path]:
    """Merge `stack` and write it as a GGUF per quantisation in `targets` (quant → path)."""
    if not targets:
        return {}
    scratch_root = next(iter(targets.values())).parent
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".merged-", dir=scratch_root))
    try:
        stack.save_merged(scratch)
        return {quant: export_gguf(scratch, path, quant) for quant, path in targets.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export_gguf(model_dir: Path, out_path: Path, quant: Quantization = "f16") -> Path:
    """Write the model in `model_dir` (config, safetensors, tokenizer) as a GGUF at `out_path`.

    Supports Qwen2ForCausalLM and LlamaForCausalLM with a byte-level BPE tokenizer. f16 and
    q8_0 keep 1-D tensors (norms, biases) in f32, as llama.cpp's own converter does. The file
    is written beside `out_path` under a temporary name and renamed when complete.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    if quant not in FILE_TYPES:
        raise ValueError(f"unknown quantization {quant!r}; choose one of {sorted(FILE_TYPES)}")
    _require_files(model_dir, ("config.json", "tokenizer.json"), "model")
    params = read_hyperparameters(model_dir)
    vocab = read_vocabulary(model_dir, params.vocab_size)
    weight_files = _weight_files(model_dir)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(tmp_path, gguf.MODEL_ARCH_NAMES[params.arch])
        try:
            _add_metadata(writer, model_dir, params, vocab, quant)
            for name, tensor, raw_dtype in _converted_tensors(weight_files, params, quant):
                writer.add_tensor(name, tensor, raw_dtype=raw_dtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        tmp_path.chmod(0o644)  # mkstemp creates 0600; a server under another user reads it
        os.replace(tmp_path, out_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return out_path


def read_hyperparameters(model_dir: Path) -> NetworkShape:
    """The network's shape from config.json; unsupported architectures raise ValueError."""
    config = _read_json(model_dir / "config.json")
    architectures = config.get("architectures") or []
    supported = [a for a in architectures if a in ARCHITECTURES]
    if not supported:
        raise ValueError(
            f"{model_dir}: architecture {architectures or 'unknown'} cannot be exported to GGUF; "
            f"supported: {', '.join(ARCHITECTURES)}"
        )
    try:
        return _hyperparameters(config, supported[0], model_dir)
    except KeyError as exc:
        raise ValueError(f"{model_dir}/config.json: missing {exc.args[0]!r}") from None


def _hyperparameters(config: dict[str, Any], architecture: str, model_dir: Path) -> NetworkShape:
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    # transformers 5 keeps rope settings in `rope_parameters`; older configs in
    # `rope_theta` and `rope_scaling`.
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    rope_theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "linear", "llama3"):
        raise ValueError(f"{model_dir}: rope type {rope_type!r} is not supported by the exporter")
    return NetworkShape(
        architecture=architecture,
        arch=ARCHITECTURES[architecture],
        context_length=int(config["max_position_embeddings"]),
        embedding_length=hidden,
        block_count=int(config["num_hidden_layers"]),
        feed_forward_length=int(config["intermediate_size"]),
        head_count=heads,
        head_count_kv=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or hidden // heads),
        rope_theta=float(rope_theta),
        rms_eps=float(config["rms_norm_eps"]),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        vocab_size=int(config["vocab_size"]),
        rope_type=rope_type,
        rope_scaling=rope,
    )


def read_vocabulary(model_dir: Path, vocab_size: int) -> Vocabulary:
    """The tokenizer in `model_dir` as GGUF's "gpt2" (byte-level BPE) vocabulary.

    The token list is padded with unused tokens up to the model's embedding rows.
    """
    from tokenizers import Tokenizer

    tokenizer_path = model_dir / "tokenizer.json"
    data = _read_json(tokenizer_path)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        found = "BPE with byte fallback" if model.get("byte_fallback") else model.get("type")
        raise ValueError(
            f"{tokenizer_path}: only byte-level BPE tokenizers can be exported (found {found!r})"
        )
    pre = _pre_tokenizer_name(data.get("pre_tokenizer"), tokenizer_path)

    id_to_token: dict[int, str] = {i: t for t, i in model["vocab"].items()}
    token_types = dict.fromkeys(id_to_token, int(gguf.TokenType.NORMAL))
    for added in data.get("added_tokens", []):
        id_to_token[added["id"]] = added["content"]
        token_types[added["id"]] = int(
            gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        )
    size = max(id_to_token) + 1
    if size > vocab_size:
        raise ValueError(
            f"{model_dir}: the tokenizer has {size} tokens but the model only {vocab_size} "
            "embedding rows"
        )
    tokens = [id_to_token.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    types = [token_types.get(i, int(gguf.TokenType.UNUSED)) for i in range(vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    token_to_id = {t: i for i, t in id_to_token.items()}
    special = _special_token_texts(model_dir)
    ids = {role: token_to_id[text] for role, text in special.items() if text in token_to_id}
    if ids.get("eos") is None:
        eos_from_config = _read_json(model_dir / "config.json").get("eos_token_id")
        ids["eos"] = eos_from_config[0] if isinstance(eos_from_config, list) else eos_from_config
    # Qwen2 tokenizers have no BOS; llama.cpp still wants a valid id (it is never added).
    bos_id = ids.get("bos")
    bos_id = bos_id if bos_id is not None else ids.get("pad", ids.get("eos"))

    probe = Tokenizer.from_file(str(tokenizer_path))
    with_special = probe.encode("a", add_special_tokens=True).ids
    without = probe.encode("a", add_special_tokens=False).ids
    added_front = with_special[: len(with_special) - len(without)]
    return Vocabulary(
        tokens=tokens,
        token_types=types,
        merges=merges,
        pre=pre,
        bos_id=bos_id,
        eos_id=ids.get("eos"),
        pad_id=ids.get("pad"),
        unk_id=ids.get("unk"),
        add_bos=bos_id is not None and added_front[:1] == [bos_id],
        add_eos=len(with_special) > len(without) + len(added_front),
        chat_template=read_chat_template(model_dir),
    )


def read_chat_template(model_dir: Path) -> str | None:
    """The chat template from tokenizer_config.json or chat_template.jinja, if there is one."""
    template_file = model_dir / "chat_template.jinja"
    if template_file.exists():
        return template_file.read_text(encoding="utf-8")
    config_path = model_dir / "tokenizer_config.json"
    template = _read_json(config_path).get("chat_template") if config_path.exists() else None
    if isinstance(template, list):
        named = {item.get("name"): item.get("template") for item in template}
        template = named.get("default")
    return template if isinstance(template, str) else None


def _pre_tokenizer_name(pre_tokenizer: dict[str, Any] | None, tokenizer_path: Path) -> str:
    """The name llama.cpp knows this tokenizer's split rules by."""
    steps = (pre_tokenizer or {}).get("pretokenizers") or ([pre_tokenizer] if pre_tokenizer else [])
    kinds = [step.get("type") for step in steps]
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        if pattern == QWEN2_PATTERN:
            return "qwen2"
        if pattern == LLAMA3_PATTERN:
            return "llama-bpe"
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if (
        kinds == ["Digits", "ByteLevel"]
        and steps[0].get("individual_digits")
        and steps[1].get("use_regex", True)
    ):
        return "smollm"  # SmolLM's: each digit alone, then GPT-2's byte-level regex
    raise ValueError(
        f"{tokenizer_path}: pre-tokenizer {kinds or 'none'} is not one llama.cpp reproduces "
        "(supported: Qwen2's or Llama 3's split pattern with ByteLevel, GPT-2's ByteLevel, or "
        "SmolLM's digits then ByteLevel)"
    )


def _special_token_texts(model_dir: Path) -> dict[str, str | None]:
    """bos/eos/pad/unk token texts from tokenizer_config.json and special_tokens_map.json."""
    texts: dict[str, str | None] = {}
    for file_name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = model_dir / file_name
        if not path.exists():
            continue
        data = _read_json(path)
        for role in ("bos", "eos", "pad", "unk"):
            value = data.get(f"{role}_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                texts[role] = value
    return texts


def _add_metadata(
    writer: gguf.GGUFWriter,
    model_dir: Path,
    params: NetworkShape,
    vocab: Vocabulary,
    quant: Quantization,
) -> None:
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.resolve().name)
    writer.add_file_type(FILE_TYPES[quant])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_context_length(params.context_length)
    writer.add_embedding_length(params.embedding_length)
    writer.add_block_count(params.block_count)
    writer.add_feed_forward_length(params.feed_forward_length)
    writer.add_head_count(params.head_count)
    writer.add_head_count_kv(params.head_count_kv)
    writer.add_key_length(params.head_dim)
    writer.add_value_length(params.head_dim)
    writer.add_rope_dimension_count(params.head_dim)
    writer.add_rope_freq_base(params.rope_theta)
    writer.add_layer_norm_rms_eps(params.rms_eps)
    writer.add_vocab_size(params.vocab_size)
    if params.rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(params.rope_scaling["factor"]))

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    for token_id, add in (
        (vocab.bos_id, writer.add_bos_token_id),
        (vocab.eos_id, writer.add_eos_token_id),
        (vocab.pad_id, writer.add_pad_token_id),
        (vocab.unk_id, writer.add_unk_token_id),
    ):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)


def _weight_files(model_dir: Path) -> list[Path]:
    single = model_dir / "model.safetensors"
    if single.exists():
        return [single]
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(_read_json(index)["weight_map"].values()))
        missing = [s for s in shards if not (model_dir / s).exists()]
        if missing:
            raise ValueError(f"{model_dir}: missing weight shards {missing}")
        return [model_dir / s for s in shards]
    raise ValueError(f"{model_dir}: no model.safetensors (or sharded index) with the weights")


def _converted_tensors(
    weight_files: list[Path], params: NetworkShape, quant: Quantization
) -> Iterator[tuple[str, np.ndarray, gguf.GGMLQuantizationType | None]]:
    """Each checkpoint tensor under its GGUF name, rearranged and cast for llama.cpp."""
    from safetensors import safe_open

    name_map = gguf.get_tensor_name_map(params.arch, params.block_count)
    for path in weight_files:
        with safe_open(str(path), framework="pt") as checkpoint:
            for hf_name in checkpoint.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if hf_name.endswith("rotary_emb.inv_freq"):
                    continue  # recomputed by llama.cpp from rope_theta
                if hf_name == "lm_head.weight" and params.tied_embeddings:
                    continue  # llama.cpp reuses the token embeddings when output is absent
                mapped = name_map.get_type_and_name(hf_name, try_suffixes=(".weight", ".bias"))
                if mapped is None:
                    raise ValueError(f"{path}: tensor {hf_name!r} has no GGUF counterpart")
                kind, name = mapped
                data = checkpoint.get_tensor(hf_name).float().numpy()
                if params.arch == gguf.MODEL_ARCH.LLAMA and kind == gguf.MODEL_TENSOR.ATTN_Q:
                    data = _permute_for_rope(data, params.head_count)
                elif params.arch == gguf.MODEL_ARCH.LLAMA and kind == gguf.MODEL_TENSOR.ATTN_K:
                    data = _permute_for_rope(data, params.head_count_kv)
                yield (name, *_cast(data, quant))
    if params.rope_type == "llama3":
        yield (
            gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight",
            _llama3_rope_factors(params),
            None,
        )


def _permute_for_rope(weights: np.ndarray, heads: int) -> np.ndarray:
    """Reorder rows of a q/k projection from HF's half-split rotary layout to llama.cpp's.

    HF rotates the first half of each head against the second half; llama.cpp's llama
    architecture rotates adjacent pairs. Within each head, row j of the first half and row j
    of the second half become rows 2j and 2j+1.
    """
    head_dim = weights.shape[0] // heads
    split = weights.reshape(heads, 2, head_dim // 2, *weights.shape[1:])
    return split.swapaxes(1, 2).reshape(weights.shape)


def _cast(
    data: np.ndarray, quant: Quantization
) -> tuple[np.ndarray, gguf.GGMLQuantizationType | None]:
    """The tensor in the export's type; 1-D tensors stay f32 as llama.cpp expects."""
    if quant == "f32" or data.ndim < 2:
        return data.astype(np.float32), None
    if quant == "q8_0" and data.ndim == 2 and data.shape[-1] % Q8_0_BLOCK == 0:
        q8 = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(data.astype(np.float32), q8), q8
    return data.astype(np.float16), None


def _llama3_rope_factors(params: NetworkShape) -> np.ndarray:
    """Per-frequency divisors that turn plain RoPE into Llama 3's long-context RoPE."""
    scaling = params.rope_scaling
    factor = float(scaling["factor"])
    low = float(scaling.get("low_freq_factor", 1.0))
    high = float(scaling.get("high_freq_factor", 4.0))
    original = float(scaling.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = original / low, original / high
    factors = []
    for i in range(0, params.head_dim, 2):
        wavelen = 2 * math.pi * params.rope_theta ** (i / params.head_dim)
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            factors.append(1.0 / ((1.0 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def _require_files(folder: Path, names: tuple[str, ...], what: str) -> None:
    if not folder.is_dir():
        raise ValueError(f"{folder}: {what} folder does not exist")
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        raise ValueError(f"{folder}: not a complete {what} folder, missing {', '.join(missing)}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read JSON: {exc}") from exc
