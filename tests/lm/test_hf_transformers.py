"""The transformers backend on the tiny chat model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm import GenerationOptions, LLMUnavailable, StructuredOutputError, TransformersLLM
from tests.lm.scenarios import (
    MOOD,
    MORNING,
    MORNING_REPLY,
    WEATHER,
    Mood,
    Weather,
)


@pytest.fixture(scope="module")
def llm(chat_model_dir: Path) -> TransformersLLM:
    return TransformersLLM(chat_model_dir, defaults=GenerationOptions(max_tokens=96))


def test_complete_and_stream_agree(llm: TransformersLLM) -> None:
    assert llm.complete(MORNING) == MORNING_REPLY
    pieces = list(llm.stream(MORNING))
    assert len(pieces) > 3
    assert "".join(pieces) == MORNING_REPLY


def test_stop_strings_cut_the_reply(llm: TransformersLLM) -> None:
    options = GenerationOptions(stop=("always",))
    assert llm.complete(MORNING, options) == "Green tea, "
    assert "".join(llm.stream(MORNING, options)) == "Green tea, "


def test_structured_repairs_a_broken_reply(llm: TransformersLLM) -> None:
    # The model answers with prose, a code fence, single quotes and trailing commas.
    assert llm.structured(MOOD, Mood) == Mood(mood="calm", energy="high", tags=["tea", "garden"])


def test_structured_fails_loudly_when_nothing_validates(llm: TransformersLLM) -> None:
    with pytest.raises(StructuredOutputError) as excinfo:
        llm.structured(WEATHER, Weather, GenerationOptions(max_tokens=24))
    assert excinfo.value.attempts == 3
    assert excinfo.value.schema_name == "Weather"
    assert excinfo.value.last_error
    # the message quotes the start of the reply, on one line
    quoted = " ".join(excinfo.value.last_reply.split())[:20]
    assert repr(quoted)[1:-1] in str(excinfo.value)


def test_abandoned_stream_releases_the_model(llm: TransformersLLM) -> None:
    stream = llm.stream(MORNING, GenerationOptions(max_tokens=48))
    assert next(stream)
    stream.close()
    assert llm.complete(MORNING) == MORNING_REPLY


async def test_async_variants(llm: TransformersLLM) -> None:
    assert await llm.acomplete(MORNING) == MORNING_REPLY
    assert "".join([p async for p in llm.astream(MORNING)]) == MORNING_REPLY
    assert (await llm.astructured(MOOD, Mood)).mood == "calm"


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable, match="no-model"):
        TransformersLLM(tmp_path / "no-model").complete(MORNING)
