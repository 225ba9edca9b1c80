"""The one LLM interface every backend implements, its errors, and structured output.

A backend subclasses `ChatLLM` and supplies plain generation (`_complete`, `_stream`) and,
when it has one, a stronger way to get JSON (`_complete_json`: a grammar, a server-side
response format). `ChatLLM` builds the rest on top: structured output with JSON repair,
validation and retries with the error fed back, and async variants that run generation in
a worker thread so an event loop is never blocked.
"""

from __future__ import annotations

import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from core.text import one_line
from lm.schemas import grammar_schema, prompt_schema

# asyncio and pydantic are imported where they are used: every `twin` command imports this
# module (through twin.tasks), and `twin --help` should not pay for them.
if TYPE_CHECKING:
    from pydantic import BaseModel

Role = Literal["system", "user", "assistant"]
ModelT = TypeVar("ModelT", bound="BaseModel")
T = TypeVar("T")

SNIPPET_CHARS = 300
# Tokens a chat template spends around each message (role tags, separators), counted generously.
TEMPLATE_TOKENS = 8


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    """Per-call overrides; a field left as None takes the backend's configured default."""

    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


class LLMError(Exception):
    """A language model could not produce what was asked."""


class LLMUnavailable(LLMError):
    """The model cannot be reached or loaded; the message names the URL or path."""


class StructuredOutputError(LLMError):
    """No reply validated against the schema within the allowed attempts."""

    def __init__(self, schema_name: str, attempts: int, last_error: str, last_reply: str):
        self.schema_name = schema_name
        self.attempts = attempts
        self.last_error = last_error
        self.last_reply = last_reply
        super().__init__(
            f"no valid {schema_name} after {attempts} attempt(s); last error: {last_error}; "
            f"last reply: {snippet(last_reply)!r}"
        )


@runtime_checkable
class LLM(Protocol):
    """A chat model: plain, streamed and structured replies, sync and async."""

    @property
    def name(self) -> str: ...

    def complete(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> str: ...

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> Iterator[str]: ...

    def structured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[ModelT],
        options: GenerationOptions | None = None,
    ) -> ModelT: ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int: ...

    def close(self) -> None:
        """Let go of what the model holds (weights, connections); it reopens on next use."""
        ...

    async def acomplete(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> str: ...

    def astream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> AsyncIterator[str]: ...

    async def astructured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[ModelT],
        options: GenerationOptions | None = None,
    ) -> ModelT: ...


class ChatLLM(ABC):
    """Shared behaviour of all backends; subclasses implement the underscore methods.

    `defaults` fills the options a call leaves unset. `structured_attempts` is how many
    replies `structured` asks for before it gives up.
    """

    def __init__(self, defaults: GenerationOptions, structured_attempts: int = 3):
        if structured_attempts < 1:
            raise ValueError("structured_attempts must be at least 1")
        self.defaults = defaults
        self.structured_attempts = structured_attempts

    @property
    @abstractmethod
    def name(self) -> str:
        """Which backend and model this is, for logs and errors."""

    @abstractmethod
    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        """The full reply to `messages`."""

    @abstractmethod
    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        """The reply to `messages`, piece by piece."""

    def _complete_json(
        self, messages: list[ChatMessage], json_schema: dict[str, Any], options: GenerationOptions
    ) -> str:
        """A reply meant to be JSON matching `json_schema`; by default only the prompt asks.

        `json_schema` is already fit for a grammar engine (`lm.schemas.grammar_schema`):
        a backend may hand it to one as it is.
        """
        return self._complete(messages, options)

    def complete(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> str:
        """The model's reply to the conversation."""
        return self._complete(_checked(messages), self._resolve(options))

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> Iterator[str]:
        """The model's reply as it is generated, in text pieces."""
        return self._stream(_checked(messages), self._resolve(options))

    def structured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[ModelT],
        options: GenerationOptions | None = None,
    ) -> ModelT:
        """A reply parsed into `schema`, repaired and retried; never a partial object.

        The prompt shows the model the schema with all its bounds (`structured_prompt`); a
        grammar engine gets it without the bounds it cannot take (`grammar_schema`); the
        parse checks them all. Raises StructuredOutputError when no reply validates within
        the allowed attempts.
        """
        resolved = self._resolve(options)
        json_schema = schema.model_json_schema()
        constraint = grammar_schema(json_schema)
        conversation = structured_prompt(_checked(messages), json_schema)
        reply, error = "", ""
        for attempt in range(1, self.structured_attempts + 1):
            reply = self._complete_json(conversation, constraint, resolved)
            try:
                return parse_structured(reply, schema)
            except ValueError as exc:
                error = str(exc)
            if attempt < self.structured_attempts:
                conversation = [
                    *conversation,
                    ChatMessage("assistant", reply),
                    ChatMessage("user", retry_instruction(error)),
                ]
        raise StructuredOutputError(schema.__name__, self.structured_attempts, error, reply)

    def close(self) -> None:
        """Nothing to let go of by default; backends holding weights or connections override."""
        return None

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """About how many tokens `messages` take in a prompt. Backends that can tokenize count
        exactly; this default errs high (three characters a token, plus the template's tags)."""
        return sum(len(m.content) // 3 + TEMPLATE_TOKENS for m in messages) + TEMPLATE_TOKENS

    async def acomplete(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> str:
        """`complete` in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.complete, list(messages), options)

    async def astructured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[ModelT],
        options: GenerationOptions | None = None,
    ) -> ModelT:
        """`structured` in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.structured, list(messages), schema, options)

    async def astream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None
    ) -> AsyncIterator[str]:
        """`stream` driven by a worker thread; pieces arrive on the event loop as they come."""
        import asyncio

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str | None, BaseException | None]] = asyncio.Queue()
        stop = threading.Event()
        pieces = self.stream(list(messages), options)

        def post(item: tuple[str | None, BaseException | None]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed while we were generating
                stop.set()

        def produce() -> None:
            try:
                for piece in pieces:
                    if stop.is_set():
                        break
                    post((piece, None))
            except BaseException as exc:  # handed to the consumer, raised there
                post((None, exc))
            else:
                post((None, None))
            finally:
                # Close in this thread: a backend may hold a lock until its generator ends.
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()

        producer = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while True:
                piece, error = await queue.get()
                if error is not None:
                    raise error
                if piece is None:
                    break
                yield piece
        finally:
            stop.set()
            await asyncio.shield(producer)

    def _resolve(self, options: GenerationOptions | None) -> GenerationOptions:
        """`options` with every unset field taken from the backend's defaults."""
        options = options or GenerationOptions()
        return GenerationOptions(
            max_tokens=_first_set(options.max_tokens, self.defaults.max_tokens),
            temperature=_first_set(options.temperature, self.defaults.temperature),
            stop=options.stop or self.defaults.stop,
            seed=_first_set(options.seed, self.defaults.seed),
        )


def _first_set(value: T | None, default: T | None) -> T | None:
    return value if value is not None else default


def _checked(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    if not messages:
        raise ValueError("a conversation needs at least one message")
    return list(messages)


def structured_prompt(
    messages: Sequence[ChatMessage], json_schema: dict[str, Any]
) -> list[ChatMessage]:
    """The conversation with the JSON instruction appended to the last user message; the
    schema is shown as `prompt_schema` gives it."""
    instruction = (
        "Reply with only a JSON object that matches this JSON schema, and no other text:\n"
        + json.dumps(prompt_schema(json_schema), ensure_ascii=False)
    )
    conversation = list(messages)
    if conversation and conversation[-1].role == "user":
        last = conversation.pop()
        return [*conversation, ChatMessage("user", f"{last.content}\n\n{instruction}")]
    return [*conversation, ChatMessage("user", instruction)]


def retry_instruction(error: str) -> str:
    """What the model is told after a reply that did not validate."""
    return (
        f"That reply could not be used: {error}. Reply again with only the JSON object "
        "that matches the schema, and no other text."
    )


def parse_structured(reply: str, schema: type[ModelT]) -> ModelT:
    """Repair the JSON in `reply` and validate it; ValueError says what is wrong."""
    from pydantic import ValidationError

    candidate = extract_json(reply)
    try:
        return schema.model_validate_json(candidate)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ValueError(f"does not match {schema.__name__}: {problems}") from None


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


def extract_json(reply: str) -> str:
    """The JSON object in a model's reply, as strict JSON.

    Takes the object out of code fences and surrounding prose, and fixes what models commonly
    get wrong: trailing commas, single-quoted strings, Python's True/False/None, unquoted
    keys, raw control characters (newlines, tabs) inside strings. It never completes a
    truncated object, nor takes an object nested in one for the reply (a reply cut off by
    max_tokens would otherwise pass as its first inner object). Raises ValueError when there
    is no object or it still is not JSON.
    """
    fenced = _FENCE.search(reply)
    text = fenced.group(1) if fenced and "{" in fenced.group(1) else reply
    starts = [i for i, c in enumerate(text) if c == "{"]
    if not starts:
        raise ValueError("the reply contains no JSON object")
    first_error = ""
    for start in starts[:8]:
        candidate, closed = _normalise_json(text, start)
        try:
            json.loads(candidate)
        except json.JSONDecodeError as exc:
            if not closed:
                # every later "{" lies inside this unfinished object
                raise ValueError(
                    first_error or f"the JSON object is cut off (it never closes; {exc.msg})"
                ) from None
            first_error = first_error or f"not valid JSON ({exc.msg} at char {exc.pos})"
            continue
        return candidate
    raise ValueError(first_error)


def _normalise_json(text: str, start: int) -> tuple[str, bool]:
    """Strict JSON for the bracketed value starting at `start` (best effort, see above), and
    whether its brackets close before the text ends."""
    out: list[str] = []
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            literal, i = _read_string(text, i)
            out.append(literal)
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            out.append(c)
            if depth == 0:
                return "".join(out), True
            i += 1
            continue
        elif c == ",":
            following = text[i + 1 :].lstrip()
            if following[:1] in ("}", "]"):
                i += 1
                continue
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            if text[j:].lstrip().startswith(":"):
                out.append(json.dumps(word))
            else:
                out.append({"True": "true", "False": "false", "None": "null"}.get(word, word))
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out), False


def _read_string(text: str, start: int) -> tuple[str, int]:
    """A quoted string at `start` as a JSON string literal, and the index after it."""
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            escaped = text[i + 1]
            # \' is not a JSON escape; every other escape is kept as written
            chars.append("'" if escaped == "'" else c + escaped)
            i += 2
            continue
        if c == quote:
            return '"' + "".join(chars) + '"', i + 1
        if c == '"':  # only inside a single-quoted string
            chars.append('\\"')
        elif c < " ":  # raw newlines, tabs and other control characters are not JSON
            chars.append(json.dumps(c)[1:-1])
        else:
            chars.append(c)
        i += 1
    return '"' + "".join(chars), i  # unterminated: left invalid on purpose


def snippet(text: str) -> str:
    """The start of `text` on one line, as error messages quote a reply or a body."""
    return one_line(text, SNIPPET_CHARS)
