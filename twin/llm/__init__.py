"""Language models behind one interface: llama.cpp in-process, OpenAI-compatible HTTP,
transformers. Build one from settings with `build_llm`."""

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
from twin.llm.factory import build_llm
from twin.llm.hf_transformers import TransformersLLM
from twin.llm.llamacpp import LlamaCppLLM
from twin.llm.openai_http import OpenAICompatibleLLM

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
