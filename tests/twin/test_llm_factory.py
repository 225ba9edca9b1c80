"""Building a language model from a role's settings."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from lm import (
    LLM,
    GenerationOptions,
    LlamaCppLLM,
    LLMUnavailable,
    OpenAICompatibleLLM,
    TransformersLLM,
)
from tests.lm.scenarios import MORNING, MORNING_REPLY
from tests.lm.scripted_server import ScriptedServer, chat_reply
from twin.config import ConfigError, LLMSettings
from twin.llm_factory import BACKENDS, build_llm

# Building the transformers backend runs torch: single-threaded, as every LLM test.
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_llamacpp_settings(chat_gguf_path: Path) -> None:
    settings = LLMSettings(
        backend="llamacpp", path=str(chat_gguf_path), threads=1, context_size=512, max_tokens=9
    )
    llm = build_llm(settings)
    assert isinstance(llm, LlamaCppLLM) and isinstance(llm, LLM)
    assert (llm.threads, llm.context_size) == (1, 512)
    assert llm.defaults == GenerationOptions(max_tokens=9, temperature=0.0)
    assert llm.structured_attempts == settings.max_retries + 1
    try:
        assert MORNING_REPLY.startswith(llm.complete(MORNING))
    finally:
        llm.close()


def test_transformers_settings(chat_model_dir: Path) -> None:
    llm = build_llm(LLMSettings(backend="transformers", path=str(chat_model_dir)))
    assert isinstance(llm, TransformersLLM)
    assert llm.complete(MORNING) == MORNING_REPLY


def test_openai_settings_take_the_key_from_the_environment(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_TEST_LLM_KEY", "sk-from-env")
    settings = LLMSettings(
        backend="openai",
        base_url=scripted_server.url,
        model="qwen2.5:7b-instruct",
        api_key_env="TWIN_TEST_LLM_KEY",
        temperature=0.3,
    )
    scripted_server.script(chat_reply("hi"))
    llm = build_llm(settings)
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.complete(MORNING) == "hi"
    request = scripted_server.requests[0]
    assert request.headers["Authorization"] == "Bearer sk-from-env"
    assert request.payload["model"] == "qwen2.5:7b-instruct"
    assert request.payload["temperature"] == 0.3


def test_building_never_loads_the_model(tmp_path: Path) -> None:
    llm = build_llm(LLMSettings(backend="llamacpp", path=str(tmp_path / "later.gguf")))
    (tmp_path / "later.gguf").write_bytes(b"not a model yet")
    with pytest.raises(LLMUnavailable, match=r"later\.gguf"):
        llm.complete(MORNING)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (LLMSettings(), "no language model is configured"),
        (LLMSettings(backend="llamacpp"), '"path"'),
        (LLMSettings(backend="transformers"), '"path"'),
        (LLMSettings(backend="openai", model="m"), '"base_url"'),
        (LLMSettings(backend="openai", base_url="http://127.0.0.1:1/v1"), '"model"'),
    ],
)
def test_incomplete_settings_are_config_errors(settings: LLMSettings, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        build_llm(settings)


def test_every_backend_the_settings_accept_is_registered() -> None:
    accepted = set(get_args(LLMSettings.model_fields["backend"].annotation))
    assert accepted == {"none", *BACKENDS}
