"""A Hugging Face model folder run by transformers on the CPU.

Slower than llama.cpp, but it runs a freshly trained model before any export, and with it
the exact tokenizer and chat template training used. Greedy when the temperature is 0.
Structured output has no grammar here: the prompt asks for JSON, repair and retries do the
rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm.base import ChatLLM, ChatMessage, GenerationOptions, LLMError, LLMUnavailable

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TransformersLLM(ChatLLM):
    """A local transformers causal LM with a chat template."""

    def __init__(
        self,
        model_dir: Path | str,
        *,
        defaults: GenerationOptions | None = None,
        structured_attempts: int = 3,
    ):
        super().__init__(
            defaults or GenerationOptions(max_tokens=512, temperature=0.0), structured_attempts
        )
        self.model_dir = Path(model_dir)
        self._loaded: tuple[PreTrainedModel, PreTrainedTokenizerBase] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"transformers:{self.model_dir}"

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        with self._lock:
            model, tokenizer = self._load()
            inputs = self._inputs(tokenizer, messages)
            output = model.generate(**inputs, **self._generation_kwargs(tokenizer, options))
        prompt_length = inputs["input_ids"].shape[1]
        text = tokenizer.decode(output[0][prompt_length:], skip_special_tokens=True)
        return _cut_at_stop(text, options.stop)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancelled = threading.Event()

        class _WhenCancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancelled.is_set()

        with self._lock:
            model, tokenizer = self._load()
            inputs = self._inputs(tokenizer, messages)
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            kwargs = self._generation_kwargs(tokenizer, options)
            kwargs["stopping_criteria"] = StoppingCriteriaList([_WhenCancelled()])
            failure: list[BaseException] = []

            def generate() -> None:
                try:
                    model.generate(**inputs, **kwargs, streamer=streamer)
                except BaseException as exc:  # re-raised in the consumer's thread
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=generate, name="transformers-generate", daemon=True)
            worker.start()
            stops = _StopFilter(options.stop)
            exhausted = False
            try:
                for text in streamer:
                    piece = stops.feed(text)
                    if piece:
                        yield piece
                    if stops.stopped:
                        break
                else:
                    exhausted = True
                    if failure:
                        raise LLMError(f"generation failed in {self.model_dir}: {failure[0]}")
                    rest = stops.finish()
                    if rest:
                        yield rest
            finally:
                cancelled.set()
                if not exhausted:
                    for _ in streamer:  # drain to the end signal, so the worker never blocks
                        pass
                worker.join()

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """Model and tokenizer, loaded on first use; the caller holds the lock."""
        if self._loaded is None:
            if not (self.model_dir / "config.json").is_file():
                raise LLMUnavailable(f"no transformers model folder at {self.model_dir}")
            from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

            try:
                # tokenizer.json is the exact pipeline training used; AutoTokenizer may pick a
                # model-specific class that rebuilds the pre-tokenizer its own way.
                if (self.model_dir / "tokenizer.json").is_file():
                    tokenizer = PreTrainedTokenizerFast.from_pretrained(self.model_dir)
                else:
                    tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
                model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype="auto")
            except (OSError, ValueError, RuntimeError) as exc:
                raise LLMUnavailable(
                    f"cannot load the transformers model in {self.model_dir}: {exc}"
                ) from exc
            model.eval()
            self._loaded = (model, tokenizer)
        return self._loaded

    def _inputs(self, tokenizer: PreTrainedTokenizerBase, messages: list[ChatMessage]) -> Any:
        if not tokenizer.chat_template:
            raise LLMError(f"{self.model_dir} has no chat template")
        return tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )

    def _generation_kwargs(
        self, tokenizer: PreTrainedTokenizerBase, options: GenerationOptions
    ) -> dict[str, Any]:
        import torch

        model, _ = self._load()
        configured = model.generation_config.eos_token_id
        eos = list(configured) if isinstance(configured, list) else [configured]
        eos = [e for e in [*eos, tokenizer.eos_token_id] if e is not None]
        kwargs: dict[str, Any] = {
            "max_new_tokens": options.max_tokens,
            "eos_token_id": sorted(set(eos)) or None,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else eos[0],
        }
        temperature = options.temperature or 0.0
        if temperature > 0:
            if options.seed is not None:
                torch.manual_seed(options.seed)
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if options.stop:
            kwargs.update(stop_strings=list(options.stop), tokenizer=tokenizer)
        return kwargs


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to the first stop string (transformers keeps the stop string itself)."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


class _StopFilter:
    """Passes streamed text through, holding back what might be the start of a stop string."""

    def __init__(self, stop: tuple[str, ...]):
        self.stop = stop
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        self.held += text
        cut = _cut_at_stop(self.held, self.stop)
        if len(cut) < len(self.held):
            self.held, self.stopped = "", True
            return cut
        keep = max((_overlap(self.held, s) for s in self.stop), default=0)
        ready, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep :]
        return ready

    def finish(self) -> str:
        rest, self.held = self.held, ""
        return rest


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that begins `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0
