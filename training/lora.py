"""A base model and the LoRA adapters trained on it: what every stage trains from and exports.

A run never writes a merged copy of the model between stages: SFT trains an adapter on the
base, DPO trains another on top of the SFT model, the owner's model trains on top of the shared
SFT model. A `ModelStack` names the base folder and the adapters in order; `load` merges them in
memory into a plain model, and `save_merged` writes one when a whole folder is needed (GGUF
export). Adapters are a few megabytes where a merged 135M model is half a gigabyte.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.chat_template import training_chat_template

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The modules LoRA adapts in Llama and Qwen2 blocks: attention and MLP projections.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_CONFIG = "adapter_config.json"
# Files that make up a tokenizer folder, copied verbatim so nothing is re-derived.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA adapter's shape. `top_layers` adapts only the last that many blocks (None: all):
    back-propagation then stops there, which makes a step cheaper on a CPU."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = LORA_TARGETS
    top_layers: int | None = None

    def peft_config(self, layer_count: int) -> Any:
        from peft import LoraConfig

        layers = None
        if self.top_layers is not None and self.top_layers < layer_count:
            layers = list(range(layer_count - self.top_layers, layer_count))
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.targets),
            layers_to_transform=layers,
            task_type="CAUSAL_LM",
        )


@dataclass(frozen=True)
class ModelStack:
    """A base model folder and the LoRA adapter folders applied to it, in order."""

    base: Path
    adapters: tuple[Path, ...] = ()

    def plus(self, adapter: Path) -> ModelStack:
        """This stack with one more adapter on top."""
        return ModelStack(self.base, (*self.adapters, adapter))

    def check(self) -> None:
        """Raise ValueError naming what is missing, before anything loads."""
        if not (self.base / "config.json").is_file():
            raise ValueError(f"{self.base}: not a model folder (no config.json)")
        for adapter in self.adapters:
            if not (adapter / ADAPTER_CONFIG).is_file():
                raise ValueError(f"{adapter}: not a LoRA adapter folder (no {ADAPTER_CONFIG})")

    def layer_count(self) -> int:
        config = json.loads((self.base / "config.json").read_text(encoding="utf-8"))
        return int((config.get("text_config") or config)["num_hidden_layers"])

    def load(self) -> PreTrainedModel:
        """The base with every adapter merged into it, in float32 on the CPU (bfloat16 on a
        GPU that has it)."""
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        self.check()
        dtype = torch.float32
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            dtype = torch.bfloat16
        model = AutoModelForCausalLM.from_pretrained(self.base, dtype=dtype)
        for adapter in self.adapters:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        return model

    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The base's tokenizer, as saved (its own chat template included)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.base)

    def training_tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer with a chat template that marks the assistant's tokens, for
        assistant-only loss; it renders prompts exactly as the base's own template does."""
        tokenizer = self.tokenizer()
        tokenizer.chat_template = training_chat_template(tokenizer)
        return tokenizer

    def save_merged(self, out_dir: Path) -> Path:
        """Write the merged model and the base's tokenizer files to `out_dir`."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.load().save_pretrained(out_dir)
        copy_tokenizer(self.base, out_dir)
        return out_dir

    def to_json(self) -> dict[str, Any]:
        return {"base": str(self.base), "adapters": [str(a) for a in self.adapters]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelStack:
        return cls(Path(data["base"]), tuple(Path(a) for a in data.get("adapters", [])))


def copy_tokenizer(source: Path, target: Path) -> None:
    """Copy the tokenizer files of `source` into `target` unchanged."""
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX). Without it, bfloat16
    autocast is emulated and tens of times slower than float32 (measured here)."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16() -> bool:
    """Train with bfloat16 autocast: on a GPU that supports it, or a CPU that computes it."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()
