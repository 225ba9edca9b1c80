"""A stand-in OpenAI-compatible server on 127.0.0.1 that answers from a script.

Tests queue the replies it gives (status, headers, body) and read back the requests it got,
to drive retries, fallbacks and malformed answers that a real server rarely produces on cue.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ScriptedReply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


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


def error_reply(status: int, message: str, **headers: str) -> ScriptedReply:
    body = json.dumps({"error": {"message": message, "type": "error"}})
    return ScriptedReply(status, body, {"Content-Type": "application/json", **headers})


class ScriptedServer:
    """Serves queued replies in order; when one reply is left it is repeated."""

    def __init__(self) -> None:
        self.replies: list[ScriptedReply] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                reply = server.record(RecordedRequest(self.path, dict(self.headers), payload))
                body = reply.body.encode("utf-8")
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test output is for assertions."""

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: ScriptedReply) -> None:
        with self._lock:
            self.replies = list(replies)

    def record(self, request: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if not self.replies:
                return error_reply(500, "the test scripted no reply")
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
