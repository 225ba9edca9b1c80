"""The Discord face of the twin, on discord.py: direct messages, and mentions in the channels the
owner allows.

The bot needs the privileged message content intent (to read what friends write in channels);
discord.py keeps the gateway connection alive, resumes it after a disconnect and waits out
rate limits (429) and server errors itself. Each message becomes an `Incoming` for the core; a
`DiscordChat` shows "typing…" and sends replies that can never ping anyone.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import suppress

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.core import BotCore, Incoming
from bots.splitting import DISCORD_LIMIT

log = logging.getLogger(__name__)

PLATFORM = "discord"
READY_TIMEOUT_SECONDS = 60.0


class DiscordChat:
    """One Discord channel (or DM) the core answers in."""

    limit = DISCORD_LIMIT

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self.channel = channel

    @staticmethod
    def measure(text: str) -> int:
        return len(text)

    def typing(self) -> discord.context_managers.Typing:
        return self.channel.typing()

    async def send(self, text: str) -> None:
        # A twin quoting "@everyone" or a user must not notify anybody.
        await self.channel.send(text, allowed_mentions=discord.AllowedMentions.none())


class TwinDiscordClient(discord.Client):
    """A discord.py client that hands messages meant for the twin to the core."""

    def __init__(self, core: BotCore, channels: list[str]) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        # The twin never joins voice channels; discord.py need not warn about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=intents)
        self.core = core
        self.channels = {str(c) for c in channels}

    async def on_ready(self) -> None:
        log.info("Discord bot %s is connected", self.user)

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.id == me.id or message.author.bot:
            return
        private = isinstance(message.channel, discord.DMChannel)
        if not private and (
            str(message.channel.id) not in self.channels or me.id not in message.raw_mentions
        ):
            return
        text = re.sub(rf"<@!?{me.id}>", "", message.content).strip()
        incoming = Incoming(
            platform=PLATFORM,
            chat_id=str(message.channel.id),
            message_id=str(message.id),
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            text=text,
            private=private,
            chat_title=_channel_title(message.channel),
            sent_at=message.created_at,
        )
        await self.core.handle(incoming, DiscordChat(message.channel))


class DiscordBot:
    """The twin on Discord. `api_base` and `gateway_url` point discord.py at another REST API and
    gateway (a proxy, or a test stand-in); by default they are Discord's. They are process-wide
    settings of discord.py, restored when the bot stops."""

    def __init__(
        self,
        core: BotCore,
        token: str,
        *,
        channels: list[str] | None = None,
        api_base: str | None = None,
        gateway_url: str | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Discord bot token is needed (from the developer portal)")
        self.core = core
        self.token = token
        self.channels = channels if channels is not None else core.settings.discord_channels
        self.api_base = api_base
        self.gateway_url = gateway_url
        self.client: TwinDiscordClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._saved_endpoints: tuple[str, yarl.URL] | None = None

    async def start(self) -> None:
        """Log in, connect to the gateway and wait until the bot is ready."""
        self._point_endpoints()
        client = TwinDiscordClient(self.core, self.channels)
        running = asyncio.create_task(client.start(self.token), name="discord-client")
        self.client, self._task = client, running
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {running, ready}, timeout=READY_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            return
        ready.cancel()
        error = running.exception() if running.done() and not running.cancelled() else None
        await self.stop()
        if error is not None:
            raise error  # the login or connection error, e.g. a bad token
        raise RuntimeError(
            f"the Discord client did not get ready within {READY_TIMEOUT_SECONDS:.0f}s"
        )

    async def stop(self) -> None:
        """Disconnect and restore discord.py's endpoints."""
        client, task = self.client, self._task
        self.client = self._task = None
        if client is not None:
            await client.close()
        if task is not None:
            with suppress(Exception, asyncio.CancelledError):
                await task
        self._restore_endpoints()

    def _point_endpoints(self) -> None:
        if self.api_base is None and self.gateway_url is None:
            return
        self._saved_endpoints = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if self.api_base is not None:
            Route.BASE = self.api_base.rstrip("/")
        if self.gateway_url is not None:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_endpoints
            self._saved_endpoints = None


def _channel_title(channel: object) -> str:
    name = getattr(channel, "name", None)
    return f"#{name}" if name else ""
