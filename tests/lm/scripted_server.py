"""A stand-in OpenAI-compatible server on 127.0.0.1 that answers from a script.

Tests queue the replies it gives (status, headers, body; late, or cut off by a hang-up) or
answer each request with a function of it, and read back the requests it got, to drive
retries, fallbacks, malformed answers and dying servers that a real server rarely produces on
cue. Each stand-in has a base URL of its own (a random path under its port), so what a client
learns about one stand-in never carries over to the next one on a reused port.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ScriptedReply:
    """A reply; `delay` seconds late; with `hang_up_after` set, the server closes the
    connection after sending that many bytes of the body (0: before any response at all)."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang_up_after: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


def chat_reply(content: str) -> ScriptedReply:
    """A successful, non-streamed chat completion carrying `content`."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    return ScriptedReply(200, json.dumps(body), {"Content-Type": "application/json"})


def sse_reply(pieces: list[str], *, raw_events: tuple[str, ...] = ()) -> ScriptedReply:
    """A streamed completion: one event per piece, any raw events, then [DONE]."""
    events = [
        json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
        *(json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}) for p in pieces),
        *raw_events,
        "[DONE]",
    ]
    body = "".join(f"data: {event}\n\n" for event in events)
    return ScriptedReply(200, ": keep-alive\n\n" + body, {"Content-Type": "text/event-stream"})


def hang_up(reply: ScriptedReply | None = None, after: int = 0) -> ScriptedReply:
    """`reply` (by default an empty success) cut off after `after` bytes of its body."""
    return replace(reply or ScriptedReply(), hang_up_after=after)


def error_reply(status: int, message: str, **headers: str) -> ScriptedReply:
    body = json.dumps({"error": {"message": message, "type": "error"}})
    return ScriptedReply(status, body, {"Content-Type": "application/json", **headers})


class ScriptedServer:
    """Serves queued replies in order (when one reply is left it is repeated), or answers
    each request with the function given to `respond`."""

    def __init__(self) -> None:
        self.replies: list[ScriptedReply] = []
        self.requests: list[RecordedRequest] = []
        self.responder: Callable[[RecordedRequest], ScriptedReply] | None = None
        self.prefix = f"/{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # the client may give up waiting (a test of timeouts)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.removeprefix(server.prefix)
                reply = server.record(RecordedRequest(path, dict(self.headers), payload))
                time.sleep(reply.delay)
                body = reply.body.encode("utf-8")
                if reply.hang_up_after == 0:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                # a cut-off body announces more than it sends
                self.send_header("Content-Length", str(len(body) + (reply.hang_up_after or 0)))
                self.end_headers()
                if reply.hang_up_after is None:
                    self.wfile.write(body)
                else:
                    self.wfile.write(body[: reply.hang_up_after])
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test output is for assertions."""

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}{self.prefix}/v1"

    def script(self, *replies: ScriptedReply) -> None:
        with self._lock:
            self.replies = list(replies)

    def respond(self, responder: Callable[[RecordedRequest], ScriptedReply]) -> None:
        """Answer every request from now on with `responder(request)`."""
        with self._lock:
            self.responder = responder

    def record(self, request: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if self.responder is not None:
                return self.responder(request)
            if not self.replies:
                return error_reply(500, "the test scripted no reply")
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
