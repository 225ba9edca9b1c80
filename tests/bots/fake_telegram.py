"""A Telegram Bot API stand-in on 127.0.0.1, for driving the real python-telegram-bot client.

It speaks the Bot API's wire format: `POST /bot<token>/<method>` with form or JSON parameters,
`{"ok": true, "result": ...}` answers, long-polled `getUpdates` with offsets that confirm
updates, and `{"ok": false, "error_code": ..., "description": ..., "parameters": {...}}` errors.
Once a webhook is set, updates are POSTed to it (with the secret token) instead of being
queued for `getUpdates`. Tests play users (`user_says`), read what the bot sent (`sent`,
`wait_for_sent`), and inject platform trouble (`fail_next` for 429 with retry_after or 500,
`redeliver` for updates Telegram sends again after a crash).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

MESSAGE_LIMIT = 4096


@dataclass(frozen=True)
class TelegramUser:
    """A Telegram account talking to the bot in a private chat (chat id = user id)."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        data["language_code"] = "en"
        return data

    def chat(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: int | None = None


@dataclass
class SentMessage:
    chat_id: int
    message_id: int
    text: str
    at: float = field(default_factory=time.monotonic)


class FakeTelegram:
    """The Bot API of one bot. Use `async with FakeTelegram() as api:`; `api.root_url` is what
    a client's base URL is built from (`<root>/bot<token>/<method>`)."""

    def __init__(
        self, token: str = "4242:TEST-token", username: str = "iris_twin_bot", bot_id: int = 4242
    ) -> None:
        self.token = token
        self.bot = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Iris's twin",
            "username": username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.pending: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.actions: list[tuple[int, str]] = []
        self.calls: list[str] = []
        self.commands: list[dict[str, str]] = []
        self.webhook: dict[str, str] | None = None
        self.webhook_statuses: list[int] = []
        self.failures: dict[str, list[Failure]] = defaultdict(list)
        self.queued_at: dict[tuple[int, int], float] = {}
        self._next_update = 1
        self._next_message: dict[int, int] = defaultdict(lambda: 1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        async with self._changed:
            # Long polls end now rather than when their timeout runs out.
            self._closing = True
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests do -------------------------------------------------------------------------

    async def user_says(self, user: TelegramUser, text: str) -> int:
        """A user sends `text` to the bot in their private chat; returns the message id."""
        message_id = self._message_id(user.id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": user.json(),
            "chat": user.chat(),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        update = {"update_id": self._next_update, "message": message}
        self._next_update += 1
        self.queued_at[(user.id, message_id)] = time.monotonic()
        if self.webhook is not None:
            await self._post_to_webhook(update)
            return message_id
        async with self._changed:
            self.pending.append(update)
            self.delivered.append(update)
            self._changed.notify_all()
        return message_id

    async def _post_to_webhook(self, update: dict[str, Any]) -> None:
        """Deliver as Telegram does to a webhook: one POST per update, with the secret token."""
        assert self.webhook is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook["secret_token"]}
        async with (
            ClientSession() as session,
            session.post(self.webhook["url"], json=update, headers=headers) as response,
        ):
            self.webhook_statuses.append(response.status)

    async def redeliver(self) -> None:
        """Telegram sends every update again, as it does when the bot stopped before
        confirming them (a crash)."""
        async with self._changed:
            known = {u["update_id"] for u in self.pending}
            self.pending = sorted(
                [*self.pending, *(u for u in self.delivered if u["update_id"] not in known)],
                key=lambda u: u["update_id"],
            )
            self._changed.notify_all()

    def fail_next(
        self, method: str, status: int, *, retry_after: int | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` calls of `method` with an error."""
        self.failures[method].extend(Failure(status, retry_after) for _ in range(times))

    async def wait_for_sent(self, count: int, timeout: float = 20.0) -> list[SentMessage]:
        """Wait until the bot has sent at least `count` messages in all; returns them all."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.sent) >= count), timeout)
        return list(self.sent)

    async def wait_for_sent_to(self, chat_id: int, count: int, timeout: float = 20.0) -> list[str]:
        """Wait until the bot has sent at least `count` messages to `chat_id`."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.sent_to(chat_id)) >= count), timeout
            )
        return self.sent_to(chat_id)

    def sent_to(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == chat_id]

    # -- the Bot API ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params = await _params(request)
        self.calls.append(method)
        if self.failures.get(method):
            failure = self.failures[method].pop(0)
            return _failure(failure)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        return await handler(params)

    async def _api_getMe(self, params: dict[str, Any]) -> web.Response:
        return _ok(self.bot)

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = None
        return _ok(True)

    async def _api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {
            "url": str(params["url"]),
            "secret_token": str(params.get("secret_token", "")),
        }
        return _ok(True)

    async def _api_setMyCommands(self, params: dict[str, Any]) -> web.Response:
        self.commands = _decoded(params.get("commands", "[]"))
        return _ok(True)

    async def _api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        async with self._changed:
            if offset:
                # Asking from `offset` confirms every update before it: Telegram forgets them.
                self.pending = [u for u in self.pending if u["update_id"] >= offset]
            ready = [u for u in self.pending if u["update_id"] >= offset]
            if not ready and timeout > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(
                            lambda: (
                                self._closing or any(u["update_id"] >= offset for u in self.pending)
                            )
                        ),
                        timeout,
                    )
                ready = [u for u in self.pending if u["update_id"] >= offset]
        return _ok(ready[:limit])

    async def _api_sendChatAction(self, params: dict[str, Any]) -> web.Response:
        self.actions.append((int(params["chat_id"]), str(params["action"])))
        return _ok(True)

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        text = str(params.get("text", ""))
        chat_id = int(params["chat_id"])
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MESSAGE_LIMIT:
            return _error(400, "Bad Request: message is too long")
        message_id = self._message_id(chat_id)
        async with self._changed:
            self.sent.append(SentMessage(chat_id, message_id, text))
            self._changed.notify_all()
        return _ok(
            {
                "message_id": message_id,
                "from": self.bot,
                "chat": {"id": chat_id, "type": "private"},
                "date": int(time.time()),
                "text": text,
            }
        )

    def _message_id(self, chat_id: int) -> int:
        message_id = self._next_message[chat_id]
        self._next_message[chat_id] += 1
        return message_id


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        params.update(await request.post())
    return params


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _failure(failure: Failure) -> web.Response:
    if failure.status == 429:
        seconds = failure.retry_after or 1
        return _error(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
    return _error(failure.status, "Internal Server Error")
