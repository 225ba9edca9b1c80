"""A Discord REST API and gateway stand-in on 127.0.0.1, for driving the real discord.py client.

REST: `/api/v10/users/@me`, `/oauth2/applications/@me`, `/gateway(/bot)`, channel message POSTs and
typing, answered with `Content-Type: application/json` exactly (discord.py checks it), bot-token
auth, and on request a 429 (with `retry_after` and the `Via` header real 429s carry) or a 500.
Gateway: HELLO → IDENTIFY → READY + GUILD_CREATE → MESSAGE_CREATE dispatches with sequence
numbers, heartbeat ACKs, RESUME after a dropped connection or an op 7 RECONNECT request.
Tests play users (`user_says`) and read what the bot sent (`sent`, `wait_for_sent`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

API = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
MESSAGE_LIMIT = 2000
MESSAGE_CONTENT_INTENT = 1 << 15


class Op:
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    RESUME = 6
    RECONNECT = 7
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


@dataclass(frozen=True)
class DiscordUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    @property
    def dm_channel(self) -> int:
        """The id of this user's DM channel with the bot."""
        return self.id + 1


@dataclass
class SentMessage:
    channel_id: int
    content: str
    allowed_mentions: dict[str, Any] | None
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: float = 0.0


class FakeDiscord:
    """One bot's view of Discord: a guild with a few text channels, and DMs."""

    def __init__(
        self,
        token: str = "discord-test-token",
        bot_id: int = 990000000000000900,
        guild_id: int = 990000000000000100,
        channels: dict[int, str] | None = None,
        message_content_enabled: bool = True,
    ) -> None:
        self.token = token
        # Whether the owner enabled the privileged intent in the developer portal.
        self.message_content_enabled = message_content_enabled
        self.user = DiscordUser(bot_id, "iris-twin", "Iris's twin", bot=True)
        self.guild_id = guild_id
        self.channels = channels or {}
        self.sent: list[SentMessage] = []
        self.typing: list[int] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes = 0
        self.failures: dict[str, list[Failure]] = defaultdict(list)
        self.requests: list[str] = []
        self._snowflake_seq = 0
        self._session_id = ""
        self._sequence = 0
        self._socket: web.WebSocketResponse | None = None
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- what tests do -------------------------------------------------------------------------

    async def user_says(
        self, user: DiscordUser, text: str, *, channel: int | None = None, mention: bool = False
    ) -> int:
        """A user writes `text`: in their DM with the bot, or in a guild channel (mentioning the
        bot if `mention`). Returns the message id."""
        message_id = self.snowflake()
        content = f"<@{self.user.id}> {text}" if mention else text
        data: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel if channel is not None else user.dm_channel),
            "author": user.json(),
            "content": content,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.user.json()] if mention else [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if channel is not None:
            data["guild_id"] = str(self.guild_id)
            data["member"] = {
                "roles": [],
                "joined_at": datetime.now(UTC).isoformat(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        await self._dispatch("MESSAGE_CREATE", data)
        return message_id

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the gateway connection as Discord does on an internal error; the client
        resumes."""
        resumes = self.resumes
        assert self._socket is not None
        await self._socket.close(code=code, message=b"Unknown error")
        await self._wait(lambda: self.resumes > resumes)

    async def request_reconnect(self) -> None:
        """Ask the client to reconnect (op 7), as Discord does before moving a session."""
        resumes = self.resumes
        await self._send({"op": Op.RECONNECT, "d": None})
        await self._wait(lambda: self.resumes > resumes)

    def fail_next(self, path_suffix: str, status: int, *, retry_after: float = 0.0) -> None:
        """Answer the next request whose path ends with `path_suffix` with an error."""
        self.failures[path_suffix].append(Failure(status, retry_after))

    async def wait_for_sent(self, count: int, timeout: float = 20.0) -> list[SentMessage]:
        await self._wait(lambda: len(self.sent) >= count, timeout)
        return list(self.sent)

    def sent_to(self, channel_id: int) -> list[str]:
        return [m.content for m in self.sent if m.channel_id == channel_id]

    async def connected(self, timeout: float = 20.0) -> None:
        await self._wait(lambda: self._socket is not None and bool(self._session_id), timeout)

    def snowflake(self) -> int:
        self._snowflake_seq += 1
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | self._snowflake_seq

    # -- REST ----------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        self.requests.append(f"{request.method} {path}")
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        for suffix, queued in self.failures.items():
            if queued and path.endswith(suffix):
                return _failure(queued.pop(0))
        if request.method == "GET" and path == "/users/@me":
            return _json(self.user.json())
        if request.method == "GET" and path == "/oauth2/applications/@me":
            return _json(self._application())
        if request.method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {}})
        parts = path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "channels":
            channel_id = int(parts[1])
            if parts[2] == "typing":
                self.typing.append(channel_id)
                return web.Response(status=204)
            if parts[2] == "messages":
                return await self._create_message(channel_id, await request.json())
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _create_message(self, channel_id: int, body: dict[str, Any]) -> web.Response:
        content = body.get("content") or ""
        if not content.strip():
            return _json({"message": "Cannot send an empty message", "code": 50006}, 400)
        if len(content) > MESSAGE_LIMIT:
            return _json(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                },
                400,
            )
        async with self._changed:
            self.sent.append(SentMessage(channel_id, content, body.get("allowed_mentions")))
            self._changed.notify_all()
        return _json(
            {
                "id": str(self.snowflake()),
                "channel_id": str(channel_id),
                "author": self.user.json(),
                "content": content,
                "timestamp": datetime.now(UTC).isoformat(),
                "edited_timestamp": None,
                "tts": False,
                "mention_everyone": False,
                "mentions": [],
                "mention_roles": [],
                "attachments": [],
                "embeds": [],
                "pinned": False,
                "type": 0,
                "flags": 0,
            }
        )

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.user.id),
            "name": "Iris's twin",
            "icon": None,
            "description": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": DiscordUser(880000000000000101, "iris.calder").json(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
        }

    # -- gateway -------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": Op.HELLO, "d": {"heartbeat_interval": 41250}}))
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op = payload.get("op")
            if op == Op.HEARTBEAT:
                await ws.send_str(json.dumps({"op": Op.HEARTBEAT_ACK}))
            elif op == Op.IDENTIFY:
                await self._identify(ws, payload["d"])
            elif op == Op.RESUME:
                await self._resume(ws, payload["d"])
        async with self._changed:
            if self._socket is ws:
                self._socket = None
            self._changed.notify_all()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if data.get("intents", 0) & MESSAGE_CONTENT_INTENT and not self.message_content_enabled:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        async with self._changed:
            self.identifies.append(data)
            self._session_id = secrets.token_hex(16)
            self._sequence = 0
            self._socket = ws
            self._changed.notify_all()
        await self._dispatch(
            "READY",
            {
                "v": 10,
                "user": {**self.user.json(), "verified": True, "mfa_enabled": False},
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": self._session_id,
                "resume_gateway_url": self.gateway_url,
                "shard": [0, 1],
                "application": {"id": str(self.user.id), "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
        )
        await self._dispatch("GUILD_CREATE", self._guild())

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token or data.get("session_id") != self._session_id:
            await ws.send_str(json.dumps({"op": Op.INVALID_SESSION, "d": False}))
            return
        async with self._changed:
            self._socket = ws
            self.resumes += 1
            self._changed.notify_all()
        await self._dispatch("RESUMED", {})

    def _guild(self) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        return {
            "id": str(self.guild_id),
            "name": "Reef Watchers",
            "icon": None,
            "owner_id": "880000000000000101",
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "features": [],
            "roles": [
                {
                    "id": str(self.guild_id),
                    "name": "@everyone",
                    "permissions": "68608",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [
                {
                    "id": str(channel_id),
                    "type": 0,
                    "guild_id": str(self.guild_id),
                    "name": name,
                    "position": position,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                    "topic": None,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                }
                for position, (channel_id, name) in enumerate(self.channels.items())
            ],
            "threads": [],
            "members": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": now,
            "large": False,
            "unavailable": False,
            "member_count": 5,
        }

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        await self._send({"op": Op.DISPATCH, "t": event, "s": self._sequence, "d": data})

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.connected()
        assert self._socket is not None
        await self._socket.send_str(json.dumps(payload))

    async def _wait(self, predicate, timeout: float = 20.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only when the content type is exactly this.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _failure(failure: Failure) -> web.Response:
    if failure.status == 429:
        return _json(
            {
                "message": "You are being rate limited.",
                "retry_after": failure.retry_after,
                "global": False,
            },
            429,
            {"Via": "1.1 google", "Retry-After": str(max(1, round(failure.retry_after)))},
        )
    return _json({"message": "500: Internal Server Error", "code": 0}, failure.status)
