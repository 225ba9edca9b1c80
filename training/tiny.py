"""The offline base: a byte-level BPE tokenizer and a small Qwen2 model, both made from scratch.

When no pretrained base is configured, `twin train` needs nothing from the network: it trains a
tokenizer on the twin's own text and initialises a small Qwen2ForCausalLM sized by a `TinySize`
preset, which the pipeline then trains in full. Both are ordinary Hugging Face folders, so the
same SFT, DPO and GGUF export code serves the tiny base and a pretrained one.

The tokenizer uses Qwen2's split pattern with byte-level BPE and ChatML special tokens, saved as
a `PreTrainedTokenizerFast`: that is what llama.cpp reproduces ("gpt2" model, "qwen2" pre), and
a model whose config says qwen2 would otherwise get `Qwen2Tokenizer`, which rebuilds the
pre-tokenizer its own way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from training.export import LLAMA3_PATTERN, QWEN2_PATTERN

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

SplitPattern = Literal["qwen2", "llama3", "gpt2"]

END_OF_TEXT = "<|endoftext|>"
TURN_START = "<|im_start|>"
TURN_END = "<|im_end|>"
CHATML_SPECIAL_TOKENS = (END_OF_TEXT, TURN_START, TURN_END)

# ChatML with `{% generation %}` around the assistant's content and its end-of-turn token, which
# trl's assistant_only_loss needs to find the tokens it trains on (including the one that stops).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinySize:
    """The shape of a tiny model. Parameters grow with hidden² × layers plus vocab × hidden."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    context: int
    vocab: int

    def parameter_count(self) -> int:
        """Parameters of the model this size makes (tied input and output embeddings)."""
        head_dim = self.hidden // self.heads
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_heads * head_dim
        attention_bias = self.hidden + 2 * self.kv_heads * head_dim
        mlp = 3 * self.hidden * self.intermediate
        per_layer = attention + attention_bias + mlp + 2 * self.hidden
        return self.vocab * self.hidden + self.layers * per_layer + self.hidden


TINY_SIZES: dict[str, TinySize] = {
    # seconds-long runs: tests and smoke checks
    "micro": TinySize("micro", 64, 2, 4, 2, 192, 512, 1024),
    # the default: ~1.3M parameters, ~6.5k training tokens/s on 2 cores; trains on the sample
    # persona within the pipeline's ten-minute budget (bigger ones learn less per second)
    "small": TinySize("small", 128, 4, 4, 2, 384, 1024, 4096),
    # ~4.2M parameters, ~4.5k tokens/s on 2 cores: for more cores or more patience
    "base": TinySize("base", 256, 4, 4, 2, 768, 1024, 4096),
}
DEFAULT_TINY_SIZE = "small"


def tiny_size(name: str) -> TinySize:
    """The preset called `name`; a ValueError lists the known ones."""
    try:
        return TINY_SIZES[name]
    except KeyError:
        raise ValueError(
            f"unknown tiny size {name!r}; choose one of {', '.join(TINY_SIZES)}"
        ) from None


def train_tokenizer(
    texts: Iterable[str],
    out_dir: Path,
    *,
    vocab_size: int = 4096,
    split: SplitPattern = "qwen2",
    min_frequency: int = 2,
) -> Path:
    """Train a byte-level BPE tokenizer on `texts` and save it as a tokenizer folder.

    The folder holds a `PreTrainedTokenizerFast` with ChatML special tokens (eos `<|im_end|>`,
    pad `<|endoftext|>`) and the ChatML template with generation markers. All 256 byte symbols
    are in the vocabulary, so any text (including words never seen in training) tokenizes.
    `split` picks the pre-tokenizer: Qwen2's split pattern (the default), Llama 3's, or GPT-2's
    byte-level regex; all three are ones llama.cpp reproduces.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    if split == "gpt2":
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        pattern = QWEN2_PATTERN if split == "qwen2" else LLAMA3_PATTERN
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(CHATML_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=TURN_END, pad_token=END_OF_TEXT
    )
    fast.chat_template = CHATML_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return out_dir


def load_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """The tokenizer saved in `folder`, exactly as trained (never a model-specific class)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(folder)


def create_model(
    tokenizer_dir: Path, size: TinySize, out_dir: Path, *, seed: int = 0
) -> Qwen2ForCausalLM:
    """A freshly initialised Qwen2ForCausalLM of `size`, saved with its tokenizer in `out_dir`.

    The embedding rows are the tokenizer's length rounded up to a multiple of 64, as GGUF
    export and fast matrix kernels like; `size.vocab` only guides the tokenizer's training.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = load_tokenizer(tokenizer_dir)
    config = Qwen2Config(
        vocab_size=-(-len(tokenizer) // 64) * 64,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=size.context,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model
