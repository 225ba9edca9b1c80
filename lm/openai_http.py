"""Any OpenAI-compatible chat server over HTTP: llama.cpp's server, vLLM, Ollama, OpenAI.

A busy server (timeouts, 429, 5xx) is retried with exponential backoff, honouring
Retry-After. A server that is gone (the connection refused, reset, or dropped mid-response)
fails the call at once with `LLMUnavailable`, and is remembered as gone: later calls on it
make one attempt, without retries, until it answers again.

Structured output asks the server for the strongest response format it accepts:
`json_schema`, then `json_object` with the schema (llama-cpp-python turns that into a
grammar), then plain `json_object`, then the prompt alone. What a server refused is learnt
once per process and shared by every client of that server (`lm.servers`).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from lm.base import (
    ChatLLM,
    ChatMessage,
    GenerationOptions,
    LLMError,
    LLMUnavailable,
    snippet,
)
from lm.servers import ServerState, server_state

# The response-format ladder, strongest first (see `_complete_json`).
STRUCTURED_MODES = ("json_schema", "json_object+schema", "json_object", "prompt")


class _FormatRejected(LLMError):
    """The server refused the request's response_format."""


class OpenAICompatibleLLM(ChatLLM):
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        defaults: GenerationOptions | None = None,
        structured_attempts: int = 3,
    ):
        super().__init__(
            defaults or GenerationOptions(max_tokens=512, temperature=0.0), structured_attempts
        )
        if not base_url:
            raise ValueError("an OpenAI-compatible backend needs a base URL (…/v1)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._server: ServerState = server_state(self.base_url)

    @property
    def name(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    @property
    def structured_mode(self) -> str:
        """How structured output is currently requested of this server (by any client);
        modes it refused are skipped."""
        return STRUCTURED_MODES[self._server.format_level]

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _complete(self, messages: list[ChatMessage], options: GenerationOptions) -> str:
        response = self._send(self._payload(messages, options, stream=False), stream=False)
        return self._reply_content(response)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        response = self._send(self._payload(messages, options, stream=True), stream=True)
        try:
            yield from self._sse_pieces(response)
        except httpx.TimeoutException as exc:
            raise LLMError(f"the stream from {self.endpoint} stalled: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise self._gone(exc) from exc
        finally:
            response.close()

    def _complete_json(
        self, messages: list[ChatMessage], json_schema: dict[str, Any], options: GenerationOptions
    ) -> str:
        while True:
            level = self._server.format_level
            payload = self._payload(messages, options, stream=False)
            response_format = _response_format(STRUCTURED_MODES[level], json_schema)
            if response_format is not None:
                payload["response_format"] = response_format
            try:
                return self._reply_content(self._send(payload, stream=False))
            except _FormatRejected:
                self._server.refused_format(level)

    def _payload(
        self, messages: list[ChatMessage], options: GenerationOptions, *, stream: bool
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stream": stream,
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        if options.seed is not None:
            payload["seed"] = options.seed
        return payload

    def _send(self, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
        """POST, retrying a busy server; a successful response (open, when streaming).

        Raises LLMUnavailable when the server is gone or stays busy, LLMError when it
        rejects the request.
        """
        # A server known to be gone gets one attempt: a dead server must not cost each call
        # the whole backoff.
        attempts = 1 if self._server.down else self.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            delay = min(self.max_backoff, self.backoff * 2**attempt)
            try:
                request = self._client.build_request("POST", self.endpoint, json=payload)
                response = self._client.send(request, stream=stream)
                if response.status_code < 400:
                    self._server.answered()
                    return response
                body = response.read().decode("utf-8", errors="replace")
                response.close()
            except httpx.TimeoutException as exc:
                problem = f"timed out ({exc.__class__.__name__})"
            except httpx.TransportError as exc:
                raise self._gone(exc) from exc
            else:
                self._server.answered()
                self._raise_for_final_status(response.status_code, body, payload)
                problem = f"HTTP {response.status_code}: {snippet(body)}"
                requested = _retry_after(response, self.max_backoff)
                delay = delay if requested is None else requested
            if attempt < attempts - 1:
                time.sleep(delay)
        raise LLMUnavailable(
            f"{self.endpoint} did not answer successfully after {attempts} attempt(s): {problem}"
        )

    def _gone(self, exc: httpx.TransportError) -> LLMUnavailable:
        """The error for a server whose connection was refused, reset or dropped; every
        client of the server learns that it is gone."""
        reason = f"{exc.__class__.__name__}: {exc}"
        self._server.went_down(reason)
        return LLMUnavailable(f"{self.endpoint} is unreachable ({reason}); is the server running?")

    def _raise_for_final_status(self, status: int, body: str, payload: dict[str, Any]) -> None:
        """Raise for errors that retrying cannot fix; return for 429 and 5xx."""
        if "response_format" in payload and _blames_response_format(status, body):
            raise _FormatRejected(f"{self.endpoint} refused the response format: {snippet(body)}")
        if status == 404 or "model_not_found" in body:
            raise LLMError(
                f"{self.endpoint} does not know the model {self.model!r} "
                f"(or the URL is not an OpenAI-compatible API): HTTP {status}: {snippet(body)}"
            )
        if status in (401, 403):
            raise LLMError(
                f"{self.endpoint} refused the credentials (HTTP {status}); check the API key: "
                f"{snippet(body)}"
            )
        if status != 429 and status < 500:
            raise LLMError(f"{self.endpoint} rejected the request: HTTP {status}: {snippet(body)}")

    def _reply_content(self, response: httpx.Response) -> str:
        text = response.text
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise LLMError(
                f"{self.endpoint} answered with something that is not JSON: {snippet(text)!r}"
            ) from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(
                f"{self.endpoint} answered without choices[0].message.content: {snippet(text)!r}"
            ) from None
        if not isinstance(content, str):
            raise LLMError(f"{self.endpoint} answered with no text content: {snippet(text)!r}")
        return content

    def _sse_pieces(self, response: httpx.Response) -> Iterator[str]:
        """The content deltas of a server-sent event stream, until [DONE]."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments, event/id fields
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                raise LLMError(
                    f"{self.endpoint} streamed an event that is not JSON: {snippet(data)!r}"
                ) from None
            if not isinstance(chunk, dict) or "error" in chunk:
                raise LLMError(f"{self.endpoint} streamed an error: {snippet(data)!r}")
            choices = chunk.get("choices") or []
            delta = (choices[0].get("delta") or {}) if choices else {}
            piece = delta.get("content")
            if piece:
                yield piece


def _blames_response_format(status: int, body: str) -> bool:
    """Whether an error refuses the requested response format (and not, say, the length).

    Servers say so with a 400 or 422 that names the format; llama-cpp-python's server
    answers an unknown format type with a 500.
    """
    lowered = body.lower()
    named = any(word in lowered for word in ("response_format", "schema", "json_object"))
    return named and (status in (400, 422) or status >= 500)


def _response_format(mode: str, json_schema: dict[str, Any]) -> dict[str, Any] | None:
    """The request's `response_format` for a structured-output mode (None: prompt only)."""
    if mode == "json_schema":
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(json_schema.get("title", "reply")))[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema}}
    if mode == "json_object+schema":
        return {"type": "json_object", "schema": json_schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def _retry_after(response: httpx.Response, limit: float) -> float | None:
    """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(limit, max(0.0, seconds))
