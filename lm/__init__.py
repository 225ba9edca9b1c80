"""Language models behind one interface: llama.cpp in-process, OpenAI-compatible HTTP,
transformers. The twin builds one from its settings with `twin.llm_factory.build_llm`; this
package knows nothing of settings, so any layer (memory's L1 writers too) can take an LLM.

The backends are imported when first named: `twin.tasks` (and through it every `twin` command)
needs only the interface, not httpx or llama.cpp."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lm.base import (
    LLM,
    ChatLLM,
    ChatMessage,
    GenerationOptions,
    LLMError,
    LLMUnavailable,
    StructuredOutputError,
    extract_json,
    parse_structured,
)

if TYPE_CHECKING:
    from lm.hf_transformers import TransformersLLM
    from lm.llamacpp import LlamaCppLLM
    from lm.openai_http import OpenAICompatibleLLM

_LAZY = {
    "TransformersLLM": "lm.hf_transformers",
    "LlamaCppLLM": "lm.llamacpp",
    "OpenAICompatibleLLM": "lm.openai_http",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "LLM",
    "ChatLLM",
    "ChatMessage",
    "GenerationOptions",
    "LLMError",
    "LLMUnavailable",
    "LlamaCppLLM",
    "OpenAICompatibleLLM",
    "StructuredOutputError",
    "TransformersLLM",
    "extract_json",
    "parse_structured",
]
