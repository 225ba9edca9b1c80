"""Language models behind one interface: llama.cpp in-process, OpenAI-compatible HTTP,
transformers. Build one from settings with `build_llm`.

The backends and the factory are imported when first named: `twin.tasks` (and through it every
`twin` command) needs only the interface, not httpx or the settings."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from twin.llm.base import (
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
    from twin.llm.factory import build_llm
    from twin.llm.hf_transformers import TransformersLLM
    from twin.llm.llamacpp import LlamaCppLLM
    from twin.llm.openai_http import OpenAICompatibleLLM

_LAZY = {
    "build_llm": "twin.llm.factory",
    "TransformersLLM": "twin.llm.hf_transformers",
    "LlamaCppLLM": "twin.llm.llamacpp",
    "OpenAICompatibleLLM": "twin.llm.openai_http",
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
    "build_llm",
    "extract_json",
    "parse_structured",
]
