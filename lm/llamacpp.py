"""A GGUF model run in-process by llama.cpp (llama-cpp-python).

The model loads on first use, not at construction, and one lock serialises generation: a
llama.cpp context is not safe to share, so concurrent callers wait their turn. The chat
template travels in the GGUF and llama-cpp-python applies it. Structured output is
constrained by a grammar built from the JSON schema, so even a weak model emits JSON.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm.base import (
    TEMPLATE_TOKENS,
    ChatLLM,
    ChatMessage,
    GenerationOptions,
    LLMError,
    LLMUnavailable,
)

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar


# llama-cpp-python points the process's stdout and stderr at /dev/null while a model loads;
# two loads at once (the owner's and the shared model) can leave them there for good.
_LOADING = threading.Lock()


def default_threads() -> int:
    """All cores but one, so the rest of the machine keeps breathing (llama.cpp collapses
    when its threads are oversubscribed)."""
    return max(1, (os.cpu_count() or 2) - 1)


class LlamaCppLLM(ChatLLM):
    """A GGUF file served in this process by llama.cpp."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        threads: int = 0,
        context_size: int = 2048,
        defaults: GenerationOptions | None = None,
        structured_attempts: int = 3,
    ):
        super().__init__(
            defaults or GenerationOptions(max_tokens=512, temperature=0.0), structured_attempts
        )
        self.model_path = Path(model_path)
        self.threads = threads or default_threads()
        self.context_size = context_size
        self._llama: Llama | None = None
        self._lock = threading.Lock()
        self._grammars: dict[str, LlamaGrammar] = {}

    @property
    def name(self) -> str:
        return f"llamacpp:{self.model_path}"

    def load(self) -> None:
        """Load the model now rather than on the first call (raises LLMUnavailable)."""
        with self._lock:
            self._model()

    def close(self) -> None:
        """Free the model; the next call loads it again."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Exact token counts of the contents, plus the template's tags per message."""
        with self._lock:
            model = self._model()
            sizes = [len(model.tokenize(m.content.encode(), add_bos=False)) for m in messages]
        return sum(sizes) + TEMPLATE_TOKENS * (len(messages) + 1)

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        with self._lock:
            result = self._generate(messages, options, stream=False)
        return _message_content(result, self.model_path)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        with self._lock:
            chunks = self._generate(messages, options, stream=True)
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise LLMError(
                    f"llama.cpp failed while streaming {self.model_path}: {exc}"
                ) from exc
            finally:
                chunks.close()

    def _complete_json(
        self, messages: list[ChatMessage], json_schema: dict[str, Any], options: GenerationOptions
    ) -> str:
        with self._lock:
            grammar = self._grammar(json_schema)
            result = self._generate(messages, options, stream=False, grammar=grammar)
        return _message_content(result, self.model_path)

    def schema_grammar(self, json_schema: dict[str, Any]) -> LlamaGrammar | None:
        """The grammar llama.cpp builds for `json_schema`; None when it cannot (the converter
        or llama.cpp's own grammar parser refuses it). Loads the model: the parser needs its
        vocabulary."""
        with self._lock:
            return self._schema_grammar(json.dumps(json_schema))

    def _generate(
        self,
        messages: list[ChatMessage],
        options: GenerationOptions,
        *,
        stream: bool,
        grammar: LlamaGrammar | None = None,
    ) -> Any:
        """Run llama-cpp-python's chat completion; the caller holds the lock."""
        model = self._model()
        try:
            return model.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=options.max_tokens,
                temperature=options.temperature or 0.0,
                stop=list(options.stop),
                seed=options.seed,
                stream=stream,
                grammar=grammar,
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMError(f"llama.cpp could not generate with {self.model_path}: {exc}") from exc

    def _model(self) -> Llama:
        """The loaded model; loads it on first use. The caller holds the lock."""
        if self._llama is None:
            if not self.model_path.is_file():
                raise LLMUnavailable(f"GGUF model file not found: {self.model_path}")
            from llama_cpp import Llama

            try:
                with _LOADING:
                    self._llama = Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.context_size,
                        n_threads=self.threads,
                        n_threads_batch=self.threads,
                        verbose=False,
                    )
            except (ValueError, RuntimeError, OSError) as exc:
                raise LLMUnavailable(
                    f"cannot load GGUF model {self.model_path}: {exc} "
                    "(is it a complete GGUF file written by `twin` or llama.cpp?)"
                ) from exc
        return self._llama

    def _grammar(self, json_schema: dict[str, Any]) -> LlamaGrammar:
        """A grammar that only admits JSON matching the schema (cached per schema); the
        caller holds the lock.

        A schema llama.cpp cannot turn into a grammar gets the generic JSON grammar instead
        (the validation after generation still checks the details): handing llama.cpp a
        grammar its parser refused would crash the process.
        """
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        key = json.dumps(json_schema)
        if key not in self._grammars:
            self._grammars[key] = self._schema_grammar(key) or LlamaGrammar.from_string(
                JSON_GBNF, verbose=False
            )
        return self._grammars[key]

    def _schema_grammar(self, schema_json: str) -> LlamaGrammar | None:
        """The schema's grammar if both the converter and llama.cpp's parser take it; the
        caller holds the lock."""
        from llama_cpp.llama_grammar import LlamaGrammar

        try:
            grammar = LlamaGrammar.from_json_schema(schema_json, verbose=False)
        except (AssertionError, ValueError, KeyError, RecursionError):
            return None
        return grammar if self._parses(grammar) else None

    def _parses(self, grammar: LlamaGrammar) -> bool:
        """Whether llama.cpp's grammar parser accepts `grammar` (llama-cpp-python only parses
        it when sampling, and then dereferences the refused grammar's null sampler)."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self._model().model)
        # `_grammar` and `_root` are the text and start rule llama-cpp-python itself passes.
        sampler = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode(), grammar._root.encode()
        )
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True


def _message_content(result: Any, model_path: Path) -> str:
    try:
        content = result["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMError(f"llama.cpp returned no message for {model_path}: {result!r}") from exc
    return content or ""
