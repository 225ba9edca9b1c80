"""The in-process llama.cpp backend on real tiny GGUF files."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import BaseModel

from lm import (
    ChatMessage,
    GenerationOptions,
    LlamaCppLLM,
    LLMError,
    LLMUnavailable,
    extract_json,
)
from lm.base import structured_prompt
from lm.schemas import grammar_schema
from memory.profile.llm_writers import BioReply, FactBatchReply, TopicNameReply
from tests.lm.scenarios import MOOD, MORNING, MORNING_REPLY, Mood, Snapshot
from training.synthesize.filters import JudgeScore
from training.synthesize.with_llm import SynthesisBatch

# Every schema the project asks a model to fill.
PROJECT_SCHEMAS: list[type[BaseModel]] = [
    TopicNameReply,
    FactBatchReply,
    BioReply,
    SynthesisBatch,
    JudgeScore,
]


@pytest.fixture(scope="module")
def chat_llm(chat_gguf_path: Path) -> Iterator[LlamaCppLLM]:
    llm = LlamaCppLLM(chat_gguf_path, threads=1, context_size=1024)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def random_llm(tiny_gguf_path: Path) -> Iterator[LlamaCppLLM]:
    llm = LlamaCppLLM(
        tiny_gguf_path, threads=1, context_size=2048, defaults=GenerationOptions(max_tokens=400)
    )
    yield llm
    llm.close()


def test_complete_uses_the_chat_template_from_the_gguf(chat_llm: LlamaCppLLM) -> None:
    # the model memorised this reply to this prompt rendered with its ChatML template
    assert chat_llm.complete(MORNING) == MORNING_REPLY
    assert chat_llm.complete(MORNING, GenerationOptions(stop=(",",))) == "Green tea"
    assert chat_llm.complete(MORNING, GenerationOptions(max_tokens=3)) != MORNING_REPLY


def test_stream_yields_the_reply_in_pieces(chat_llm: LlamaCppLLM) -> None:
    pieces = list(chat_llm.stream(MORNING))
    assert len(pieces) > 3
    assert "".join(pieces) == MORNING_REPLY


def test_structured_is_constrained_by_the_schema_grammar(
    chat_llm: LlamaCppLLM, random_llm: LlamaCppLLM
) -> None:
    # Unconstrained, the chat model answers this with prose around broken JSON...
    prompt = structured_prompt(MOOD, Mood.model_json_schema())
    assert chat_llm.complete(prompt).startswith("Sure! ```json")
    # ...and a random model with noise; under the grammar both emit a valid object.
    assert isinstance(chat_llm.structured(MOOD, Mood), Mood)
    with pytest.raises(ValueError):
        extract_json(random_llm.complete(MORNING))
    for seed in range(3):
        options = GenerationOptions(temperature=1.0, seed=seed)
        snapshot = random_llm.structured(MORNING, Snapshot, options)
        assert len(snapshot.note) <= 16 and len(snapshot.tags) <= 3
        raw = random_llm._complete_json(
            structured_prompt(MORNING, Snapshot.model_json_schema()),
            Snapshot.model_json_schema(),
            random_llm._resolve(options),
        )
        # valid as generated, no repair (llama.cpp's grammar may let a raw control
        # character into a string, which strict JSON forbids and the repair escapes)
        assert Snapshot.model_validate(json.loads(raw, strict=False))


@pytest.mark.parametrize("schema", PROJECT_SCHEMAS, ids=lambda s: s.__name__)
def test_every_schema_the_project_uses_becomes_a_llama_cpp_grammar(
    schema: type[BaseModel], random_llm: LlamaCppLLM
) -> None:
    assert random_llm.schema_grammar(grammar_schema(schema.model_json_schema())) is not None


def test_a_schema_llama_cpp_refuses_gets_the_plain_json_grammar(random_llm: LlamaCppLLM) -> None:
    # BioReply as pydantic writes it: strings of up to 1500 characters, which llama.cpp's
    # grammar parser refuses (handing it over as it is crashed the process)
    refused = BioReply.model_json_schema()
    assert random_llm.schema_grammar(refused) is None
    reply = random_llm._complete_json(
        MORNING, refused, random_llm._resolve(GenerationOptions(max_tokens=12))
    )
    assert reply.lstrip().startswith("{")


def test_concurrent_callers_queue_instead_of_crashing(chat_llm: LlamaCppLLM) -> None:
    def ask(i: int) -> str:
        if i % 2:
            return "".join(chat_llm.stream(MORNING))
        return chat_llm.complete(MORNING)

    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(ask, range(6)))
    assert replies == [MORNING_REPLY] * 6


async def test_async_variants(chat_llm: LlamaCppLLM) -> None:
    replies = await asyncio.gather(*(chat_llm.acomplete(MORNING) for _ in range(3)))
    assert replies == [MORNING_REPLY] * 3
    assert "".join([piece async for piece in chat_llm.astream(MORNING)]) == MORNING_REPLY
    assert isinstance(await chat_llm.astructured(MOOD, Mood), Mood)


def test_prompt_longer_than_the_context_is_an_error(chat_gguf_path: Path) -> None:
    llm = LlamaCppLLM(chat_gguf_path, threads=1, context_size=256)
    long_question = [ChatMessage("user", "tea " * 400)]
    try:
        with pytest.raises(LLMError, match=r"chat\.gguf.*context"):
            llm.complete(long_question)
        with pytest.raises(LLMError, match=r"chat\.gguf.*context"):
            list(llm.stream(long_question))
        assert llm.complete(MORNING) == MORNING_REPLY  # the lock was released
    finally:
        llm.close()


def test_model_loads_lazily_and_broken_files_are_unavailable(tmp_path: Path) -> None:
    missing = LlamaCppLLM(tmp_path / "nowhere.gguf")  # constructing never touches the file
    with pytest.raises(LLMUnavailable, match=r"not found.*nowhere\.gguf"):
        missing.complete(MORNING)

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(LLMUnavailable, match=r"cannot load.*broken\.gguf"):
        LlamaCppLLM(broken).complete(MORNING)


def test_threads_default_leaves_a_core_free(tiny_gguf_path: Path) -> None:
    assert LlamaCppLLM(tiny_gguf_path).threads == max(1, (os.cpu_count() or 2) - 1)
    assert LlamaCppLLM(tiny_gguf_path, threads=3).threads == 3
