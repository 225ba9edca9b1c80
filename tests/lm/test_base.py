"""The shared layer: JSON repair, the structured-output loop, option defaults, async variants."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest

from lm import (
    LLM,
    ChatLLM,
    ChatMessage,
    GenerationOptions,
    LLMError,
    StructuredOutputError,
    extract_json,
    parse_structured,
)
from tests.lm.scenarios import Mood

QUESTION = [ChatMessage("user", "How do I feel?")]


class ScriptedLLM(ChatLLM):
    """A backend that replies from a script and records what it was asked."""

    def __init__(self, replies: list[str], attempts: int = 3):
        super().__init__(GenerationOptions(max_tokens=64, temperature=0.0), attempts)
        self.replies = list(replies)
        self.calls: list[tuple[list[ChatMessage], GenerationOptions]] = []
        self.stream_closed = threading.Event()

    @property
    def name(self) -> str:
        return "scripted"

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        self.calls.append((messages, options))
        return self.replies.pop(0)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        self.calls.append((messages, options))
        try:
            for piece in self.replies.pop(0).split(" "):
                if piece == "BOOM":
                    raise LLMError("the backend broke mid-stream")
                yield piece
        finally:
            self.stream_closed.set()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here you go:\n```json\n{"a": [1, 2]}\n```\nAnything else?', {"a": [1, 2]}),
        (
            "Sure! {'a': 'it\\'s', 'b': 'say \"hi\"'} hope that helps",
            {"a": "it's", "b": 'say "hi"'},
        ),
        ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ("{a: True, b: None, c: False}", {"a": True, "b": None, "c": False}),
        ('{"note": "line one\nline two\tand \x04"}', {"note": "line one\nline two\tand \x04"}),
        (
            '{"text": "braces } and ] inside, and a comma,]"}',
            {"text": "braces } and ] inside, and a comma,]"},
        ),
        ('I think {maybe} but really: {"a": 1} {"b": 2}', {"a": 1}),
        ('```\n{"emoji": "🙂", "true_value": true}\n```', {"emoji": "🙂", "true_value": True}),
    ],
)
def test_extract_json_repairs_common_mistakes(reply: str, expected: dict) -> None:
    assert json.loads(extract_json(reply)) == expected


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("I cannot answer that.", "no JSON object"),
        ('{"mood": "calm", "energy": "hi', "cut off"),  # truncated: never completed
        # cut off by max_tokens: the first inner object is not the reply
        ('{"facts": [{"fact": "a", "memories": [1]}, {"fact": "b', "cut off"),
        ('{"mood": "calm" "energy": "high"}', "not valid JSON"),
    ],
)
def test_extract_json_refuses_what_it_cannot_fix(reply: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        extract_json(reply)


def test_parse_structured_names_the_invalid_fields() -> None:
    with pytest.raises(ValueError, match=r"Mood.*mood.*energy") as excinfo:
        parse_structured('{"mood": "ecstatic", "tags": []}', Mood)
    assert "Field required" in str(excinfo.value)
    assert parse_structured("{'mood': 'busy', 'energy': 'low', 'tags': []}", Mood) == Mood(
        mood="busy", energy="low", tags=[]
    )


def test_structured_asks_again_with_the_error_until_valid() -> None:
    llm = ScriptedLLM(
        [
            "I feel fine!",
            '{"mood": "great", "energy": "high", "tags": []}',
            '{"mood": "calm", "energy": "high", "tags": ["tea"]}',
        ]
    )
    assert llm.structured(QUESTION, Mood) == Mood(mood="calm", energy="high", tags=["tea"])
    assert len(llm.calls) == 3
    first, second, third = (messages for messages, _ in llm.calls)
    assert first[-1].content.startswith("How do I feel?\n\nReply with only a JSON object")
    assert '"energy"' in first[-1].content  # the schema travels in the prompt
    assert second[-2] == ChatMessage("assistant", "I feel fine!")
    assert "no JSON object" in second[-1].content
    assert "mood: Input should be 'calm', 'busy' or 'tired'" in third[-1].content


def test_structured_gives_up_with_everything_needed_to_debug() -> None:
    llm = ScriptedLLM(["nope", "still no", '{"mood": "calm"}'])
    with pytest.raises(StructuredOutputError) as excinfo:
        llm.structured(QUESTION, Mood)
    error = excinfo.value
    assert (error.schema_name, error.attempts, error.last_reply) == ("Mood", 3, '{"mood": "calm"}')
    assert "energy: Field required" in error.last_error
    assert "Mood" in str(error) and "3 attempt" in str(error) and '{"mood": "calm"}' in str(error)


def test_options_fall_back_to_the_backend_defaults() -> None:
    llm = ScriptedLLM(["a", "b"])
    llm.complete(QUESTION)
    llm.complete(QUESTION, GenerationOptions(temperature=0.7, stop=("\n",), seed=3))
    assert llm.calls[0][1] == GenerationOptions(max_tokens=64, temperature=0.0)
    assert llm.calls[1][1] == GenerationOptions(
        max_tokens=64, temperature=0.7, stop=("\n",), seed=3
    )
    with pytest.raises(ValueError, match="at least one message"):
        llm.complete([])
    assert isinstance(llm, LLM)


async def test_async_variants_run_off_the_event_loop() -> None:
    llm = ScriptedLLM(["done", '{"mood": "busy", "energy": "low", "tags": []}', "one two three"])
    loop_thread = threading.get_ident()
    seen_threads = []
    original = llm._complete

    def recording(messages: list[ChatMessage], options: GenerationOptions) -> str:
        seen_threads.append(threading.get_ident())
        return original(messages, options)

    llm._complete = recording  # type: ignore[method-assign]
    assert await llm.acomplete(QUESTION) == "done"
    assert (await llm.astructured(QUESTION, Mood)).mood == "busy"
    assert [piece async for piece in llm.astream(QUESTION)] == ["one", "two", "three"]
    assert seen_threads and loop_thread not in seen_threads


async def test_astream_raises_backend_errors_and_closes_abandoned_streams() -> None:
    llm = ScriptedLLM(["one BOOM three", "one two three four"])
    received = []
    with pytest.raises(LLMError, match="mid-stream"):
        async for piece in llm.astream(QUESTION):
            received.append(piece)
    assert received == ["one"]

    llm.stream_closed.clear()
    stream = llm.astream(QUESTION)
    assert await anext(stream) == "one"
    await stream.aclose()
    assert await asyncio.to_thread(llm.stream_closed.wait, 5)
