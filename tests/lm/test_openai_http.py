"""The OpenAI-compatible HTTP backend against llama.cpp's real server and a scripted stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import BaseModel, Field

from lm import (
    GenerationOptions,
    LLMError,
    LLMUnavailable,
    OpenAICompatibleLLM,
    StructuredOutputError,
)
from tests.llm_servers import free_port
from tests.lm.scenarios import MOOD, MORNING, MORNING_REPLY, Mood, Snapshot
from tests.lm.scripted_server import (
    RecordedRequest,
    ScriptedReply,
    ScriptedServer,
    chat_reply,
    error_reply,
    hang_up,
    sse_reply,
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


def test_unreachable_server_is_unavailable_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    # with these retries a busy server would be waited on for 0.5 + 1 + 2 s
    llm = _client(url, max_retries=3, backoff=0.5)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match=rf"{url}/chat/completions is unreachable.*refused"):
        llm.complete(MORNING)
    with pytest.raises(LLMUnavailable, match="unreachable"):
        llm.structured(MOOD, Mood)
    assert time.monotonic() - started < 0.5


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


def test_timeouts_are_retried(scripted_server: ScriptedServer) -> None:
    scripted_server.script(ScriptedReply(200, "{}", delay=0.5), chat_reply("in time"))
    assert _client(scripted_server.url, timeout=0.2).complete(MORNING) == "in time"
    assert len(scripted_server.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [hang_up(), hang_up(chat_reply("Green tea, always."), after=20)],
    ids=["before answering", "mid-response"],
)
def test_a_server_that_hangs_up_is_unavailable_at_once(
    reply: ScriptedReply, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(reply, chat_reply("never sent"))
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match=rf"{scripted_server.url}.*unreachable"):
        _client(scripted_server.url, max_retries=3, backoff=0.5).complete(MORNING)
    assert time.monotonic() - started < 0.5
    assert len(scripted_server.requests) == 1


def test_a_stream_cut_off_midway_is_unavailable(scripted_server: ScriptedServer) -> None:
    reply = sse_reply(["Green", " tea", ", always"])
    keep_alive, role, green, *_ = reply.body.split("\n\n")
    scripted_server.script(hang_up(reply, after=len(keep_alive + role + green) + 6))
    pieces = []
    with pytest.raises(LLMUnavailable, match=rf"{scripted_server.url}.*unreachable"):
        pieces.extend(_client(scripted_server.url).stream(MORNING))
    assert pieces == ["Green"]


def test_a_server_found_gone_gets_one_attempt_until_it_answers(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script(hang_up(), error_reply(503, "still starting"))
    with pytest.raises(LLMUnavailable, match="unreachable"):
        _client(scripted_server.url).complete(MORNING)
    # every client of the server knows: no retries while it is down...
    with pytest.raises(LLMUnavailable, match=r"1 attempt.*HTTP 503"):
        _client(scripted_server.url).complete(MORNING)
    assert len(scripted_server.requests) == 2
    # ...and once it answered, busy replies are retried again
    scripted_server.script(error_reply(503, "busy"), chat_reply("back"))
    assert _client(scripted_server.url).complete(MORNING) == "back"
    assert len(scripted_server.requests) == 4


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


def refuses_json_schema(request: RecordedRequest) -> ScriptedReply:
    """llama-cpp-python's server: a 500 for a `json_schema` response format."""
    response_format = request.payload.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return error_reply(500, "Unknown response_format type: json_schema")
    return chat_reply(VALID_MOOD)


def test_what_a_server_refused_is_learnt_once_for_all_its_clients(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.respond(refuses_json_schema)
    first, second = _client(scripted_server.url), _client(scripted_server.url)
    assert first.structured(MOOD, Mood).mood == "busy"
    assert len(scripted_server.requests) == 2  # the refusal, then the fallback
    assert second.structured_mode == "json_object+schema"
    assert second.structured(MOOD, Mood).mood == "busy"
    assert len(scripted_server.requests) == 3

    with ScriptedServer() as other:  # another server starts from the strongest format
        other.respond(refuses_json_schema)
        assert _client(other.url).structured_mode == "json_schema"
        _client(other.url).structured(MOOD, Mood)
        assert len(other.requests) == 2


def test_clients_in_many_threads_learn_the_format_together(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.respond(refuses_json_schema)
    threads = 4
    start = threading.Barrier(threads)

    def work(_: int) -> list[Mood]:
        start.wait()
        # a new client for every call: what one learnt, all the later ones know
        return [_client(scripted_server.url).structured(MOOD, Mood) for _ in range(3)]

    with ThreadPoolExecutor(threads) as pool:
        results = [m for batch in pool.map(work, range(threads)) for m in batch]
    assert len(results) == 12 and all(m.mood == "busy" for m in results)
    kinds = [r.payload["response_format"]["type"] for r in scripted_server.requests]
    # only the calls already on their way when the first refusal came back asked for it
    assert 1 <= kinds.count("json_schema") <= threads
    assert kinds.count("json_object") == 12


class Story(BaseModel):
    """Bounds a grammar engine would expand into a thousand nested repetitions."""

    text: str = Field(min_length=1, max_length=1500)
    chapters: list[int] = Field(default_factory=list, max_length=1000)


def test_the_server_gets_a_schema_without_big_bounds_and_the_reply_is_checked_in_full(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script(
        chat_reply('{"text": "' + "x" * 1600 + '"}'), chat_reply('{"text": "short"}')
    )
    assert _client(scripted_server.url).structured(MORNING, Story).text == "short"
    sent = scripted_server.requests[0].payload["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["text"] == {"minLength": 1, "title": "Text", "type": "string"}
    assert "maxItems" not in sent["properties"]["chapters"]
    # the prompt still shows the bound, and the retry says what was wrong
    assert '"maxLength": 1500' in scripted_server.requests[0].payload["messages"][-1]["content"]
    feedback = scripted_server.requests[1].payload["messages"][-1]["content"]
    assert "text: String should have at most 1500 characters" in feedback


def test_other_bad_requests_do_not_downgrade_the_format(scripted_server: ScriptedServer) -> None:
    scripted_server.script(error_reply(400, "This model's maximum context length is 512 tokens"))
    llm = _client(scripted_server.url)
    with pytest.raises(LLMError, match="maximum context length"):
        llm.structured(MOOD, Mood)
    assert len(scripted_server.requests) == 1
    assert llm.structured_mode == "json_schema"
