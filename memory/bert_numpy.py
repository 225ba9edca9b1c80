"""A BERT sentence encoder in NumPy, for sentence-transformers folders of the MiniLM kind
(a BertModel, mean pooling, normalised): the packaged all-MiniLM-L6-v2 among them.

It computes what sentence-transformers computes (checked against it to 1e-5), without importing
torch: a command that only searches memory starts in well under a second instead of several,
and a server that answers from llama.cpp never holds torch in memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_SQRT_HALF = 1 / math.sqrt(2)
# erfc(z) ≈ t·exp(-z² + Σ c_i tⁱ) with t = 1/(1 + z/2), z ≥ 0 (Numerical Recipes, `erfcc`)
_ERFCC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


class UnsupportedModel(ValueError):
    """The folder is not a model this encoder reproduces; sentence-transformers must load it."""


@dataclass(frozen=True)
class _Layer:
    qkv: np.ndarray
    qkv_bias: np.ndarray
    attention_out: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate: np.ndarray
    intermediate_bias: np.ndarray
    output: np.ndarray
    output_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


class BertSentenceEncoder:
    """Loads the folder's weights and tokenizer; `encode` gives normalised sentence vectors."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _supported_config(folder)
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_length = _max_length(folder, int(config["max_position_embeddings"]))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        pad_id = int(config.get("pad_token_id", 0))
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        w = load_file(str(folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        w = {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.embedding_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [_layer(w, f"encoder.layer.{i}.") for i in range(config["num_hidden_layers"])]

    @property
    def dim(self) -> int:
        return int(self.words.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Normalised mean-pooled vectors of `texts`, one row each (float32)."""
        from threadpoolctl import threadpool_limits

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # matrices this small run fastest on one thread; more only contend for the cores
        with threadpool_limits(1):
            return self._encode(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        hidden = self.words[ids] + self.positions[: ids.shape[1]] + self.token_type
        hidden = _layer_norm(hidden, *self.embedding_norm, self.eps)
        # padded positions get no attention anywhere
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in self.layers:
            hidden = self._block(hidden, bias, layer)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def _block(self, x: np.ndarray, bias: np.ndarray, layer: _Layer) -> np.ndarray:
        batch, length, width = x.shape
        head = width // self.heads
        qkv = x @ layer.qkv + layer.qkv_bias
        q, k, v = (
            part.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)
            for part in np.split(qkv, 3, axis=-1)
        )
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        attended = context @ layer.attention_out + layer.attention_out_bias
        x = _layer_norm(attended + x, *layer.attention_norm, self.eps)
        inner = x @ layer.intermediate + layer.intermediate_bias
        out = _gelu(inner) @ layer.output + layer.output_bias
        return _layer_norm(out + x, *layer.output_norm, self.eps)


def _layer(w: dict[str, np.ndarray], p: str) -> _Layer:
    def weight(name: str) -> np.ndarray:
        return np.ascontiguousarray(w[f"{p}{name}.weight"].T)

    qkv = np.concatenate([weight(f"attention.self.{n}") for n in ("query", "key", "value")], axis=1)
    qkv_bias = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
    return _Layer(
        qkv=qkv,
        qkv_bias=qkv_bias,
        attention_out=weight("attention.output.dense"),
        attention_out_bias=w[f"{p}attention.output.dense.bias"],
        attention_norm=(
            w[f"{p}attention.output.LayerNorm.weight"],
            w[f"{p}attention.output.LayerNorm.bias"],
        ),
        intermediate=weight("intermediate.dense"),
        intermediate_bias=w[f"{p}intermediate.dense.bias"],
        output=weight("output.dense"),
        output_bias=w[f"{p}output.dense.bias"],
        output_norm=(w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]),
    )


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Φ(x) = x/2 * erfc(-x/√2), with erfc from Numerical Recipes
    (`erfcc`, fractional error below 1.2e-7 everywhere, float32's own precision): NumPy has no
    erf, and importing SciPy's would add a third of a second to every search."""
    z = np.abs(x) * _SQRT_HALF
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFCC[-1])
    for c in reversed(_ERFCC[:-1]):  # Horner's rule
        poly = poly * t + c
    tail = t * np.exp(poly - z * z)  # erfc(|x|/√2)
    return 0.5 * x * np.where(x > 0, 2.0 - tail, tail)


def _layer_norm(x: np.ndarray, gain: np.ndarray, shift: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gain + shift


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _supported_config(folder: Path) -> dict[str, Any]:
    """The BERT config, if the folder is a BertModel with mean pooling and normalisation."""
    try:
        config = _read(folder / "config.json")
        modules = [m["type"] for m in _read(folder / "modules.json")]
        pooling = _read(folder / "1_Pooling" / "config.json")
    except (OSError, ValueError, KeyError) as exc:
        raise UnsupportedModel(f"{folder}: not a sentence-transformers folder ({exc})") from exc
    wanted = [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v
        for k, v in pooling.items()
        if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    )
    if (
        config.get("model_type") != "bert"
        or config.get("hidden_act") != "gelu"
        or config.get("position_embedding_type", "absolute") != "absolute"
        or modules != wanted
        or not mean_only
        or not (folder / "model.safetensors").is_file()
        or not (folder / "tokenizer.json").is_file()
    ):
        raise UnsupportedModel(f"{folder}: not a mean-pooled, normalised BERT model")
    return config


def _max_length(folder: Path, positions: int) -> int:
    try:
        return min(int(_read(folder / "sentence_bert_config.json")["max_seq_length"]), positions)
    except (OSError, ValueError, KeyError):
        return positions
