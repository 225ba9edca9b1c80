"""The Telegram face of the twin, on python-telegram-bot: private chats, by long polling or, when
the bot has a public HTTPS address, by webhook.

The adapter only translates: a Telegram text message becomes an `Incoming`, and a `TelegramChat`
lets the core show "typing…" and send messages, waiting out flood control (429) and retrying
server errors. Group chats are ignored: their readers are not who the bot answers for.

Restarts are clean: Telegram re-delivers updates that were fetched but not confirmed, and the
core skips any message it already handled.

The webhook server is a small aiohttp app (python-telegram-bot's own needs tornado): Telegram
POSTs each update with the secret token set at registration, and the update joins the same queue
polling would fill.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web
from telegram import BotCommand, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bots.core import BotCore, Incoming
from bots.splitting import TELEGRAM_LIMIT, utf16_length

log = logging.getLogger(__name__)

PLATFORM = "telegram"
# A chat action shows for five seconds (or until a message arrives); refresh it before then.
TYPING_REFRESH_SECONDS = 4.0
SEND_ATTEMPTS = 4
COMMANDS = (
    BotCommand("start", "who this is"),
    BotCommand("help", "who this is and what I can do"),
    BotCommand("new", "start a fresh conversation"),
)


@dataclass(frozen=True)
class Webhook:
    """Where Telegram delivers updates instead of being polled: the public HTTPS `url` (usually
    a reverse proxy) and the local address the bot listens on behind it."""

    url: str
    listen: str = "127.0.0.1"
    port: int = 8443
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


class TelegramChat:
    """One Telegram chat the core answers in."""

    limit = TELEGRAM_LIMIT

    def __init__(self, application: Application, chat_id: int) -> None:
        self.bot = application.bot
        self.chat_id = chat_id

    @staticmethod
    def measure(text: str) -> int:
        return utf16_length(text)

    @asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING)
            except TelegramError as exc:
                # The indicator is cosmetic: a failure here must not stop the answer.
                log.debug("typing indicator failed in chat %s: %s", self.chat_id, exc)
            await asyncio.sleep(TYPING_REFRESH_SECONDS)

    async def send(self, text: str) -> None:
        """Send one message; wait out flood control and retry server errors a few times."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await self.bot.send_message(self.chat_id, text)
                return
            except RetryAfter as exc:
                if attempt == SEND_ATTEMPTS:
                    raise
                delay = _retry_seconds(exc)
                log.warning("Telegram flood control: waiting %.1fs before resending", delay)
                await asyncio.sleep(delay)
            except BadRequest:
                raise  # the request itself is wrong; resending will not help
            except NetworkError as exc:
                # Includes timeouts, after which the message may have arrived: a rare duplicate
                # is better than a reply that never comes.
                if attempt == SEND_ATTEMPTS:
                    raise
                log.warning("sending to Telegram failed (%s); retrying", exc)
                await asyncio.sleep(0.5 * attempt)


class TelegramBot:
    """The twin on Telegram. `base_url` points at another Bot API server (a self-hosted one,
    or a test stand-in); by default it is Telegram's."""

    def __init__(
        self,
        core: BotCore,
        token: str,
        *,
        base_url: str | None = None,
        poll_timeout: float = 30.0,
        concurrency: int = 16,
        webhook: Webhook | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Telegram bot token is needed (from @BotFather)")
        self.core = core
        self.token = token
        self.base_url = base_url
        self.poll_timeout = poll_timeout
        self.concurrency = concurrency
        self.webhook = webhook
        self.application: Application | None = None
        self._webhook_server: web.AppRunner | None = None

    def build_application(self) -> Application:
        """The python-telegram-bot application with the bot's handlers."""
        builder = ApplicationBuilder().token(self.token).concurrent_updates(self.concurrency)
        if self.base_url:
            root = self.base_url.rstrip("/")
            builder = builder.base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
        builder = builder.get_updates_read_timeout(self.poll_timeout + 10)
        application = builder.build()
        application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & filters.TEXT,
                self._on_message,
            )
        )
        application.add_error_handler(self._on_error)
        return application

    async def start(self) -> None:
        """Connect, register the command menu, and start receiving updates."""
        application = self.build_application()
        await application.initialize()
        try:
            await application.bot.set_my_commands(COMMANDS)
        except TelegramError as exc:
            log.warning("could not set the bot's command menu: %s", exc)
        await application.start()
        self.application = application
        if self.webhook is not None:
            await self._serve_webhook(application, self.webhook)
        else:
            assert application.updater is not None
            await application.updater.start_polling(
                timeout=timedelta(seconds=self.poll_timeout),
                allowed_updates=["message"],
                error_callback=_polling_failed,
            )
        log.info("Telegram bot @%s is running", application.bot.username)

    async def stop(self) -> None:
        """Stop receiving (confirming what was fetched), finish running handlers, disconnect."""
        application, self.application = self.application, None
        if application is None:
            return
        if self._webhook_server is not None:
            await self._webhook_server.cleanup()
            self._webhook_server = None
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    async def _serve_webhook(self, application: Application, webhook: Webhook) -> None:
        async def receive(request: web.Request) -> web.Response:
            token = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(token, webhook.secret):
                return web.Response(status=403)
            try:
                update = Update.de_json(await request.json(), application.bot)
            except (ValueError, KeyError, TypeError):
                return web.Response(status=400)
            await application.update_queue.put(update)
            return web.Response()

        app = web.Application()
        app.router.add_post(webhook.path, receive)
        server = web.AppRunner(app, handle_signals=False)
        await server.setup()
        await web.TCPSite(server, webhook.listen, webhook.port).start()
        self._webhook_server = server
        await application.bot.set_webhook(
            webhook.url, allowed_updates=["message"], secret_token=webhook.secret
        )

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.text is None or message.from_user is None:
            return
        user = message.from_user
        incoming = Incoming(
            platform=PLATFORM,
            chat_id=str(message.chat_id),
            message_id=str(message.message_id),
            user_id=str(user.id),
            user_name=user.full_name or user.username or str(user.id),
            text=message.text,
            private=True,
            sent_at=message.date,
        )
        await self.core.handle(incoming, TelegramChat(context.application, message.chat_id))

    @staticmethod
    async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling a Telegram update", exc_info=context.error)


def _polling_failed(exc: TelegramError) -> None:
    log.warning("polling Telegram failed (%s); retrying", exc)


def _retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after  # seconds, or a timedelta once PTB_TIMEDELTA is set
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
