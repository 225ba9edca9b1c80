"""Build the LLM a role's settings describe.

Each backend registers how it is built (`@backend("name", needs...)`); `build_llm` looks the
role's `backend` up. The names registered here are exactly the ones `LLMSettings.backend`
accepts besides "none" (a test holds the two together).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from lm.base import LLM, GenerationOptions
from lm.hf_transformers import TransformersLLM
from lm.llamacpp import LlamaCppLLM
from lm.openai_http import OpenAICompatibleLLM
from twin.config import ConfigError, LLMSettings

# (settings, per-call defaults, structured-output attempts) -> the backend's LLM
Builder = Callable[[LLMSettings, GenerationOptions, int], LLM]


@dataclass(frozen=True)
class Backend:
    """How one kind of language model is built, and the settings it cannot do without."""

    needs: tuple[str, ...]
    build: Builder


BACKENDS: dict[str, Backend] = {}


def backend(name: str, *needs: str) -> Callable[[Builder], Builder]:
    """Register the decorated function as the builder of backend `name`."""

    def register(build: Builder) -> Builder:
        BACKENDS[name] = Backend(needs, build)
        return build

    return register


def build_llm(settings: LLMSettings) -> LLM:
    """The backend `settings` names, configured but not yet loaded or connected.

    `max_retries` also bounds structured output: a reply that does not validate is asked for
    again up to that many times. Raises ConfigError when the settings are incomplete.
    """
    chosen = BACKENDS.get(settings.backend)
    if chosen is None:
        raise ConfigError('no language model is configured for this role (backend = "none")')
    for field in chosen.needs:
        if not getattr(settings, field):
            raise ConfigError(f'the {settings.backend} LLM backend needs "{field}" to be set')
    defaults = GenerationOptions(max_tokens=settings.max_tokens, temperature=settings.temperature)
    return chosen.build(settings, defaults, settings.max_retries + 1)


@backend("llamacpp", "path")
def _llamacpp(settings: LLMSettings, defaults: GenerationOptions, attempts: int) -> LLM:
    return LlamaCppLLM(
        settings.path,
        threads=settings.threads,
        context_size=settings.context_size,
        defaults=defaults,
        structured_attempts=attempts,
    )


@backend("transformers", "path")
def _transformers(settings: LLMSettings, defaults: GenerationOptions, attempts: int) -> LLM:
    return TransformersLLM(settings.path, defaults=defaults, structured_attempts=attempts)


@backend("openai", "base_url", "model")
def _openai(settings: LLMSettings, defaults: GenerationOptions, attempts: int) -> LLM:
    return OpenAICompatibleLLM(
        settings.base_url,
        settings.model,
        api_key=settings.api_key or os.environ.get(settings.api_key_env, ""),
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        defaults=defaults,
        structured_attempts=attempts,
    )
