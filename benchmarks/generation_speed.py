"""Generation speed of one model: transformers against llama.cpp (f16 and q8_0 GGUF).

    python benchmarks/generation_speed.py MODEL_DIR [--tokens 128] [--threads N]

MODEL_DIR is a Hugging Face model folder (e.g. a version's owner-hf/ under <home>/models/).
It is exported to GGUF in a temporary folder; each engine then decodes the same chat prompt
greedily for exactly --tokens new tokens (end of turn ignored). Ends by printing one line of
JSON: prompt tokens, and per engine the prefill seconds and the decode tokens/s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.export import export_gguf
from training.tiny import load_tokenizer
from twin.llm.llamacpp import default_threads

PROMPT = [
    {
        "role": "system",
        "content": "You are the AI twin of Iris Calder, talking with Iris Calder. Say 'you' "
        "to them. Answer from the memory; if it has nothing on this, say so.",
    },
    {
        "role": "user",
        "content": "[memory]\n2026-03-15 Iris Calder: Lisbon half done! 1:52:41, legs are "
        "jelly, Biscuit was unimpressed.\n2026-03-16 Tomás: you're a machine\n\n[message]\n"
        "When did I run the half marathon, and how fast was I?",
    },
]


def parameter_count(model_dir: Path) -> int:
    """Parameters stored in the folder's safetensors files."""
    from safetensors import safe_open

    count = 0
    for weights in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(weights), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                count += math.prod(f.get_slice(name).get_shape())
    return count


def transformers_speed(model_dir: Path, prompt: list[int], tokens: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([prompt])
    with torch.no_grad():
        started = time.perf_counter()
        model(ids)
        prefill = time.perf_counter() - started
        started = time.perf_counter()
        output = model.generate(
            ids,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=0,
        )
        seconds = time.perf_counter() - started
    generated = output.shape[1] - len(prompt)
    # generate() also pays for the prefill; take it out of the decode time
    return {
        "prefill_s": round(prefill, 3),
        "decode_tokens_per_s": round(generated / max(seconds - prefill, 1e-9), 1),
    }


def llamacpp_speed(gguf: Path, prompt: list[int], tokens: int, threads: int) -> dict[str, float]:
    from llama_cpp import Llama

    llm = Llama(
        str(gguf),
        n_ctx=len(prompt) + tokens + 8,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    try:
        started = time.perf_counter()
        llm.eval(prompt)
        prefill = time.perf_counter() - started
        llm.reset()
        started = time.perf_counter()
        generated = 0
        # generate() never stops on its own: it yields until we break
        for _ in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            generated += 1
            if generated == tokens:
                break
        seconds = time.perf_counter() - started
    finally:
        llm.close()
    return {
        "prefill_s": round(prefill, 3),
        "decode_tokens_per_s": round(generated / max(seconds - prefill, 1e-9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a Hugging Face model folder")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens to decode")
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.model_dir)
    prompt = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_dict=False)
    figures: dict[str, object] = {
        "model": str(args.model_dir),
        "parameters_m": round(parameter_count(args.model_dir) / 1e6, 2),
        "threads": args.threads,
        "prompt_tokens": len(prompt),
        "new_tokens": args.tokens,
    }
    figures["transformers_f32"] = transformers_speed(args.model_dir, prompt, args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        for quant in ("f16", "q8_0"):
            gguf = export_gguf(args.model_dir, Path(tmp) / f"model.{quant}.gguf", quant)
            figures[f"llamacpp_{quant}"] = {
                "file_mb": round(gguf.stat().st_size / 1e6, 1),
                **llamacpp_speed(gguf, prompt, args.tokens, args.threads),
            }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
