"""Tiny real models for tests: a byte-level BPE tokenizer, Qwen2 and Llama model folders, a GGUF,
and the packaged SmolLM2 base converted once per session.

Everything is built from scratch in seconds (hidden size 64, two layers, a vocabulary of about
500) and cached per test session, so any test can use a real model without a download.
Builders are plain functions; the fixtures at the bottom call them once per session. Heavy
libraries are imported inside the builders: this plugin loads for every test run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from training.bases import Base
from training.chat_template import CHATML_TRAINING_TEMPLATE
from training.export import LLAMA3_PATTERN, QWEN2_PATTERN

SplitPattern = Literal["qwen2", "llama3", "gpt2"]
END_OF_TEXT = "<|endoftext|>"
TURN_START = "<|im_start|>"
TURN_END = "<|im_end|>"
CHATML_SPECIAL_TOKENS = (END_OF_TEXT, TURN_START, TURN_END)

TINY_CORPUS_LINES = (
    "I walked along the river this morning and watched the herons fish in the shallows.",
    "My sister Lena moved to Lisbon last spring; we call each other every Sunday evening.",
    "Notes on the garden: tomatoes need more sun, the basil is doing well, water twice a week.",
    "Meeting with Sam about the budget for 2024, numbers 1200 and 3450 look right to me.",
    "I prefer tea over coffee, green tea in the morning and mint tea after dinner.",
    "Reading list: a history of Rome, a book about mushrooms, and poems by Wisława Szymborska.",
    "Café au lait in Paris, smørrebrød in Copenhagen, and naïve questions about the façade.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein, sang er im Zug nach München.",
    "Привет, как дела? Я читаю книгу о путешествиях и пью чай.",
    "今天天气很好，我们去公园散步吧。",
    "Training a tiny model is fun: tokens, merges, weights, and a chat template!",
    "Don't forget: the dentist appointment is on Tuesday at 9:30, and I'll bring the forms.",
    "We're planning a hike in the mountains; they've said the trail is steep but beautiful.",
    "Code snippet: def add(a, b): return a + b  # simple, isn't it?",
    "Emoji test 🙂 and symbols like € £ ¥ © ™ and a tab\tinside a line.",
    "Line one\nLine two\n\nA new paragraph after an empty line.",
    "Numbers: 123 456 123456 456123 2024 2024 1999 365 100 250 123456789",
)


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
    pad `<|endoftext|>`) and a ChatML chat template. All 256 byte symbols
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
    fast.chat_template = CHATML_TRAINING_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return out_dir


def tiny_corpus() -> list[str]:
    """A few hundred words of varied text (several scripts, digits, punctuation, newlines)."""
    return [line for _ in range(3) for line in TINY_CORPUS_LINES]


def build_tiny_tokenizer(
    out_dir: Path, vocab_size: int = 500, split: SplitPattern = "qwen2"
) -> Path:
    """`train_tokenizer` on the tiny corpus.

    `split` picks the pre-tokenizer: Qwen2's split pattern (the default), Llama 3's, or GPT-2's
    classic byte-level regex. Every merge counts (min_frequency 0): the corpus is small.
    """
    return train_tokenizer(
        tiny_corpus(), out_dir, vocab_size=vocab_size, split=split, min_frequency=0
    )


def build_tiny_model(
    out_dir: Path,
    tokenizer_dir: Path,
    architecture: Literal["qwen2", "llama"] = "qwen2",
    *,
    seed: int = 0,
    rope_parameters: dict[str, Any] | None = None,
) -> Path:
    """A randomly initialised causal LM (hidden 64, 2 layers) saved with the tokenizer beside it.

    The vocabulary is padded past the tokenizer's size (as Qwen2.5's is) so exporters must
    handle embedding rows that no token uses. Weights are drawn with a wide initialiser so
    the random model is confident and greedy decoding has few near-ties between tokens.
    """
    import shutil

    import torch
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    vocab_size = (len(tokenizer) // 64 + 1) * 64
    common = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6,
        "initializer_range": 0.2,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }
    if rope_parameters is not None:
        common["rope_parameters"] = rope_parameters
    torch.manual_seed(seed)
    if architecture == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=True, **common))
    else:
        model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=False, **common))
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    for item in tokenizer_dir.iterdir():
        shutil.copy2(item, out_dir / item.name)
    return out_dir


def teach_replies(
    model_dir: Path, conversations: list[list[dict[str, str]]], *, steps: int = 60
) -> Path:
    """Overfit the model in `model_dir` until it answers each conversation's prompt with its
    final (assistant) message, greedily; saved in place.

    This gives tests a real model with known output: a random model says nothing
    predictable, a tiny model that memorised a few replies says exactly those.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    sequences = [
        torch.tensor([tokenizer.apply_chat_template(c, tokenize=True, return_dict=False)])
        for c in conversations
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    # Tensors this small train fastest on one thread; more threads only contend for the
    # cores other test workers use.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(steps):
            for ids in sequences:
                model(ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def torch_single_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models are fastest that way, and a second thread only
    fights the other processes sharing the machine's cores (and llama.cpp's threads)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny byte-level BPE tokenizer folder (ChatML special tokens and template)."""
    return build_tiny_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer"))


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A tiny random Qwen2ForCausalLM folder (tied embeddings) with its tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), tiny_tokenizer_dir, "qwen2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A tiny random LlamaForCausalLM folder (separate output matrix) with its tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), tiny_tokenizer_dir, "llama")


@pytest.fixture(scope="session")
def tiny_gguf_path(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_dir: Path) -> Path:
    """The tiny Qwen2 model exported to an f16 GGUF that llama.cpp loads."""
    from training.export import export_gguf

    return export_gguf(tiny_qwen2_dir, tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf", "f16")


@pytest.fixture(scope="session")
def smollm2_base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Base:
    """The packaged SmolLM2-135M-Instruct converted into a trainable folder: once per machine
    when pytest's cache is on (the folder is keyed by the GGUF's hash, so it cannot go stale),
    else once per session."""
    from training.bases import resolve_base

    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("twin-bases") if cache is not None else tmp_path_factory.mktemp("bases")
    return resolve_base("", Path(root))
