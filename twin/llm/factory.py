"""Build the LLM a role's settings describe."""

from __future__ import annotations

import os

from twin.config import ConfigError, LLMSettings
from twin.llm.base import LLM, GenerationOptions
from twin.llm.hf_transformers import TransformersLLM
from twin.llm.llamacpp import LlamaCppLLM
from twin.llm.openai_http import OpenAICompatibleLLM


def build_llm(settings: LLMSettings) -> LLM:
    """The backend `settings` names, configured but not yet loaded or connected.

    `max_retries` also bounds structured output: a reply that does not validate is asked for
    again up to that many times. Raises ConfigError when the settings are incomplete.
    """
    defaults = GenerationOptions(max_tokens=settings.max_tokens, temperature=settings.temperature)
    attempts = settings.max_retries + 1
    if settings.backend == "llamacpp":
        _require(settings, "path")
        return LlamaCppLLM(
            settings.path,
            threads=settings.threads,
            context_size=settings.context_size,
            defaults=defaults,
            structured_attempts=attempts,
        )
    if settings.backend == "transformers":
        _require(settings, "path")
        return TransformersLLM(settings.path, defaults=defaults, structured_attempts=attempts)
    if settings.backend == "openai":
        _require(settings, "base_url")
        _require(settings, "model")
        return OpenAICompatibleLLM(
            settings.base_url,
            settings.model,
            api_key=settings.api_key or os.environ.get(settings.api_key_env, ""),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            defaults=defaults,
            structured_attempts=attempts,
        )
    raise ConfigError('no language model is configured for this role (backend = "none")')


def _require(settings: LLMSettings, field: str) -> None:
    if not getattr(settings, field):
        raise ConfigError(f'the {settings.backend} LLM backend needs "{field}" to be set')
