"""The OpenAI-compatible HTTP backend against llama.cpp's real server and a scripted stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.twin.llm.conftest import free_port
from tests.twin.llm.scenarios import MOOD, MORNING, MORNING_REPLY, Mood, Snapshot
from tests.twin.llm.scripted_server import (
    ScriptedReply,
    ScriptedServer,
    chat_reply,
    error_reply,
    sse_reply,
)
from twin.llm import (
    GenerationOptions,
    LLMError,
    LLMUnavailable,
    OpenAICompatibleLLM,
    StructuredOutputError,
)

VALID_MOOD = '{"mood": "busy", "energy": "low", "tags": ["work"]}'


def _client(url: str, **kwargs: object) -> OpenAICompatibleLLM:
    options = {"max_retries": 2, "backoff": 0.01, "timeout": 10.0, **kwargs}
    return OpenAICompatibleLLM(url, "twin-test", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served(llama_server: str) -> Iterator[OpenAICompatibleLLM]:
    llm = _client(llama_server, defaults=GenerationOptions(max_tokens=200, temperature=0.0))
    yield llm
    llm.close()


# --- against `python -m llama_cpp.server` -------------------------------------------------


def test_llama_server_complete_and_stream(served: OpenAICompatibleLLM) -> None:
    assert served.complete(MORNING) == MORNING_REPLY
    pieces = list(served.stream(MORNING))
    assert len(pieces) > 3
    assert "".join(pieces) == MORNING_REPLY
    assert served.complete(MORNING, GenerationOptions(stop=(",",))) == "Green tea"


def test_llama_server_structured_falls_back_to_its_schema_grammar(
    served: OpenAICompatibleLLM,
) -> None:
    # llama-cpp-python's server refuses "json_schema" (with a 500) but turns
    # {"type": "json_object", "schema": ...} into a grammar.
    assert isinstance(served.structured(MOOD, Mood), Mood)
    assert served.structured_mode == "json_object+schema"
    snapshot = served.structured(MORNING, Snapshot)
    assert len(snapshot.note) <= 16


async def test_llama_server_async(served: OpenAICompatibleLLM) -> None:
    assert await served.acomplete(MORNING) == MORNING_REPLY
    assert "".join([piece async for piece in served.astream(MORNING)]) == MORNING_REPLY


def test_unreachable_server_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(LLMUnavailable, match=rf"{url}/chat/completions.*3 attempt"):
        _client(url).complete(MORNING)


# --- against the scripted stand-in ---------------------------------------------------------


def test_request_carries_model_options_and_key(scripted_server: ScriptedServer) -> None:
    scripted_server.script(chat_reply("hello"))
    llm = _client(scripted_server.url, api_key="sk-test")
    options = GenerationOptions(max_tokens=7, temperature=0.5, stop=("\n",), seed=42)
    assert llm.complete(MORNING, options) == "hello"
    request = scripted_server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.payload == {
        "model": "twin-test",
        "messages": [{"role": "user", "content": MORNING[0].content}],
        "max_tokens": 7,
        "temperature": 0.5,
        "stream": False,
        "stop": ["\n"],
        "seed": 42,
    }


def test_server_error_is_retried(scripted_server: ScriptedServer) -> None:
    scripted_server.script(error_reply(500, "overloaded"), chat_reply("fine now"))
    assert _client(scripted_server.url).complete(MORNING) == "fine now"
    assert len(scripted_server.requests) == 2


def test_rate_limit_waits_as_long_as_retry_after_says(scripted_server: ScriptedServer) -> None:
    scripted_server.script(
        error_reply(429, "slow down", **{"Retry-After": "0.4"}), chat_reply("ok")
    )
    started = time.monotonic()
    assert _client(scripted_server.url).complete(MORNING) == "ok"
    assert time.monotonic() - started >= 0.4  # the backoff alone would wait 0.01 s


def test_persistent_server_errors_give_up(scripted_server: ScriptedServer) -> None:
    scripted_server.script(error_reply(503, "down for maintenance"))
    with pytest.raises(LLMUnavailable, match=r"3 attempt.*HTTP 503.*maintenance"):
        _client(scripted_server.url).complete(MORNING)
    assert len(scripted_server.requests) == 3


def test_unknown_model_is_an_error_without_retries(scripted_server: ScriptedServer) -> None:
    scripted_server.script(error_reply(404, "The model `twin-test` does not exist"))
    with pytest.raises(LLMError, match="twin-test") as excinfo:
        _client(scripted_server.url).complete(MORNING)
    assert not isinstance(excinfo.value, LLMUnavailable)
    assert len(scripted_server.requests) == 1


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (ScriptedReply(200, "<html>gateway says hi</html>"), r"not JSON.*gateway says hi"),
        (ScriptedReply(200, '{"object": "chat.completion"}'), r"choices.*chat\.completion"),
        (
            ScriptedReply(200, '{"choices": [{"message": {"content": null}}]}'),
            "no text content",
        ),
    ],
)
def test_malformed_replies_are_errors(
    reply: ScriptedReply, problem: str, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(reply)
    with pytest.raises(LLMError, match=problem):
        _client(scripted_server.url).complete(MORNING)


def test_stream_reads_server_sent_events(scripted_server: ScriptedServer) -> None:
    scripted_server.script(sse_reply(["Green", " tea", ""]))
    llm = _client(scripted_server.url)
    assert list(llm.stream(MORNING)) == ["Green", " tea"]
    assert scripted_server.requests[0].payload["stream"] is True

    scripted_server.script(sse_reply(["Green"], raw_events=("{not json",)))
    with pytest.raises(LLMError, match=r"not JSON.*not json"):
        list(llm.stream(MORNING))


def test_broken_json_content_is_repaired(scripted_server: ScriptedServer) -> None:
    scripted_server.script(
        chat_reply("Sure!\n```json\n{'mood': 'calm', 'energy': 'high', 'tags': ['tea',],}\n```")
    )
    result = _client(scripted_server.url).structured(MOOD, Mood)
    assert result == Mood(mood="calm", energy="high", tags=["tea"])
    response_format = scripted_server.requests[0].payload["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"] == Mood.model_json_schema()


def test_reply_that_never_validates_raises(scripted_server: ScriptedServer) -> None:
    scripted_server.script(chat_reply('{"mood": "ecstatic"}'))
    with pytest.raises(StructuredOutputError, match=r"Mood.*3 attempt.*ecstatic"):
        _client(scripted_server.url).structured(MOOD, Mood)
    assert len(scripted_server.requests) == 3
    feedback = scripted_server.requests[1].payload["messages"][-1]["content"]
    assert "mood: Input should be 'calm', 'busy' or 'tired'" in feedback


def test_refused_response_format_falls_back_and_is_remembered(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script(
        error_reply(400, "response_format json_schema is not supported"),
        error_reply(400, "unknown field schema in response_format"),
        chat_reply(VALID_MOOD),
    )
    llm = _client(scripted_server.url)
    assert llm.structured(MOOD, Mood).mood == "busy"
    sent = [r.payload["response_format"] for r in scripted_server.requests]
    assert [f["type"] for f in sent] == ["json_schema", "json_object", "json_object"]
    assert "schema" in sent[1] and "schema" not in sent[2]
    assert llm.structured_mode == "json_object"

    scripted_server.script(chat_reply(VALID_MOOD))
    llm.structured(MOOD, Mood)
    assert scripted_server.requests[-1].payload["response_format"] == {"type": "json_object"}


def test_prompt_only_when_no_format_is_accepted(scripted_server: ScriptedServer) -> None:
    scripted_server.script(
        *[error_reply(422, "response_format: extra inputs are not permitted")] * 3,
        chat_reply(VALID_MOOD),
    )
    llm = _client(scripted_server.url)
    assert llm.structured(MOOD, Mood).energy == "low"
    assert "response_format" not in scripted_server.requests[-1].payload
    assert llm.structured_mode == "prompt"


def test_other_bad_requests_do_not_downgrade_the_format(scripted_server: ScriptedServer) -> None:
    scripted_server.script(error_reply(400, "This model's maximum context length is 512 tokens"))
    llm = _client(scripted_server.url)
    with pytest.raises(LLMError, match="maximum context length"):
        llm.structured(MOOD, Mood)
    assert len(scripted_server.requests) == 1
    assert llm.structured_mode == "json_schema"
